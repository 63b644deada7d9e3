import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import { redisPlugin } from './redis-plugin.js'
import { socketsPlugin } from './sockets-plugin.js'
import { expiryPlugin } from './expiry-plugin.js'

export interface ServiceOptions {
  /** A logger config for fastify; defaults to pino at `config.logLevel`, named after the service. */
  logger?: FastifyServerOptions['logger']
  /** How often expired chats are looked for. @default 500 */
  sweepIntervalMs?: number
}

/**
 * What every Switchboard service starts with: fastify with pino, Redis and
 * `/health`, WebSockets with heartbeat and idle close, and the expiry sweeper.
 * The service adds its routes.
 */
export async function createServiceApp(
  name: string,
  config: Config,
  opts: ServiceOptions = {},
  fastifyOptions: FastifyServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({ ...fastifyOptions, logger: opts.logger ?? { level: config.logLevel, name } })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(socketsPlugin, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxFrameBytes: config.maxFrameBytes,
  })
  await app.register(expiryPlugin, opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs })
  return app
}
