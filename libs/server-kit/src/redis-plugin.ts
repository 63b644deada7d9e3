import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { PubSub, connectRedis, waitUntilReady, type RedisConnections } from '@switchboard/domain'
import { coalesceWrites } from './private-apis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Command and subscriber connections to Redis. */
    redis: RedisConnections
    /** Reference-counted channel subscriptions over `redis.subscriber`. */
    pubsub: PubSub
  }
}

export interface RedisPluginOptions {
  url: string
  /** A Redis Cluster's nodes (`redis(s)://` URLs); when set, `url` is not used. */
  clusterNodes?: readonly string[]
  /** How long start-up waits for Redis before running degraded (`/ready` 503) until it answers. @default 3000 */
  connectTimeoutMs?: number
}

const healthBody = {
  type: 'object',
  required: ['status', 'redis'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    redis: { type: 'string', enum: ['up', 'down'], description: 'Whether both Redis connections are connected' },
  },
} as const

const healthSchema = {
  summary: 'Liveness: the process is serving requests',
  description: 'Always 200 while the process serves requests, whatever the state of Redis (`redis` says it, for information).',
  tags: ['operations'],
  response: { 200: { ...healthBody, description: 'Alive' } },
}

const readySchema = {
  summary: 'Readiness: this instance can take traffic',
  description: 'Both Redis connections answer and the instance is not shutting down.',
  tags: ['operations'],
  response: {
    200: { ...healthBody, description: 'Ready' },
    // Once the app is closing, fastify itself answers every request 503 (return503OnClosing), before this route.
    503: { ...healthBody, description: 'Redis is unreachable (while shutting down, fastify answers 503 for every route)' },
  },
}

/**
 * Connects to Redis, counts its reconnects, and adds `/health` (alive: always
 * 200) and `/ready` (Redis answers and not closing: 200, else 503); closes
 * the connections with the app.
 */
export const redisPlugin = fp(
  async function redisPlugin(app: FastifyInstance, opts: RedisPluginOptions) {
    // Commands sent in one turn leave in one write (see coalesceWrites).
    const redis = connectRedis(opts.clusterNodes ? { clusterNodes: opts.clusterNodes } : opts.url, app.log, { onCommandConnection: coalesceWrites })
    // Said once at start, so an operator sees which Redis holds the chats (never its password).
    const target = (opts.clusterNodes ?? [opts.url]).map(redactUrl).join(',')
    app.log.info({ redis: target }, 'using redis')
    for (const [connection, client] of [['commands', redis.commands], ['subscriber', redis.subscriber]] as const) {
      client.on('reconnecting', () => app.metrics.redisReconnects.inc({ connection }))
    }
    app.decorate('redis', redis)
    app.decorate('pubsub', new PubSub(redis.subscriber))
    app.addHook('onClose', async () => {
      await redis.close()
    })
    const timeout = opts.connectTimeoutMs ?? 3000
    const ready = await Promise.all([waitUntilReady(redis.commands, timeout), waitUntilReady(redis.subscriber, timeout)])
    if (!ready.every(Boolean)) app.log.warn({ url: target }, 'redis is not answering yet; running degraded until it does')

    // Both connections: with pub/sub down, nothing would reach the sockets.
    const connected = () => redis.commands.status === 'ready' && redis.subscriber.status === 'ready'

    app.get('/health', { schema: healthSchema }, async () => ({ status: 'ok', redis: connected() ? 'up' : 'down' }))

    app.get('/ready', { schema: readySchema }, async (_req, reply) => {
      try {
        if (!connected()) throw new Error('redis connection not ready')
        await redis.commands.ping()
        return { status: 'ok', redis: 'up' }
      } catch {
        return reply.code(503).send({ status: 'unavailable', redis: 'down' })
      }
    })
  },
  { name: 'switchboard-redis', dependencies: ['switchboard-metrics'] },
)

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '<unparseable url>'
  }
}
