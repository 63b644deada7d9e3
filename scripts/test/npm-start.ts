import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Teardown } from '@switchboard/testing'

// `npm start` as a new user runs it: scripts/start.mjs as its own process,
// over the built dist/ (run `npm run build` after changing sources).

export const root = fileURLToPath(new URL('../../', import.meta.url))

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface NpmStart {
  child: ChildProcess
  /** The `[switchboard] …` lines (stderr), in order. */
  said: string[]
  /** The services' pino lines (stdout), parsed. */
  logs: Record<string, unknown>[]
  /** SIGTERM (what Ctrl+C sends it too), resolving with how it exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** The pid of the private redis-server npm start said it started, if it did. */
export function redisPidOf(said: string[]): number | undefined {
  const m = /redis-server on \S+ \(pid (\d+)\)/.exec(said.join('\n'))
  return m ? Number(m[1]) : undefined
}

/**
 * Runs scripts/start.mjs with only what a shell would pass plus `env` (so no
 * REDIS_URL unless given: the machine's own Redis stays untouched), and
 * resolves once both services listen. Everything it started is gone at teardown.
 */
export async function npmStart(t: Teardown, env: Record<string, string>): Promise<NpmStart> {
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const said: string[] = []
  const logs: Record<string, unknown>[] = []
  let listening = 0
  const ready = new Promise<void>((resolve, reject) => {
    // start.mjs says everything before the services can listen; waiting on both streams keeps it order-proof.
    const check = () => listening === 2 && said.some((l) => l.includes('Ctrl+C stops both')) && resolve()
    createInterface({ input: child.stderr! }).on('line', (line) => {
      said.push(line)
      check()
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line))
      } catch {
        return
      }
      if (line.includes('Server listening at')) listening++
      check()
    })
    void exited.then(({ code, signal }) => reject(new Error(`npm start exited (${code ?? signal}) before both services listened:\n${said.join('\n')}`)))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    for (const pid of [...logs.map((l) => l.pid), redisPidOf(said)]) if (typeof pid === 'number' && alive(pid)) process.kill(pid, 'SIGKILL')
  })
  await ready
  return {
    child,
    said,
    logs,
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}
