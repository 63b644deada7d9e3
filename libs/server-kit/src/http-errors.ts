import type { FastifyReply } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { Errors, type ErrorCode } from '@switchboard/protocol'

/** Answers an HTTP request (or a refused WebSocket handshake) with an error from the protocol's table. */
export function sendHttpError(reply: FastifyReply, code: ErrorCode, status?: number, message?: string): FastifyReply {
  const spec: { message: string; httpStatus?: number } = Errors[code]
  const statusCode = status ?? spec.httpStatus ?? 500
  return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message: message ?? spec.message })
}

/** The body {@link sendHttpError} answers with, for route schemas (documentation: replies are not serialised through it). */
export const httpErrorSchema = {
  type: 'object',
  description: 'An error from the protocol error table',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'Stable code clients switch on (see libs/protocol/src/errors.ts)' },
    error: { type: 'string', description: 'The HTTP reason phrase' },
    message: { type: 'string' },
  },
} as const
