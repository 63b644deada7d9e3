import type { FastifyInstance } from 'fastify'
import { Errors, MAX_NAME_LENGTH } from '@switchboard/protocol'
import { createChat, isRedisUnavailable } from '@switchboard/domain'

// Control characters (C0, DEL, C1) would corrupt logs and agent UIs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** A visitor's name: trimmed, 1 to 64 characters (code points), no control characters. Null when unusable. */
export function normaliseName(raw: string): string | null {
  const name = raw.trim()
  if (name.length === 0 || [...name].length > MAX_NAME_LENGTH || CONTROL.test(name)) return null
  return name
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
