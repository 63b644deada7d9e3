import { existsSync } from 'node:fs'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyStatic from '@fastify/static'
import type { Config } from './config.js'
import { redisPlugin } from './redis-plugin.js'
import { socketsPlugin } from './sockets-plugin.js'
import { expiryPlugin } from './expiry-plugin.js'
import { securityPlugin } from './security-plugin.js'
import { openApiPlugin } from './openapi-plugin.js'
import { metricsPlugin } from './metrics-plugin.js'

/** What a request looks like in the log: never a token (browsers put it in the query string). */
export function requestForLog(req: FastifyRequest): Record<string, unknown> {
  return { method: req.method, url: redactToken(req.url), remoteAddress: req.ip }
}

/** The URL with the value of any query parameter that decodes to `token` replaced by `<redacted>`. */
export function redactToken(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const hash = url.indexOf('#', q)
  const fragment = hash < 0 ? '' : url.slice(hash)
  const params = url
    .slice(q + 1, hash < 0 ? undefined : hash)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const rawName = eq < 0 ? pair : pair.slice(0, eq)
      let name: string
      try {
        name = decodeURIComponent(rawName.replaceAll('+', ' '))
      } catch {
        name = rawName
      }
      return name.trim().toLowerCase() === 'token' ? `${rawName}=<redacted>` : pair
    })
  return `${url.slice(0, q)}?${params.join('&')}${fragment}`
}

function withRedaction(logger: NonNullable<FastifyServerOptions['logger']>): FastifyServerOptions['logger'] {
  if (logger === true) return { serializers: { req: requestForLog } }
  if (typeof logger !== 'object') return logger
  return { ...logger, serializers: { ...logger.serializers, req: requestForLog } }
}

/** Routes polled all day long (probes, scrapes): their request lines are debug, not info. */
const ROUTINE_URLS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics'])

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Logged like ROUTINE_URLS: set on the pages' files and the icon. */
    routineLog?: boolean
  }
}

function isRoutine(request: FastifyRequest): boolean {
  const route = request.routeOptions
  return (route.url !== undefined && ROUTINE_URLS.has(route.url)) || route.config?.routineLog === true
}

/**
 * fastify's request lines ("incoming request", "request completed"), at debug
 * for routine requests, which at info would bury everything else (a probe a
 * second, every file of every page load). Errors, and routine requests
 * answered 4xx/5xx, stay as loud as fastify makes them.
 */
class ServiceLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isRoutine(request)) return super.incomingRequest(request, reply, metadata)
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || reply.statusCode >= 400 || !isRoutine(request)) return super.requestCompleted(error, request, reply, metadata)
    if (!this.isLogDisabled(request)) reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
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
  /** What the service is for, one sentence, for its OpenAPI document. */
  description: string
  /** The built browser page (index.html, app.js, style.css), served at `/`. */
  publicDir?: string
  fastifyOptions?: FastifyServerOptions
}

/**
 * What every Switchboard service starts with: fastify with pino, Redis,
 * `/health`, `/ready`, `/metrics` and `/docs/openapi.json`, WebSockets with heartbeat and idle close, the expiry sweeper,
 * and its browser page. The service adds its routes.
 */
export async function createServiceApp(service: ServiceDefinition, config: Config, opts: ServiceOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...service.fastifyOptions,
    trustProxy: config.trustProxy,
    // Whatever logger is configured, requests are logged without tokens.
    logger: withRedaction(opts.logger ?? { level: config.logLevel, name: service.name }),
    logController: new ServiceLogController(),
  })
  // Before any route: the OpenAPI document collects routes as they are added,
  // and every other plugin moves metrics.
  await app.register(openApiPlugin, { title: `Switchboard ${service.name}`, description: service.description })
  await app.register(metricsPlugin)
  // WebSockets first: @fastify/websocket's onRequest hook must run before any
  // hook that refuses an upgrade, or the refused socket is never destroyed.
  await app.register(socketsPlugin, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
    maxSocketsPerIp: config.limits.maxSocketsPerIp,
    ratePerSecond: config.limits.ratePerSecond,
    rateBurst: config.limits.rateBurst,
    rateCloseAfter: config.limits.rateCloseAfter,
  })
  await app.register(securityPlugin, { config })
  await app.register(redisPlugin, { url: config.redisUrl, ...(config.redisClusterNodes ? { clusterNodes: config.redisClusterNodes } : {}) })
  // Warned at most half a TTL ahead, so a short TTL does not warn at every message.
  const warnMs = Math.min(config.chatExpiryWarningSeconds, config.chatTtlSeconds / 2) * 1000
  await app.register(expiryPlugin, { warnMs, ...(opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs }) })
  if (service.publicDir !== undefined) {
    if (existsSync(service.publicDir)) await app.register(servePage, { root: service.publicDir })
    else app.log.warn({ publicDir: service.publicDir }, 'browser page not built (npm run build); serving the API only')
  }
  return app
}

/**
 * The browser page's files, and its icon at /favicon.ico too (browsers and
 * tools ask for it without reading the page), all logged as routine: in a
 * scope of their own, so the flag is set on exactly these routes.
 */
async function servePage(scope: FastifyInstance, opts: { root: string }): Promise<void> {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, routineLog: true }
  })
  await scope.register(fastifyStatic, { root: opts.root, index: 'index.html' })
  scope.get('/favicon.ico', { schema: { hide: true } as never }, (_req, reply) => reply.sendFile('favicon.svg'))
}
