import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './redis-server.js'

const run = promisify(execFile)

export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, no password). */
  url: string
  port: number
  /** A new empty database on this server; resolves to its URL. */
  createDatabase(name: string): Promise<string>
  /** Stops the server (if running) and removes its directory. */
  stop(): Promise<void>
  /** `pg_ctl stop -m immediate`: the server dies as in a crash, without a checkpoint; the directory stays. */
  kill(): Promise<void>
  /** Starts the server again on the same directory and port (after `kill`), once it accepts connections. */
  start(): Promise<void>
}

/**
 * The directory of the newest PostgreSQL's binaries: `PG_BIN` if set, else
 * Debian's `/usr/lib/postgresql/<version>/bin` with the highest version.
 */
export function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN
  const base = '/usr/lib/postgresql'
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions.length === 0) throw new Error(`no PostgreSQL under ${base}/*/bin (Debian: apt-get install postgresql), nor PG_BIN`)
  return join(base, versions[0]!, 'bin')
}

/**
 * Starts a private PostgreSQL server (`initdb` + `pg_ctl`) in a fresh temp
 * directory on a free port, listening on 127.0.0.1 only, its unix socket in
 * that directory, trust authentication for the `postgres` superuser, and
 * resolves once it accepts connections. `initdb` refuses to run as root: as
 * root, both run as Debian's `postgres` user, who owns the directory. Never
 * the machine's own server on 5432. Durability is off (`fsync=off`): a
 * `kill()` is a crash of the server, not of the machine, so what was
 * committed is still there after `start()`.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir()
  const dir = await mkdtemp(join(tmpdir(), 'sb-pg-'))
  const data = join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  const pg = async (tool: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args]
    try {
      return await run(file, argv, { cwd: dir, timeout: 60_000 })
    } catch (err) {
      const e = err as Error & { stderr?: string; stdout?: string }
      throw new Error(`${tool} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
    }
  }
  let port = 0
  let running = false
  let exitGuard: (() => void) | undefined
  const removeDir = () => rm(dir, { recursive: true, force: true })

  // A test process that ends without stop() must not leave a server behind:
  // SIGQUIT is the postmaster's immediate shutdown.
  const guard = () => {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
    exitGuard = () => {
      try {
        process.kill(pid, 'SIGQUIT')
      } catch {
        // already gone
      }
    }
    process.once('exit', exitGuard)
  }
  const unguard = () => {
    if (exitGuard) process.off('exit', exitGuard)
    exitGuard = undefined
  }
  const pgCtlStart = async () => {
    const options = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`
    await pg('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o', options, 'start'])
    running = true
    guard()
  }

  try {
    if (asRoot) {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
      await chown(dir, uid, gid)
    }
    await pg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'])
    let lastError: unknown
    for (let attempt = 0; attempt < 5 && !running; attempt++) {
      port = await freePort()
      try {
        await pgCtlStart()
      } catch (err) {
        lastError = err
      }
    }
    if (!running) throw new Error(`could not start PostgreSQL: ${String(lastError)}`)
  } catch (err) {
    await removeDir()
    throw err
  }

  const stopServer = async (mode: 'fast' | 'immediate') => {
    if (!running) return
    await pg('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop'])
    running = false
    unguard()
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`)
      await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', name])
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    async stop() {
      try {
        await stopServer('fast')
      } finally {
        await removeDir()
      }
    },
    kill: () => stopServer('immediate'),
    async start() {
      if (!running) await pgCtlStart()
    },
  }
}
