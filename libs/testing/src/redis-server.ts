import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'

export interface TestRedis {
  url: string
  port: number
  /** The redis-server process, for tests that kill it. */
  process: ChildProcess
  stop(): Promise<void>
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface StartRedisOptions {
  /** Listen here, e.g. to bring back one a test killed. @default a free port */
  port?: number
  /** Extra `redis-server` arguments. */
  args?: string[]
  /**
   * Persist with an append-only file fsynced on every write
   * (`--appendonly yes --appendfsync always`): what a write's reply promised
   * survives a SIGKILL. @default false (nothing persisted)
   */
  aof?: boolean
  /** The data directory, owned by the caller (kept at stop), so a restart finds the same data. @default a temp dir removed at stop */
  dir?: string
}

/**
 * Starts a private `redis-server` (from PATH) on a free port — or on `port`,
 * e.g. to bring back one a test killed — with nothing persisted unless `aof`,
 * and resolves once it accepts connections (and has loaded its data). Never
 * the developer's own Redis.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<TestRedis> {
  const extraArgs = opts.args ?? []
  const persistence = opts.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
  let lastError: unknown
  for (let attempt = 0; attempt < (opts.port === undefined ? 5 : 1); attempt++) {
    const port = opts.port ?? (await freePort())
    const ownDir = opts.dir === undefined
    const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'sb-redis-')))
    const removeDir = () => (ownDir ? rm(dir, { recursive: true, force: true }) : Promise.resolve())
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir, '--protected-mode', 'no', ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      await waitForReady(child)
    } catch (err) {
      lastError = err
      child.kill('SIGKILL')
      await removeDir()
      continue
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      process: child,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL')
          await once(child, 'exit')
        }
        await removeDir()
      },
    }
  }
  throw new Error(`could not start redis-server: ${String(lastError)}`)
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        cleanup()
        resolve()
      }
    }
    const onExit = (code: number | null) => {
      cleanup()
      reject(new Error(`redis-server exited (${code}): ${output.slice(-500)}`))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err.message.includes('ENOENT') ? new Error('redis-server is not on PATH (Debian: apt-get install redis-server)') : err)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`redis-server did not start in 10 s: ${output.slice(-500)}`))
    }, 10_000)
    const cleanup = () => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
      child.off('error', onError)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
    child.once('error', onError)
  })
}
