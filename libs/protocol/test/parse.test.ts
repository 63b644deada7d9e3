import t from 'tap'
import {
  ChatClientFrames,
  Errors,
  MAX_NAME_LENGTH,
  PING,
  PONGS,
  ProtocolError,
  QueueClientFrames,
  QueueClientFramesV2,
  compileFrameParser,
  encode,
  isId,
  type ErrorCode,
} from '@switchboard/protocol'

const chat = compileFrameParser(ChatClientFrames)
const queue = compileFrameParser(QueueClientFrames)
const queueV2 = compileFrameParser(QueueClientFramesV2)

const USER_ID = '9d6d2db0cdb84d8ba67105670d94d641'
const SUPPORT_ID = '7c270542e64a4dfbb2bc1c7793746674'
const CHAT_ID = 'd2464b5386044daf9e36ffd414260f67'

const join = (args: Record<string, unknown>) => JSON.stringify({ type: 'Join', args })
const message = (args: Record<string, unknown>) => JSON.stringify({ type: 'ChatMessage', args })
const validJoin = { userId: USER_ID, username: 'Nika', from: 'User' }
const validMessage = { userId: USER_ID, supportId: SUPPORT_ID, content: 'hey', from: 'User' }

type Asserts = Pick<typeof t, 'type' | 'equal' | 'match'>

/** Parses `text`, expecting a ProtocolError with `code` whose message matches `pattern`. */
function rejects(
  t: Asserts,
  parser: { parse(text: string): unknown },
  text: string,
  code: ErrorCode,
  pattern: RegExp | string,
  extra: { todo?: string } = {},
): void {
  let caught: unknown
  try {
    parser.parse(text)
  } catch (err) {
    caught = err
  }
  t.type(caught, ProtocolError, `${text.slice(0, 80)} throws a ProtocolError`, extra)
  const err = caught as ProtocolError | undefined
  t.equal(err?.code, code, `${text.slice(0, 80)} → ${code}`, extra)
  t.match(err?.message, pattern, `${text.slice(0, 80)}: message ${JSON.stringify(err?.message)}`, extra)
}


t.test('valid chat frames parse to {type, args}', async (t) => {
  t.same(chat.parse(join(validJoin)), { type: 'Join', args: validJoin })
  const rejoin = { ...validJoin, supportId: SUPPORT_ID }
  t.same(chat.parse(join(rejoin)), { type: 'Join', args: rejoin })
  const agent = { userId: USER_ID, supportUserName: 'Vika', username: 'Nika', from: 'Support' }
  t.same(chat.parse(join(agent)), { type: 'Join', args: agent })
  const agentRejoin = { ...agent, supportId: SUPPORT_ID }
  t.same(chat.parse(join(agentRejoin)), { type: 'Join', args: agentRejoin })
  t.same(chat.parse(message(validMessage)), { type: 'ChatMessage', args: validMessage })
  const fromAgent = { ...validMessage, supportUserName: 'Vika', from: 'Support' }
  t.same(chat.parse(message(fromAgent)), { type: 'ChatMessage', args: fromAgent })
  // the seed's own example frames
  t.same(
    chat.parse(
      '{"type": "Join", "args": {"userId" : "9d6d2db0cdb84d8ba67105670d94d641", "supportUserName": "Vika", "username": "Nika", "from": "Support"}}',
    ).type,
    'Join',
  )
  // names at the limit, unicode content
  const longest = 'x'.repeat(MAX_NAME_LENGTH)
  t.equal((chat.parse(join({ ...validJoin, username: longest })).args as { username: string }).username, longest)
  const content = 'Größe "quoted" \\ back\nslash 🙂'
  t.equal((chat.parse(message({ ...validMessage, content })).args as { content: string }).content, content)
})

t.test('valid queue frames parse; Load needs no args and ignores what it gets', async (t) => {
  t.same(queue.parse('{"type":"Load"}'), { type: 'Load', args: {} })
  t.same(queue.parse('{"type":"Load","args":{}}'), { type: 'Load', args: {} })
  t.equal(queue.parse('{"type":"Load","args":{"page":2}}').type, 'Load')
  const claim = { userId: USER_ID, chatId: CHAT_ID, username: 'Zaza' }
  t.same(queue.parse(JSON.stringify({ type: 'JoinUser', args: claim })), { type: 'JoinUser', args: claim })
})

