import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis-server.js'
import { TEST_ENV, type Teardown } from './stack.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))

export interface ServiceProcess {
  /** http://127.0.0.1:port */
  http: string
  /** ws://127.0.0.1:port */
  ws: string
  port: number
  child: ChildProcess
  /** Every log line (pino JSON) the process wrote, stdout and stderr. */
  logs: string[]
  /** Resolves when the process has exited, with how. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends a signal (SIGTERM, SIGKILL …). */
  kill(signal: NodeJS.Signals): void
}

/**
 * Runs a service's built `dist/server.js` as its own process (for tests that
 * kill it or send it signals), with the test defaults of `testConfig` and the
 * given env, on a free port (or `env`'s port). Resolves once it listens;
 * killed with SIGKILL at teardown if still running.
 */
export async function spawnService(
  t: Teardown,
  service: 'chat-server' | 'subscriber',
  env: Record<string, string>,
): Promise<ServiceProcess> {
  const portVar = service === 'chat-server' ? 'CHAT_SERVER_PORT' : 'SUBSCRIBER_PORT'
  const port = Number(env[portVar] ?? (await freePort()))
  const child = spawn(process.execPath, [`services/${service}/dist/server.js`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...TEST_ENV,
      ...env,
      [portVar]: String(port),
    },
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const logs: string[] = []
  const listening = new Promise<void>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        logs.push(line)
        if (line.includes('Server listening at')) resolve()
      })
    }
    void exited.then(({ code, signal }) => reject(new Error(`${service} exited (${code ?? signal}) before listening:\n${logs.join('\n')}`)))
  })
  await listening
  return {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    port,
    child,
    logs,
    exited,
    kill: (signal) => void child.kill(signal),
  }
}
