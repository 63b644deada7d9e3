import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Errors, type ErrorCode } from '@switchboard/protocol'
import { startStack, type TestSocket } from '@switchboard/testing'

type Asserts = Pick<typeof t, 'equal' | 'match' | 'same' | 'ok'>
type Visitor = { userId: string; username: string; chatId: string }

const MAX_FRAME_BYTES = 1024
const randomId = () => randomBytes(16).toString('hex')
const CHAT_MESSAGE_PREFIX = '{"type":"ChatMessage","args":'

/**
 * The next frame `socket` receives must be exactly
 * `{"type":"Error","args":{"code":…,"message":…}}` with this code and message.
 */
async function expectError(t: Asserts, socket: TestSocket, code: ErrorCode, message: string | RegExp = Errors[code].message) {
  const m = await socket.next()
  t.equal(m.json?.type, 'Error', `an Error frame: ${m.text.slice(0, 200)}`)
  t.equal(m.json?.args?.code, code)
  if (typeof message === 'string') t.equal(m.json?.args?.message, message)
  else t.match(m.json?.args?.message, message)
  t.equal(
    m.text,
    `{"type":"Error","args":{"code":${JSON.stringify(code)},"message":${JSON.stringify(m.json?.args?.message)}}}`,
    'exact shape and field order',
  )
}

const userJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User', ...extra } })
const agentJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({
  type: 'Join',
  args: { userId: v.userId, username: v.username, supportUserName: 'Vika', from: 'Support', ...extra },
})
const chatMessage = (v: Visitor, supportId: string, from: 'User' | 'Support', content: string, extra: Record<string, unknown> = {}) => ({
  type: 'ChatMessage',
  args: { userId: v.userId, supportId, content, from, ...extra },
})
const userJoinedText = (v: Visitor) => `{"type":"UserJoined","args":{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}}`