t.test('extra unknown fields are accepted, at the top and in args', async (t) => {
  const parsed = chat.parse(JSON.stringify({ type: 'Join', id: 7, args: { ...validJoin, locale: 'ka', extra: { a: 1 } } }))
  t.equal(parsed.type, 'Join')
  t.match(parsed.args, validJoin)
  const m = chat.parse(message({ ...validMessage, clientMsgId: 'abc' }))
  t.match(m.args, validMessage)
  const q = queue.parse(JSON.stringify({ type: 'JoinUser', args: { userId: USER_ID, chatId: CHAT_ID, username: 'Z', note: 1 } }))
  t.equal(q.type, 'JoinUser')
})

t.test('text that is not JSON → INVALID_JSON with the table message', async (t) => {
  for (const text of ['', '{', '{"type":"Join"', 'ping?', "{'type':'Join'}", 'undefined']) {
    rejects(t, chat, text, 'INVALID_JSON', new RegExp(`^${Errors.INVALID_JSON.message}$`))
  }
  rejects(t, queue, '{"type":', 'INVALID_JSON', Errors.INVALID_JSON.message)
})

t.test('JSON that is not an object frame → INVALID_FRAME', async (t) => {
  for (const text of ['null', '42', '"Join"', 'true', '[]', '[{"type":"Join"}]']) {
    rejects(t, chat, text, 'INVALID_FRAME', /JSON object/)
  }
  for (const text of ['{}', '{"args":{}}', '{"type":1}', '{"type":null}', '{"type":["Join"]}', '{"type":{"name":"Join"}}']) {
    rejects(t, chat, text, 'INVALID_FRAME', /"type"/)
  }
  rejects(t, queue, '{"type":false}', 'INVALID_FRAME', /"type"/)
})

t.test('an unknown type → UNKNOWN_TYPE naming it and the known ones', async (t) => {
  rejects(t, chat, '{"type":"Hello","args":{}}', 'UNKNOWN_TYPE', /"Hello".*Join, ChatMessage/)
  rejects(t, chat, '{"type":"join","args":{}}', 'UNKNOWN_TYPE', /"join"/)
  // a queue frame on the chat socket and the other way round
  rejects(t, chat, '{"type":"Load"}', 'UNKNOWN_TYPE', /"Load"/)
  rejects(t, queue, join(validJoin), 'UNKNOWN_TYPE', /"Join".*Load, JoinUser/)
  // names of Object.prototype members are not frame types
  for (const type of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
    rejects(t, chat, JSON.stringify({ type, args: {} }), 'UNKNOWN_TYPE', type)
  }
  // a huge type is not echoed back whole
  let caught: ProtocolError | undefined
  try {
    chat.parse(JSON.stringify({ type: 'X'.repeat(10_000) }))
  } catch (err) {
    caught = err as ProtocolError
  }
  t.equal(caught?.code, 'UNKNOWN_TYPE')
  t.ok((caught?.message.length ?? Infinity) < 200, 'the message quotes at most a prefix of the type')
})

