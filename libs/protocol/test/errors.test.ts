import t from 'tap'
import { CloseCodes, Errors, ProtocolError, UserMessages, isProtocolError, userMessage, type ErrorCode, type ErrorSpec } from '@switchboard/protocol'

const entries = Object.entries(Errors) as [ErrorCode, ErrorSpec][]

/** A close code a server may send (RFC 6455 §7.4): the defined 1000-1014 except the three reserved ones, or a private 4000-4999. */
function isSendableCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false
  if (code >= 4000 && code <= 4999) return true
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006
}

t.test('the table is not empty and holds every code the sockets and routes use', async (t) => {
  t.ok(entries.length > 0)
  for (const code of [
    'INVALID_JSON',
    'INVALID_FRAME',
    'UNKNOWN_TYPE',
    'BINARY_NOT_SUPPORTED',
    'NOT_JOINED',
    'ALREADY_JOINED',
    'IDENTITY_MISMATCH',
    'NO_AGENT_YET',
    'ALREADY_CLAIMED',
    'VISITOR_NOT_FOUND',
    'NOT_IN_QUEUE',
    'STORE_UNAVAILABLE',
    'INTERNAL_ERROR',
    'INVALID_CHAT_ID',
    'CHAT_EXPIRED',
    'FRAME_TOO_LARGE',
    'IDLE_TIMEOUT',
    'SHUTTING_DOWN',
    'INVALID_USERNAME',
    'AGENT_AT_CAPACITY',
    'AGENT_AWAY',
    'AGENT_UNAVAILABLE',
    'NOT_ASSIGNED',
    'CHAT_TRANSFERRED',
  ]) {
    t.ok(Object.hasOwn(Errors, code), `${code} is in the table`)
  }
})

t.test('every entry has a human message', async (t) => {
  for (const [code, spec] of entries) {
    t.type(spec.message, 'string', `${code}.message is a string`)
    t.ok(spec.message.trim().length >= 10, `${code}.message says something: ${JSON.stringify(spec.message)}`)
    t.equal(spec.message, spec.message.trim(), `${code}.message has no stray whitespace`)
  }
})

t.test('the keys are the codes: stable UPPER_SNAKE identifiers, each one once', async (t) => {
  const codes = entries.map(([code]) => code)
  t.equal(new Set(codes).size, codes.length, 'codes are unique')
  for (const code of codes) {
    t.match(code, /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/, `${code} is UPPER_SNAKE_CASE`)
    const err = new ProtocolError(code)
    t.equal(err.code, code, `new ProtocolError(${code}).code is the key`)
    t.equal(err.message, Errors[code].message, `${code}: the default message comes from the table`)
  }
  // messages tell codes apart, too
  const messages = entries.map(([, spec]) => spec.message)
  t.equal(new Set(messages).size, messages.length, 'messages are unique')
})

t.test('close codes are ones a server may send, and each is a named CloseCode', async (t) => {
  const named = new Set<number>(Object.values(CloseCodes))
  for (const [name, code] of Object.entries(CloseCodes)) {
    t.ok(isSendableCloseCode(code), `CloseCodes.${name} = ${code} is 1000-1014 (not 1004-1006) or 4000-4999`)
  }
  t.equal(named.size, Object.keys(CloseCodes).length, 'no two CloseCodes share a number')
  let closing = 0
  for (const [code, spec] of entries) {
    if (spec.closeCode === undefined) continue
    closing++
    t.ok(isSendableCloseCode(spec.closeCode), `${code}.closeCode ${spec.closeCode} is in a valid range`)
    t.ok(named.has(spec.closeCode), `${code}.closeCode ${spec.closeCode} is one of CloseCodes`)
  }
  t.ok(closing > 0, 'some errors close the socket')
  // the ones the protocol documents
  t.equal(Errors.INVALID_CHAT_ID.closeCode, 1008)
  t.equal(Errors.FRAME_TOO_LARGE.closeCode, 1009)
  t.equal(Errors.IDLE_TIMEOUT.closeCode, 4408)
  t.equal(Errors.CHAT_EXPIRED.closeCode, 4410)
  t.equal(Errors.SHUTTING_DOWN.closeCode, 1001)
  t.equal(Errors.CHAT_TRANSFERRED.closeCode, 4403)
  // a client that reads too slowly may come back (the client library reconnects on 1013, and a v2 socket resumes)
  t.equal(Errors.SLOW_CONSUMER.closeCode, 1013)
  // errors a client can recover from keep the socket open
  for (const code of [
    'INVALID_JSON',
    'INVALID_FRAME',
    'UNKNOWN_TYPE',
    'BINARY_NOT_SUPPORTED',
    'NOT_JOINED',
    'IDENTITY_MISMATCH',
    'STORE_UNAVAILABLE',
    'AGENT_AT_CAPACITY',
    'AGENT_AWAY',
    'AGENT_UNAVAILABLE',
    'NOT_ASSIGNED',
  ] as const) {
    t.equal((Errors[code] as ErrorSpec).closeCode, undefined, `${code} does not close the socket`)
  }
})

t.test('HTTP statuses, where given, are client or server errors', async (t) => {
  for (const [code, spec] of entries) {
    if (spec.httpStatus === undefined) continue
    t.ok(Number.isInteger(spec.httpStatus) && spec.httpStatus >= 400 && spec.httpStatus <= 599, `${code}.httpStatus ${spec.httpStatus}`)
  }
  t.equal(Errors.INVALID_USERNAME.httpStatus, 400)
})

t.test('ProtocolError', async (t) => {
  const plain = new ProtocolError('NOT_JOINED')
  t.type(plain, Error)
  t.equal(plain.name, 'ProtocolError')
  t.equal(plain.code, 'NOT_JOINED')
  t.equal(plain.message, Errors.NOT_JOINED.message)
  t.ok(isProtocolError(plain))

  const custom = new ProtocolError('INVALID_FRAME', 'Join: args.userId: Expected required property')
  t.equal(custom.code, 'INVALID_FRAME')
  t.equal(custom.message, 'Join: args.userId: Expected required property', 'a specific message replaces the table one')

  for (const other of [new Error('NOT_JOINED'), { code: 'NOT_JOINED', message: 'x' }, 'NOT_JOINED', null, undefined]) {
    t.notOk(isProtocolError(other), `${String(other)} is not a ProtocolError`)
  }
})

t.test('every code has a short text for people, in plain words, apart from the developer message', async (t) => {
  for (const [code, spec] of entries) {
    const text = UserMessages[code]
    t.type(text, 'string', `${code} has a user-facing text`)
    t.ok(text.length > 0 && text.length <= 90, `${code}: short (${text.length} characters)`)
    t.notMatch(text, /[A-Z]{2,}_[A-Z_]+|clientMessageId|\bv2\b|Redis|frame|seq\b/i, `${code}: no setting names or protocol words`)
    t.not(text, spec.message, `${code}: not the developer message`)
  }
  t.same(Object.keys(UserMessages).sort(), entries.map(([code]) => code).sort(), 'no text for a code that is not in the table')
  t.equal(userMessage('STORE_UNAVAILABLE'), 'Reconnecting… your message will be sent.')
  t.match(userMessage('SOME_FUTURE_CODE'), /went wrong/, 'an unknown code gets a general text')
})