t.test('errors that keep the socket open', async (t) => {
  const stack = await startStack(t, { env: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) } })
  const ws = stack.chatServers[0]!.ws
  const visitor = await stack.joinVisitor('Nika')
  const other = await stack.joinVisitor('Dodo')
  const url = `${ws}/chat/${visitor.chatId}`

  /** Every ChatMessage echo, as received, in order: what the history must hold at the end. */
  const stored: string[] = []

  await t.test('before Join: each bad frame gets its Error, then Join on the same socket still works', async (t) => {
    const cases: [string, unknown, ErrorCode, (string | RegExp)?][] = [
      ['text that is not JSON', '{"type":"Join","args":', 'INVALID_JSON'],
      ['JSON that is not an object', '[1,2]', 'INVALID_FRAME', 'A frame is a JSON object {"type", "args"}'],
      ['a frame without type', { args: {} }, 'INVALID_FRAME', /"type"/],
      ['Join without userId', { type: 'Join', args: { username: 'Nika', from: 'User' } }, 'INVALID_FRAME', /^Join: args\.userId: /],
      ['Join with a bad from', { type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'Admin' } }, 'INVALID_FRAME', /^Join: args\.from: /],
      ['ChatMessage with empty content', chatMessage(visitor, randomId(), 'User', ''), 'INVALID_FRAME', /^ChatMessage: args\.content: /],
      ['an unknown type', { type: 'Typing', args: { userId: visitor.userId } }, 'UNKNOWN_TYPE', /"Typing"/],
      ['a Subscriber frame', { type: 'Load' }, 'UNKNOWN_TYPE', /"Load"/],
      ['ChatMessage before Join', chatMessage(visitor, randomId(), 'User', 'too early'), 'NOT_JOINED'],
      ["Join with another chat's userId", userJoin({ ...visitor, userId: other.userId }), 'IDENTITY_MISMATCH', 'userId does not belong to this chat'],
      ['re-join with a supportId before any agent', userJoin(visitor, { supportId: randomId() }), 'IDENTITY_MISMATCH', 'supportId does not belong to this chat'],
      ['agent Join without supportUserName', agentJoin(visitor, { supportUserName: undefined }), 'INVALID_FRAME', /supportUserName/],
    ]
    for (const [what, frame, code, message] of cases) {
      await t.test(what, async (t) => {
        const user = await stack.socket(url)
        user.send(frame)
        await expectError(t, user, code, message)
        user.send(userJoin(visitor))
        t.equal((await user.next()).text, userJoinedText(visitor), 'the socket still answers')
      })
    }
    await t.test('a binary frame', async (t) => {
      const user = await stack.socket(url)
      user.ws.send(Buffer.from(JSON.stringify(userJoin(visitor))), { binary: true })
      await expectError(t, user, 'BINARY_NOT_SUPPORTED')
      user.send(userJoin(visitor))
      t.equal((await user.next()).text, userJoinedText(visitor), 'the socket still answers')
    })
  })

  // The visitor's socket for the rest of the test.
  const user = await stack.socket(url)
  user.send(userJoin(visitor))
  t.equal((await user.next()).text, userJoinedText(visitor))
  let supportId = ''
  let support: TestSocket

  await t.test('joined, no agent yet', async (t) => {
    user.send(userJoin(visitor))
    await expectError(t, user, 'ALREADY_JOINED')
    user.send(chatMessage(visitor, randomId(), 'User', 'anyone there?'))
    await expectError(t, user, 'NO_AGENT_YET')
    user.send(chatMessage(visitor, randomId(), 'Support', 'pretending to be the agent'))
    await expectError(t, user, 'IDENTITY_MISMATCH', 'This socket joined as User')
    user.send(chatMessage(other, randomId(), 'User', "another chat's userId"))
    await expectError(t, user, 'IDENTITY_MISMATCH', 'userId does not belong to this chat')
    user.ws.send(Buffer.from('hi'), { binary: true })
    await expectError(t, user, 'BINARY_NOT_SUPPORTED')
    user.send('not json')
    await expectError(t, user, 'INVALID_JSON')
  })

  await t.test('an agent joins: first a frame without supportUserName, then a good one on the same socket', async (t) => {
    support = await stack.socket(url, 'pong:support')
    support.send(agentJoin(visitor, { supportUserName: undefined }))
    await expectError(t, support, 'INVALID_FRAME', /supportUserName/)
    support.send(agentJoin(visitor))
    const joined = await support.next()
    t.equal(joined.json?.type, 'SupportJoinedUser')
    supportId = joined.json.args.supportId
    t.equal((await user.next()).text, joined.text, 'the visitor gets SupportJoinedUser: its socket survived the errors')
  })

  /** A valid message from one side: both get the echo as their next frame. */
  async function exchange(t: Asserts, from: 'User' | 'Support', content: string) {
    const sender = from === 'User' ? user : support
    sender.send(chatMessage(visitor, supportId, from, content))
    const echo = await user.next()
    t.equal(echo.json?.type, 'ChatMessage', `echo of ${content}: ${echo.text.slice(0, 200)}`)
    t.match(echo.json?.args, { content, from, userId: visitor.userId, supportId })
    t.equal((await support.next()).text, echo.text, 'the agent gets the same frame')
    stored.push(echo.text.slice(CHAT_MESSAGE_PREFIX.length, -1))
  }

  await t.test('in an active chat, errors interleaved with messages', async (t) => {
    await exchange(t, 'User', 'first')

    user.send(chatMessage(visitor, randomId(), 'User', 'WRONG supportId'))
    await expectError(t, user, 'IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    await exchange(t, 'User', 'after a wrong supportId')

    support.send(chatMessage(visitor, supportId, 'User', 'agent posing as visitor'))
    await expectError(t, support, 'IDENTITY_MISMATCH', 'This socket joined as Support')
    await exchange(t, 'Support', 'after posing')

    support.send(agentJoin(visitor))
    await expectError(t, support, 'ALREADY_JOINED')
    user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 42, from: 'User' } })
    await expectError(t, user, 'INVALID_FRAME', /^ChatMessage: args\.content: /)
    user.send(chatMessage(visitor, supportId, 'User', ''))
    await expectError(t, user, 'INVALID_FRAME', /^ChatMessage: args\.content: /)
    user.send('{"type":"ChatMessage","args":{"content":"half')
    await expectError(t, user, 'INVALID_JSON')
    support.send({ type: 'Hello' })
    await expectError(t, support, 'UNKNOWN_TYPE', /"Hello"/)
    await exchange(t, 'Support', 'after the garbage')
    await exchange(t, 'User', 'still here')
  })

  await t.test('a second agent cannot take the chat, and can still re-join on the same socket', async (t) => {
    const second = await stack.socket(url, 'pong:support')
    second.send(agentJoin(visitor, { supportUserName: 'Kiku' }))
    await expectError(t, second, 'ALREADY_CLAIMED', 'Another agent has already joined this chat')
    second.send(agentJoin(visitor, { supportId: randomId() }))
    await expectError(t, second, 'IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    second.send(agentJoin(visitor, { supportId }))
    const history = await second.next()
    t.equal(history.json?.type, 'ChatHistory', 'the socket still answers')
    await second.close()
  })

  await t.test('a re-join with a wrong supportId, then the right one', async (t) => {
    const again = await stack.socket(url)
    again.send(userJoin(visitor, { supportId: randomId() }))
    await expectError(t, again, 'IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    again.send(userJoin({ ...visitor, userId: other.userId }, { supportId }))
    await expectError(t, again, 'IDENTITY_MISMATCH', 'userId does not belong to this chat')
    again.send(userJoin(visitor, { supportId }))
    t.equal((await again.next()).json?.type, 'ChatHistory')
    await again.close()
  })

  await t.test('frames up to MAX_FRAME_BYTES are fine; a bigger one closes the socket with 1009', async (t) => {
    // a frame of exactly MAX_FRAME_BYTES bytes, with multi-byte characters in it
    const base = JSON.stringify(chatMessage(visitor, supportId, 'User', 'Ł'))
    const content = 'Ł' + 'x'.repeat(MAX_FRAME_BYTES - Buffer.byteLength(base))
    const atLimit = JSON.stringify(chatMessage(visitor, supportId, 'User', content))
    t.equal(Buffer.byteLength(atLimit), MAX_FRAME_BYTES)
    await exchange(t, 'User', content)

    const tooBig = JSON.stringify(chatMessage(visitor, supportId, 'User', `${content}x`))
    t.equal(Buffer.byteLength(tooBig), MAX_FRAME_BYTES + 1)
    user.send(tooBig)
    const closed = await user.closed
    t.equal(closed.code, 1009)
    // the agent's socket is untouched
    support.send(chatMessage(visitor, supportId, 'Support', 'you were cut off'))
    const echo = await support.next()
    t.equal(echo.json?.args?.content, 'you were cut off')
    stored.push(echo.text.slice(CHAT_MESSAGE_PREFIX.length, -1))
  })

  await t.test('nothing was lost or corrupted by the bad frames: the history is exactly the messages sent', async (t) => {
    t.equal(stored.length, 7)
    const again = await stack.socket(url)
    again.send(userJoin(visitor, { supportId }))
    const history = await again.next()
    t.equal(history.json?.type, 'ChatHistory')
    t.equal(
      history.text,
      `{"type":"ChatHistory","args":{"user":{"username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"},"messages":[${stored.join(',')}]}}`,
    )
    t.same(
      history.json.args.messages.map((m: { content: string }) => m.content.slice(0, 30)),
      ['first', 'after a wrong supportId', 'after posing', 'after the garbage', 'still here', 'Ł' + 'x'.repeat(29), 'you were cut off'],
    )
    // and the other chat is untouched
    const otherSocket = await stack.socket(`${ws}/chat/${other.chatId}`)
    otherSocket.send(userJoin(other))
    t.equal((await otherSocket.next()).text, userJoinedText(other))
  })
})

