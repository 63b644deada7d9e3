import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import { isDisplayName } from '@switchboard/protocol'
import { sendHttpError } from '@switchboard/server-kit'
import { createChat, isRedisUnavailable, serviceStatus } from '@switchboard/domain'

/** A visitor's name, trimmed; null when it is not a valid display name. */
export function normaliseName(raw: string): string | null {
  const name = raw.trim()
  return isDisplayName(name) ? name : null
}

/**
 * `GET /user/join/:userName` registers a visitor: `{userId, username, chatId}`.
 * `GET /status` tells a visitor, before they start, whether anyone is there.
 * CORS for the allowed origins (foreign ones were refused with 403 before
 * this), and a per-IP rate on joining shared by all instances through Redis.
 */
export async function joinRoute(app: FastifyInstance, opts: { chatTtlMs: number; joinsPerMinute: number }) {
  await app.register(cors, { origin: true, methods: ['GET'] })
  await app.register(rateLimit, {
    global: false,
    redis: app.redis.commands,
    nameSpace: 'sb:rate:join:',
    // With Redis down, joining fails anyway (503); the limiter must not turn that into a 500.
    skipOnError: true,
    errorResponseBuilder: (_req, context) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      error: 'Too Many Requests',
      message: `Too many visitors registered from this address; try again in ${context.after}`,
    }),
  })
  const rateLimitConfig = { rateLimit: { max: opts.joinsPerMinute, timeWindow: 60_000 } }

  app.get<{ Params: { userName: string } }>('/user/join/:userName', { config: rateLimitConfig }, async (req, reply) => {
    const username = normaliseName(req.params.userName)
    if (username === null) return sendHttpError(reply, 'INVALID_USERNAME')
    try {
      const visitor = await createChat(app.redis.commands, username, { chatTtlMs: opts.chatTtlMs })
      req.log.info({ chatId: visitor.chatId }, 'visitor registered')
      return { userId: visitor.userId, username: visitor.username, chatId: visitor.chatId }
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err
      return sendHttpError(reply, 'STORE_UNAVAILABLE')
    }
  })

  /** `{agentsOnline, agentsAway, visitorsWaiting, estimatedWaitSeconds}`: see docs/agent-workflow.md. */
  app.get('/status', async (_req, reply) => {
    try {
      return await serviceStatus(app.redis.commands)
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err
      return sendHttpError(reply, 'STORE_UNAVAILABLE')
    }
  })
}
