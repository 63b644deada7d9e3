import type { FastifyInstance, FastifySchema } from 'fastify'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import { isDisplayName } from '@switchboard/protocol'
import { httpErrorSchema, sendHttpError } from '@switchboard/server-kit'
import { createChat, isRedisUnavailable, serviceStatus, type ExpiryOptions } from '@switchboard/domain'

/** A visitor's name, trimmed; null when it is not a valid display name. */
export function normaliseName(raw: string): string | null {
  const name = raw.trim()
  return isDisplayName(name) ? name : null
}

const id = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const

// Documentation: the name is checked by the route (400 INVALID_USERNAME), not
// by a schema, whose refusal would not be the protocol's error.
const joinSchema = {
  summary: 'Register a visitor',
  description: 'Creates a chat for a visitor (seed-004). The body is exactly `{userId, username, chatId}`, in that order; the visitor then opens `/chat/{chatId}` and sends Join.',
  tags: ['visitors'],
  params: {
    type: 'object',
    required: ['userName'],
    properties: { userName: { type: 'string', description: 'The display name, 1 to 64 characters (trimmed)' } },
  },
  response: {
    200: {
      description: 'Registered',
      type: 'object',
      required: ['userId', 'username', 'chatId'],
      properties: { userId: id, username: { type: 'string' }, chatId: id },
    },
    400: { ...httpErrorSchema, description: 'INVALID_USERNAME' },
    403: { ...httpErrorSchema, description: 'ORIGIN_NOT_ALLOWED' },
    429: { ...httpErrorSchema, description: 'RATE_LIMITED: JOIN_RATE_LIMIT_PER_MINUTE from this address' },
    503: { ...httpErrorSchema, description: 'STORE_UNAVAILABLE: Redis is unreachable' },
  },
}

const statusSchema = {
  summary: 'Whether anyone is there',
  description: 'What a visitor sees before starting: agents online and away, visitors waiting, and an estimated wait (see docs/agent-workflow.md).',
  tags: ['visitors'],
  response: {
    200: {
      description: 'Current status',
      type: 'object',
      required: ['agentsOnline', 'agentsAway', 'visitorsWaiting', 'estimatedWaitSeconds'],
      properties: {
        agentsOnline: { type: 'integer' },
        agentsAway: { type: 'integer' },
        visitorsWaiting: { type: 'integer' },
        estimatedWaitSeconds: { type: 'integer', nullable: true, description: 'null when there is nothing to estimate from' },
      },
    },
    403: { ...httpErrorSchema, description: 'ORIGIN_NOT_ALLOWED' },
    503: { ...httpErrorSchema, description: 'STORE_UNAVAILABLE: Redis is unreachable' },
  },
}

/**
 * `GET /user/join/:userName` registers a visitor: `{userId, username, chatId}`.
 * `GET /status` tells a visitor, before they start, whether anyone is there.
 * CORS for the allowed origins (foreign ones were refused with 403 before
 * this), and a per-IP rate on joining shared by all instances through Redis.
 */
export async function joinRoute(app: FastifyInstance, opts: ExpiryOptions & { joinsPerMinute: number }) {
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

  app.get<{ Params: { userName: string } }>('/user/join/:userName', { config: rateLimitConfig, schema: joinSchema }, async (req, reply) => {
    const username = normaliseName(req.params.userName)
    if (username === null) return sendHttpError(reply, 'INVALID_USERNAME')
    try {
      const visitor = await createChat(app.redis.commands, username, opts)
      req.log.info({ chatId: visitor.chatId }, 'visitor registered')
      return { userId: visitor.userId, username: visitor.username, chatId: visitor.chatId }
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err
      return sendHttpError(reply, 'STORE_UNAVAILABLE')
    }
  })

  // The router gives up on a parameter longer than its maxParamLength (a name of
  // 1,025+ URL characters) and would answer 404; this catch-all is tried next,
  // so such a name, like any bad name, is 400 INVALID_USERNAME.
  // (Not in the OpenAPI document: `/user/join/{userName}` documents the 400.)
  app.get('/user/join/*', { schema: { hide: true } as FastifySchema }, async (_req, reply) => sendHttpError(reply, 'INVALID_USERNAME'))

  /** `{agentsOnline, agentsAway, visitorsWaiting, estimatedWaitSeconds}`: see docs/agent-workflow.md. */
  app.get('/status', { schema: statusSchema }, async (_req, reply) => {
    try {
      return await serviceStatus(app.redis.commands)
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err
      return sendHttpError(reply, 'STORE_UNAVAILABLE')
    }
  })
}