t.test('a bad field → INVALID_FRAME naming the frame type and the field', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['missing userId', { username: 'Nika', from: 'User' }, 'args.userId'],
    ['userId not hex', { ...validJoin, userId: 'z'.repeat(32) }, 'args.userId'],
    ['userId uppercase', { ...validJoin, userId: USER_ID.toUpperCase() }, 'args.userId'],
    ['userId too short', { ...validJoin, userId: USER_ID.slice(1) }, 'args.userId'],
    ['userId a UUID with dashes', { ...validJoin, userId: '9d6d2db0-cdb8-4d8b-a671-05670d94d641' }, 'args.userId'],
    ['userId a number', { ...validJoin, userId: 1 }, 'args.userId'],
    ['missing username', { userId: USER_ID, from: 'User' }, 'args.username'],
    ['empty username', { ...validJoin, username: '' }, 'args.username'],
    ['blank username', { ...validJoin, username: '   ' }, 'args.username'],
    ['username too long', { ...validJoin, username: 'x'.repeat(MAX_NAME_LENGTH + 1) }, 'args.username'],
    ['missing from', { userId: USER_ID, username: 'Nika' }, 'args.from'],
    ['unknown party', { ...validJoin, from: 'Admin' }, 'args.from'],
    ['party in lower case', { ...validJoin, from: 'user' }, 'args.from'],
    ['bad supportId', { ...validJoin, supportId: 'nope' }, 'args.supportId'],
    ['null supportId', { ...validJoin, supportId: null }, 'args.supportId'],
    ['blank supportUserName', { ...validJoin, from: 'Support', supportUserName: ' ' }, 'args.supportUserName'],
    ['supportUserName not a string', { ...validJoin, from: 'Support', supportUserName: 5 }, 'args.supportUserName'],
  ]
  for (const [what, args, field] of cases) {
    t.test(`Join: ${what}`, async (t) => rejects(t, chat, join(args), 'INVALID_FRAME', new RegExp(`^Join: ${field.replace('.', '\\.')}: `)))
  }
  const messageCases: [string, Record<string, unknown>, string][] = [
    ['empty content', { ...validMessage, content: '' }, 'args.content'],
    ['missing content', { userId: USER_ID, supportId: SUPPORT_ID, from: 'User' }, 'args.content'],
    ['content a number', { ...validMessage, content: 42 }, 'args.content'],
    ['content an object', { ...validMessage, content: { text: 'hi' } }, 'args.content'],
    ['missing supportId', { userId: USER_ID, content: 'hi', from: 'User' }, 'args.supportId'],
    ['bad userId', { ...validMessage, userId: 'abc' }, 'args.userId'],
    ['bad from', { ...validMessage, from: 'Bot' }, 'args.from'],
    ['blank supportUserName', { ...validMessage, from: 'Support', supportUserName: '' }, 'args.supportUserName'],
  ]
  for (const [what, args, field] of messageCases) {
    t.test(`ChatMessage: ${what}`, async (t) =>
      rejects(t, chat, message(args), 'INVALID_FRAME', new RegExp(`^ChatMessage: ${field.replace('.', '\\.')}: `)),
    )
  }
  t.test('JoinUser fields', async (t) => {
    const claim = { userId: USER_ID, chatId: CHAT_ID, username: 'Zaza' }
    rejects(t, queue, JSON.stringify({ type: 'JoinUser', args: { ...claim, chatId: 'x' } }), 'INVALID_FRAME', /^JoinUser: args\.chatId: /)
    rejects(t, queue, JSON.stringify({ type: 'JoinUser', args: { ...claim, userId: undefined } }), 'INVALID_FRAME', /^JoinUser: args\.userId: /)
    rejects(t, queue, JSON.stringify({ type: 'JoinUser', args: { ...claim, username: 5 } }), 'INVALID_FRAME', /^JoinUser: args\.username: /)
    rejects(t, queue, '{"type":"JoinUser"}', 'INVALID_FRAME', /^JoinUser: args\.userId: /)
  })
})

t.test('v2 queue frames: SetStatus and TransferChat parse on v2 only; a bad field is INVALID_FRAME', async (t) => {
  const frame = (type: string, args?: unknown) => JSON.stringify({ type, args })
  for (const status of ['online', 'away']) t.same(queueV2.parse(frame('SetStatus', { status })), { type: 'SetStatus', args: { status } })
  for (const toAgentId of ['agent-7', null, 'a'.repeat(128)]) {
    const args = { chatId: CHAT_ID, toAgentId }
    t.same(queueV2.parse(frame('TransferChat', args)), { type: 'TransferChat', args })
  }
  // the seed-004 frames are unchanged on v2
  t.same(queueV2.parse('{"type":"Load"}'), { type: 'Load', args: {} })
  // v1 sockets do not know the v2 frames, and say which ones they do know
  rejects(t, queue, frame('SetStatus', { status: 'away' }), 'UNKNOWN_TYPE', /"SetStatus".*Load, JoinUser$/)
  rejects(t, queue, frame('TransferChat', { chatId: CHAT_ID, toAgentId: null }), 'UNKNOWN_TYPE', /"TransferChat"/)

  const cases: [string, string, unknown, RegExp][] = [
    ['SetStatus', 'an unknown status', { status: 'busy' }, /^SetStatus: args\.status: /],
    ['SetStatus', 'status in upper case', { status: 'Away' }, /^SetStatus: args\.status: /],
    ['SetStatus', 'no args', undefined, /^SetStatus: args\.status: /],
    ['TransferChat', 'a malformed chatId', { chatId: 'x', toAgentId: null }, /^TransferChat: args\.chatId: /],
    ['TransferChat', 'toAgentId missing (null must be said)', { chatId: CHAT_ID }, /^TransferChat: args\.toAgentId: /],
    ['TransferChat', 'an empty toAgentId', { chatId: CHAT_ID, toAgentId: '' }, /^TransferChat: args\.toAgentId: /],
    ['TransferChat', 'a toAgentId over 128 characters', { chatId: CHAT_ID, toAgentId: 'a'.repeat(129) }, /^TransferChat: args\.toAgentId: /],
    ['TransferChat', 'a numeric toAgentId', { chatId: CHAT_ID, toAgentId: 7 }, /^TransferChat: args\.toAgentId: /],
  ]
  for (const [type, what, args, pattern] of cases) t.test(`${type}: ${what}`, async (t) => rejects(t, queueV2, frame(type, args), 'INVALID_FRAME', pattern))
})

