import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { expiryPlugin, redisPlugin, socketsPlugin, type Config } from '@switchboard/server-kit'
import { queueFeedPlugin } from './plugins/queue-feed.js'
import { usersRoute } from './routes/users.js'

export interface BuildOptions {
  /** A logger config for fastify; defaults to pino at `config.logLevel`. */
  logger?: FastifyServerOptions['logger']
  /** How often expired chats are looked for. @default 500 */
  sweepIntervalMs?: number
}

/** Builds Subscriber without listening: WebSocket `/users` for agents, `GET /health`. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? { level: config.logLevel, name: 'subscriber' } })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(socketsPlugin, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxFrameBytes: config.maxFrameBytes,
  })
  await app.register(expiryPlugin, opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs })
  await app.register(queueFeedPlugin)
  await app.register(usersRoute)
  return app
}