t.test('answers come in the order of the frames, binary frames included', async (t) => {
  const stack = await startStack(t)
  const visitor = await stack.joinVisitor('Nika')
  const user = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`)
  user.send(userJoin(visitor))
  user.ws.send(Buffer.from('binary'), { binary: true })
  user.send('not json')
  await user.nextOfType('Error')
  await user.nextOfType('Error')
  await user.nextOfType('UserJoined')
  t.same(
    user.received.map((m) => m.json?.args?.code ?? m.json?.type),
    ['UserJoined', 'BINARY_NOT_SUPPORTED', 'INVALID_JSON'],
    `UserJoined, then the binary Error, then the JSON Error (got ${user.received.map((m) => m.json?.args?.code ?? m.json?.type).join(', ')})`,
  )
})

t.test('errors that close the socket', async (t) => {
  const stack = await startStack(t)
  const ws = stack.chatServers[0]!.ws

  await t.test('an invalid chat id in the URL → Error INVALID_CHAT_ID, close 1008', async (t) => {
    for (const id of ['not-hex', 'D2464B5386044DAF9E36FFD414260F67', randomId().slice(1), `${randomId()}0`, encodeURIComponent('<script>')]) {
      const socket = await stack.socket(`${ws}/chat/${id}`)
      await expectError(t, socket, 'INVALID_CHAT_ID')
      const closed = await socket.closed
      t.equal(closed.code, 1008, `${id}: 1008`)
      t.equal(socket.received.length, 1, 'nothing else was sent')
    }
  })

  await t.test('a well-formed but unknown chat id → ChatExpired, close 4410', async (t) => {
    const chatId = randomId()
    const socket = await stack.socket(`${ws}/chat/${chatId}`)
    const closed = await socket.closed
    t.equal(closed.code, 4410)
    t.same(
      socket.received.map((m) => m.text),
      [`{"type":"ChatExpired","args":{"chatId":"${chatId}"}}`],
      `exactly one frame: ChatExpired (got ${socket.received.map((m) => m.text).join(' | ')})`,
    )
  })

  await t.test('a frame to an unknown chat sent before the answer changes nothing', async (t) => {
    const chatId = randomId()
    const socket = await stack.socket(`${ws}/chat/${chatId}`)
    socket.send({ type: 'Join', args: { userId: randomId(), username: 'Nika', from: 'User' } })
    const closed = await socket.closed
    t.equal(closed.code, 4410)
    t.notOk(
      socket.received.some((m) => m.json?.type === 'UserJoined'),
      'no UserJoined for a chat that does not exist',
    )
    // and no such chat came into being
    const again = await stack.socket(`${ws}/chat/${chatId}`)
    t.equal((await again.closed).code, 4410)
  })
})

t.test('shutting down closes every socket with 1001 (SHUTTING_DOWN)', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const url = `${chat.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url)
  user.send(userJoin(visitor))
  await user.nextOfType('UserJoined')
  const notJoined = await stack.socket(url)
  await chat.app.close()
  for (const socket of [user, notJoined]) {
    const closed = await socket.closed
    t.equal(closed.code, 1001)
    t.equal(closed.reason, Errors.SHUTTING_DOWN.message)
  }
})