t.test('args that are not an object → INVALID_FRAME naming args', async (t) => {
  for (const args of [null, 'Nika', 7, [], [validJoin], true]) {
    rejects(t, chat, JSON.stringify({ type: 'Join', args }), 'INVALID_FRAME', /^Join: args: /)
  }
  rejects(t, queue, '{"type":"Load","args":[]}', 'INVALID_FRAME', /^Load: args: /)
  rejects(t, queue, '{"type":"Load","args":"x"}', 'INVALID_FRAME', /^Load: args: /)
  // a Join without args at all is missing its first required field
  rejects(t, chat, '{"type":"Join"}', 'INVALID_FRAME', /^Join: args\.userId: /)
})


t.test('a name is counted in characters (code points), as /user/join counts it', async (t) => {
  // /user/join/{name} accepts up to 64 code points; the name it returns is what
  // the visitor then sends in Join, so Join must accept it too.
  const parses = (args: Record<string, unknown>) => {
    try {
      chat.parse(join(args))
      return 'ok'
    } catch (err) {
      return (err as Error).message
    }
  }
  t.equal(parses({ ...validJoin, username: '🙂'.repeat(MAX_NAME_LENGTH) }), 'ok', '64 emoji are a valid username')
  t.equal(parses({ ...validJoin, username: 'Zaza Ł 🙂'.repeat(8) }), 'ok', '64 mixed characters are a valid username')
  t.equal(
    parses({ ...validJoin, from: 'Support', supportUserName: 'Ł'.repeat(30) + '🙂'.repeat(34) }),
    'ok',
    '64 code points are a valid supportUserName',
  )
  t.equal(parses({ ...validJoin, username: 'Ł'.repeat(MAX_NAME_LENGTH) }), 'ok', '64 BMP characters are a valid username')
  rejects(t, chat, join({ ...validJoin, username: '🙂'.repeat(MAX_NAME_LENGTH + 1) }), 'INVALID_FRAME', /args\.username/)
  rejects(t, chat, join({ ...validJoin, username: 'Ł'.repeat(MAX_NAME_LENGTH + 1) }), 'INVALID_FRAME', /args\.username/)
})

t.test('an agent name with a control character is rejected, as /user/join rejects it', async (t) => {
  rejects(t, chat, join({ ...validJoin, from: 'Support', supportUserName: 'Vi\u0007ka' }), 'INVALID_FRAME', /args\.supportUserName/)
  rejects(t, chat, join({ ...validJoin, from: 'Support', supportUserName: 'Vika\n' }), 'INVALID_FRAME', /args\.supportUserName/)
  rejects(
    t,
    chat,
    message({ ...validMessage, from: 'Support', supportUserName: 'Vi\u009bka' }),
    'INVALID_FRAME',
    /args\.supportUserName/,
  )
})

