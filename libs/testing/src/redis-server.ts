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

/**
 * Starts a private `redis-server` (from PATH) on a free port — or on `port`,
 * e.g. to bring back one a test killed — with nothing persisted, and resolves
 * once it accepts connections. Never the developer's own Redis.
 */
export async function startRedis(opts: { port?: number; args?: string[] } = {}): Promise<TestRedis> {
  const extraArgs = opts.args ?? []
  let lastError: unknown
  for (let attempt = 0; attempt < (opts.port === undefined ? 5 : 1); attempt++) {
    const port = opts.port ?? (await freePort())
    const dir = await mkdtemp(join(tmpdir(), 'sb-redis-'))
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      await waitForReady(child)
    } catch (err) {
      lastError = err
      child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
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
        await rm(dir, { recursive: true, force: true })
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
