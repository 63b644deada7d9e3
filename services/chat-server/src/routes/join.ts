import type { FastifyInstance } from 'fastify'
import { Errors, isDisplayName } from '@switchboard/protocol'
import { createChat, isRedisUnavailable } from '@switchboard/domain'

/** A visitor's name, trimmed; null when it is not a valid display name. */
export function normaliseName(raw: string): string | null {
  const name = raw.trim()
  return isDisplayName(name) ? name : null
}

/** `GET /user/join/:userName` registers a visitor: `{userId, username, chatId}`. */
export async function joinRoute(app: FastifyInstance, opts: { chatTtlMs: number }) {
  app.get<{ Params: { userName: string } }>('/user/join/:userName', async (req, reply) => {
    const username = normaliseName(req.params.userName)
    if (username === null) {
      return reply.code(400).send({ statusCode: 400, code: 'INVALID_USERNAME', error: 'Bad Request', message: Errors.INVALID_USERNAME.message })
    }
    try {
      const visitor = await createChat(app.redis.commands, username, { chatTtlMs: opts.chatTtlMs })
      req.log.info({ chatId: visitor.chatId }, 'visitor registered')
      return { userId: visitor.userId, username: visitor.username, chatId: visitor.chatId }
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err
      return reply.code(503).send({ statusCode: 503, code: 'STORE_UNAVAILABLE', error: 'Service Unavailable', message: Errors.STORE_UNAVAILABLE.message })
    }
  })
}
