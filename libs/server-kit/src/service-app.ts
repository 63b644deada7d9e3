import { existsSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyStatic from '@fastify/static'
import type { Config } from './config.js'
import { redisPlugin } from './redis-plugin.js'
import { socketsPlugin } from './sockets-plugin.js'
import { expiryPlugin } from './expiry-plugin.js'
import { securityPlugin } from './security-plugin.js'

/** What a request looks like in the log: never a token (browsers put it in the query string). */
export function requestForLog(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: req.url.replace(/([?&]token=)[^&#]*/gi, '$1<redacted>'),
    remoteAddress: req.ip,
  }
}

export interface ServiceOptions {
  /** A logger config for fastify; defaults to pino at `config.logLevel`, named after the service. */
  logger?: FastifyServerOptions['logger']
  /** How often expired chats are looked for. @default 500 */
  sweepIntervalMs?: number
}

export interface ServiceDefinition {
  /** The service's name in logs. */
  name: string
  /** The built browser page (index.html, app.js, style.css), served at `/`. */
  publicDir?: string
  fastifyOptions?: FastifyServerOptions
}

/**
 * What every Switchboard service starts with: fastify with pino, Redis and
 * `/health`, WebSockets with heartbeat and idle close, the expiry sweeper,
 * and its browser page. The service adds its routes.
 */
export async function createServiceApp(service: ServiceDefinition, config: Config, opts: ServiceOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...service.fastifyOptions,
    trustProxy: config.trustProxy,
    logger: opts.logger ?? { level: config.logLevel, name: service.name, serializers: { req: requestForLog } },
  })
  await app.register(securityPlugin, { config })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(socketsPlugin, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxFrameBytes: config.maxFrameBytes,
    maxSocketsPerIp: config.limits.maxSocketsPerIp,
    ratePerSecond: config.limits.ratePerSecond,
    rateBurst: config.limits.rateBurst,
    rateCloseAfter: config.limits.rateCloseAfter,
  })
  await app.register(expiryPlugin, opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs })
  if (service.publicDir !== undefined) {
    if (existsSync(service.publicDir)) await app.register(fastifyStatic, { root: service.publicDir, index: 'index.html' })
    else app.log.warn({ publicDir: service.publicDir }, 'browser page not built (npm run build); serving the API only')
  }
  return app
}
