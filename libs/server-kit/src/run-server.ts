import type { FastifyInstance } from 'fastify'
import { ConfigError, type Config } from './config.js'

/**
 * The body of a service's `server.ts`: read the config (exit 1 with a clear
 * message when it is invalid), build the app, listen, and close cleanly on
 * SIGINT/SIGTERM (sockets get 1001 "going away").
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
      app.log.info({ signal }, `${service} shutting down`)
      app.close().then(
        () => process.exit(0),
        (err) => {
          app.log.error({ err }, 'error while shutting down')
          process.exit(1)
        },
      )
    })
  }
  return app
}