t.test('encode.* gives the seed-004 frames byte for byte', async (t) => {
  const visitor = { chatId: CHAT_ID, userId: USER_ID, username: 'Nika' } // deliberately not in wire order
  t.equal(encode.visitor(visitor), `{"username":"Nika","userId":"${USER_ID}","chatId":"${CHAT_ID}"}`)
  t.equal(
    encode.visitor({ ...visitor, extra: 'dropped' } as typeof visitor),
    `{"username":"Nika","userId":"${USER_ID}","chatId":"${CHAT_ID}"}`,
    'only the three seed fields are sent',
  )
  t.equal(encode.userJoined(visitor), `{"type":"UserJoined","args":{"username":"Nika","userId":"${USER_ID}","chatId":"${CHAT_ID}"}}`)
  t.equal(
    encode.supportJoinedUser({ chatId: CHAT_ID, userId: USER_ID, username: 'Nika', supportUserName: 'Vika', supportId: SUPPORT_ID }),
    `{"type":"SupportJoinedUser","args":{"supportId":"${SUPPORT_ID}","supportUserName":"Vika","username":"Nika","userId":"${USER_ID}","chatId":"${CHAT_ID}"}}`,
  )
  t.equal(encode.chatExpired(CHAT_ID), `{"type":"ChatExpired","args":{"chatId":"${CHAT_ID}"}}`)
  t.equal(encode.removeUser(USER_ID), `{"type":"RemoveUser","args":{"userId":"${USER_ID}"}}`)
  t.equal(encode.error('NOT_JOINED', Errors.NOT_JOINED.message), `{"type":"Error","args":{"code":"NOT_JOINED","message":"${Errors.NOT_JOINED.message}"}}`)

  // stored messages are wrapped as they are, without being parsed again
  const stored = `{"content":"hi","from":"User","userId":"${USER_ID}","supportId":"${SUPPORT_ID}","timestamp":"2023-10-22T18:18:59.360Z"}`
  t.equal(encode.chatMessageFromStored(stored), `{"type":"ChatMessage","args":${stored}}`)
  t.same(JSON.parse(encode.chatMessageFromStored(stored)).args, JSON.parse(stored))
  const history = encode.chatHistoryFromStored(visitor, [stored, stored])
  t.equal(
    history,
    `{"type":"ChatHistory","args":{"user":{"username":"Nika","userId":"${USER_ID}","chatId":"${CHAT_ID}"},"messages":[${stored},${stored}]}}`,
  )
  t.same(JSON.parse(history).args.messages, [JSON.parse(stored), JSON.parse(stored)])
  t.equal(encode.chatHistoryFromStored(visitor, []), `{"type":"ChatHistory","args":{"user":${encode.visitor(visitor)},"messages":[]}}`)

  // strings are escaped, so any name or content round-trips
  const tricky = 'quote " backslash \\ newline \n tab \t nul \u0000 ⟨🙂⟩ </script>'
  t.same(JSON.parse(encode.userJoined({ ...visitor, username: tricky })).args.username, tricky)
  t.same(JSON.parse(encode.error('INTERNAL_ERROR', tricky)).args.message, tricky)
  const m = { content: tricky, from: 'Support' as const, userId: USER_ID, supportId: SUPPORT_ID, timestamp: '2023-10-22T18:18:59.360Z' }
  t.same(JSON.parse(encode.chatMessageArgs(m)), m)
})

t.test('ChatMessage args follow the seed-004 field order', async (t) => {
  // Seed 004, steps 5-7: {"userId","supportId","content","timestamp","from"}, in the echo and in ChatHistory.
  const m = { content: 'hey', from: 'User' as const, userId: USER_ID, supportId: SUPPORT_ID, timestamp: '2023-10-22T18:18:59.360Z' }
  t.equal(
    encode.chatMessageArgs(m),
    `{"userId":"${USER_ID}","supportId":"${SUPPORT_ID}","content":"hey","timestamp":"2023-10-22T18:18:59.360Z","from":"User"}`,
    'seed order',
  )
  // whatever the order, the same fields and values
  t.same(JSON.parse(encode.chatMessageArgs(m)), m)
  t.same(Object.keys(JSON.parse(encode.chatMessageArgs(m))).sort(), ['content', 'from', 'supportId', 'timestamp', 'userId'])
})

t.test('ids and heartbeats', async (t) => {
  t.ok(isId(USER_ID))
  t.notOk(isId(USER_ID.toUpperCase()))
  t.notOk(isId(`${USER_ID}0`))
  t.notOk(isId(`${USER_ID}\n`), 'no trailing newline slips through $')
  t.notOk(isId(''))
  t.equal(PING, 'ping')
  t.same(PONGS, { User: 'pong:user', Support: 'pong:support' })
})
