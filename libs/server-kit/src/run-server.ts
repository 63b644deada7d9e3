import type { FastifyInstance } from 'fastify'
import { ConfigError, type Config } from './config.js'

/** A shutdown that takes longer than this ends with exit code 1. */
export const SHUTDOWN_DEADLINE_MS = 10_000

/**
 * The body of a service's `server.ts`: read the config (exit 1 with a clear
 * message when it is invalid), build the app, listen, and close cleanly on
 * SIGINT/SIGTERM (frames in flight finish, sockets get 1001 "going away",
 * Redis quits), exiting 0 — or 1 if that takes over SHUTDOWN_DEADLINE_MS.
 */
export async function runServer(
  service: string,
  loadConfig: (env: NodeJS.ProcessEnv) => Config,
  buildApp: (config: Config) => Promise<FastifyInstance>,
  listenOptions: (config: Config) => { host: string; port: number },
  /** Runs once listening, e.g. to print where to go next. */
  afterListen?: (app: FastifyInstance, config: Config) => Promise<void> | void,
): Promise<FastifyInstance> {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const app = await buildApp(config)
  try {
    await app.listen(listenOptions(config))
  } catch (err) {
    app.log.fatal({ err }, `${service} could not listen`)
    process.exit(1)
  }
  await afterListen?.(app, config)
  let closing = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) return
      closing = true
      const started = Date.now()
      app.log.info({ signal }, `${service} shutting down`)
      // Whatever hangs (a client that never answers, Redis gone), the process goes.
      const deadline = setTimeout(() => {
        app.log.error({ ms: Date.now() - started }, `${service} did not shut down within ${SHUTDOWN_DEADLINE_MS} ms; exiting`)
        process.exit(1)
      }, SHUTDOWN_DEADLINE_MS)
      deadline.unref()
      // app.close: new requests and upgrades get 503, frames in flight finish,
      // sockets close with 1001, the server stops listening, then Redis quits.
      app.close().then(
        () => {
          app.log.info({ ms: Date.now() - started }, `${service} shut down`)
          process.exit(0)
        },
        (err) => {
          app.log.error({ err }, 'error while shutting down')
          process.exit(1)
        },
      )
    })
  }
  return app
}
