import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { PubSub, connectRedis, waitUntilReady, type RedisConnections } from '@switchboard/domain'

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
  /** How long start-up waits for Redis before running degraded (health 503) until it answers. @default 3000 */
  connectTimeoutMs?: number
}

/** Connects to Redis, adds `/health`, and closes the connections with the app. */
export const redisPlugin = fp(
  async function redisPlugin(app: FastifyInstance, opts: RedisPluginOptions) {
    const redis = connectRedis(opts.url, app.log)
    app.decorate('redis', redis)
    app.decorate('pubsub', new PubSub(redis.subscriber))
    app.addHook('onClose', async () => {
      await redis.close()
    })
    const timeout = opts.connectTimeoutMs ?? 3000
    const ready = await Promise.all([waitUntilReady(redis.commands, timeout), waitUntilReady(redis.subscriber, timeout)])
    if (!ready.every(Boolean)) app.log.warn({ url: redactUrl(opts.url) }, 'redis is not answering yet; running degraded until it does')

    app.get('/health', async (_req, reply) => {
      try {
        // Both connections: with pub/sub down, nothing would reach the sockets.
        if (redis.subscriber.status !== 'ready') throw new Error('subscriber connection not ready')
        await redis.commands.ping()
        return { status: 'ok', redis: 'up' }
      } catch {
        return reply.code(503).send({ status: 'unavailable', redis: 'down' })
      }
    })
  },
  { name: 'switchboard-redis' },
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
