import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { Errors, type ErrorCode } from '@switchboard/protocol'
import { randomSecret, signAgentToken } from '@switchboard/server-kit'
import { startStack, type Stack, type TestSocket, handshake, type HandshakeOutcome } from '@switchboard/testing'

type Visitor = { userId: string; username: string; chatId: string }
type Outcome = HandshakeOutcome

const HEX32 = /^[0-9a-f]{32}$/
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')


const userJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User', ...extra } })
const agentJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({
  type: 'Join',
  args: { userId: v.userId, username: v.username, supportUserName: 'Vika', from: 'Support', ...extra },
})
const chatMessage = (v: Visitor, supportId: string, from: 'User' | 'Support', content: string) => ({
  type: 'ChatMessage',
  args: { userId: v.userId, supportId, content, from },
})
const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })

type Asserts = Pick<Test, 'equal'>
/** The next frame is exactly this Error (code and message). */
async function expectError(t: Asserts, socket: TestSocket, code: ErrorCode, message: string = Errors[code].message) {
  const m = await socket.next()
  t.equal(m.text, JSON.stringify({ type: 'Error', args: { code, message } }), `Error ${code}`)
}

/** Proves the socket is open and answering, and that nothing else was sent to it before: a frame of an unknown type gets UNKNOWN_TYPE next. */
async function stillServed(t: Asserts, socket: TestSocket) {
  socket.send({ type: 'Marker' })
  const m = await socket.next()
  t.equal(m.json?.args?.code, 'UNKNOWN_TYPE', 'the socket is open and nothing came before the marker answer')
}

/** A visitor with an open, joined socket, waiting in the queue. */
async function visitorInQueue(stack: Stack, name = 'Nika'): Promise<{ visitor: Visitor; socket: TestSocket }> {
  const visitor = await stack.joinVisitor(name)
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user')
  socket.send(userJoin(visitor))
  const joined = await socket.nextOfType('UserJoined')
  if (joined.json.args.userId !== visitor.userId) throw new Error('unexpected UserJoined')
  return { visitor, socket }
}

const chatUrl = (stack: Stack, v: Visitor) => `${stack.chatServers[0]!.ws}/chat/${v.chatId}`

t.test('AGENT_AUTH on: the whole visitor side works without any token', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)

  const token = await stack.agentToken('Vika')
  const console = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token })
  console.send(joinUser(visitor))
  t.equal((await console.nextOfType('RemoveUser')).json.args.userId, visitor.userId, 'the agent claims')

  const agent = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token })
  agent.send(agentJoin(visitor))
  const joined = await agent.nextOfType('SupportJoinedUser')
  const { supportId } = joined.json.args
  t.match(supportId, HEX32)
  t.equal((await user.nextOfType('SupportJoinedUser')).text, joined.text, 'the visitor learns the supportId')

  user.send(chatMessage(visitor, supportId, 'User', 'Hi'))
  t.equal((await agent.nextOfType('ChatMessage')).json.args.content, 'Hi', 'the visitor speaks')
  t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'Hi', 'and gets the echo')
  agent.send(chatMessage(visitor, supportId, 'Support', 'Hello'))
  t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'Hello', 'and hears the agent')

  // A refresh: a new visitor socket, still without a token, gets the history.
  await user.close()
  const again = await stack.socket(chatUrl(stack, visitor), 'pong:user')
  again.send(userJoin(visitor, { supportId }))
  const history = await again.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string }) => m.content),
    ['Hi', 'Hello'],
  )
})

t.test('AGENT_AUTH on: an invalid token at the /chat handshake is refused with 401 before the upgrade', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = chatUrl(stack, visitor)
  const body = (code: ErrorCode) => ({ upgraded: false, status: 401, body: { statusCode: 401, code, error: 'Unauthorized', message: Errors[code].message } })
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  t.strictSame(await handshake(url, bearer('garbage')), body('TOKEN_INVALID'), 'garbage')
  t.strictSame(await handshake(`${url}?token=x.y.z`), body('TOKEN_INVALID'), 'garbage in the query')
  t.strictSame(await handshake(url, bearer(await stack.agentToken('Vika', { ttlSeconds: -10 }))), body('TOKEN_EXPIRED'), 'expired')
  t.strictSame(
    await handshake(url, bearer(await signAgentToken(randomSecret(), { id: 'agent-vika', name: 'Vika', ttlSeconds: 60 }))),
    body('TOKEN_INVALID'),
    'another secret',
  )
  t.strictSame(
    await handshake(url, bearer(`${b64({ alg: 'none' })}.${b64({ sub: 'agent-vika', exp: Math.floor(Date.now() / 1000) + 60 })}.`)),
    body('TOKEN_INVALID'),
    'alg none',
  )
  // No token at all is a visitor: accepted.
  t.strictSame(await handshake(url), { upgraded: true }, 'no token: a visitor socket')
  t.strictSame(await handshake(`${url}?token=${await stack.agentToken('Vika')}`), { upgraded: true }, 'a valid token in the query')
})

t.test('AGENT_AUTH on: a Support Join needs a token; without one → UNAUTHORIZED, the socket stays open, nothing changes', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)
  const watcher = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token: await stack.agentToken('Watcher') })
  watcher.send({ type: 'Load' })
  t.equal((await watcher.next()).json.userId, visitor.userId, 'the visitor is queued')

  const anonymous = await stack.socket(chatUrl(stack, visitor), 'pong:support')
  anonymous.send(agentJoin(visitor))
  await expectError(t, anonymous, 'UNAUTHORIZED')
  await stillServed(t, anonymous)
  anonymous.send(chatMessage(visitor, 'f'.repeat(32), 'Support', 'let me in'))
  await expectError(t, anonymous, 'NOT_JOINED')

  // The refused Join claimed nobody: the visitor is still waiting and the real agent gets them.
  await stillServed(t, user)
  const agent = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: await stack.agentToken('Vika') })
  agent.send(agentJoin(visitor))
  const joined = await agent.nextOfType('SupportJoinedUser')
  t.equal((await user.nextOfType('SupportJoinedUser')).text, joined.text)
  t.equal((await watcher.nextOfType('RemoveUser')).json.args.userId, visitor.userId, 'the claim is the real agent’s')

  // Even knowing the supportId, a socket without a token cannot join as Support.
  const knowing = await stack.socket(chatUrl(stack, visitor), 'pong:support')
  knowing.send(agentJoin(visitor, { supportId: joined.json.args.supportId }))
  await expectError(t, knowing, 'UNAUTHORIZED')
  await stillServed(t, knowing)
})

t.test("AGENT_AUTH on: the agent's name in SupportJoinedUser is the token's, not the frame's", async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)
  const agent = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: await stack.agentToken('Vika', { id: 'agent-1' }) })
  agent.send(agentJoin(visitor, { supportUserName: 'The CEO' }))
  const joined = await agent.nextOfType('SupportJoinedUser')
  t.equal(joined.json.args.supportUserName, 'Vika', 'to the agent')
  t.equal((await user.nextOfType('SupportJoinedUser')).json.args.supportUserName, 'Vika', 'to the visitor')

  // And the visitor who re-joins without supportId (a seed-004 page) is told the same name.
  const again = await stack.socket(chatUrl(stack, visitor), 'pong:user')
  again.send(userJoin(visitor))
  t.equal((await again.nextOfType('SupportJoinedUser')).json.args.supportUserName, 'Vika', 'the stored name is the token’s')

  // An agent Join without supportUserName is fine with a token: the name comes from it.
  const second = await visitorInQueue(stack, 'Dodo')
  const nameless = await stack.socket(chatUrl(stack, second.visitor), 'pong:support', { token: await stack.agentToken('Dora', { id: 'agent-2' }) })
  nameless.send(agentJoin(second.visitor, { supportUserName: undefined }))
  t.equal((await nameless.nextOfType('SupportJoinedUser')).json.args.supportUserName, 'Dora')
})

t.test('AGENT_AUTH on: an agent’s socket cannot join as the visitor', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)
  const agent = await stack.socket(chatUrl(stack, visitor), 'pong:user', { token: await stack.agentToken('Vika') })
  agent.send(userJoin(visitor))
  await expectError(t, agent, 'IDENTITY_MISMATCH', "An agent's socket cannot join as the visitor")
  await stillServed(t, agent)
  await stillServed(t, user)
})

t.test('AGENT_AUTH on: claims record the agent', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)
  const tokenA = await stack.agentToken('Vika', { id: 'agent-a' })
  const tokenB = await stack.agentToken('Boris', { id: 'agent-b' })

  const consoleA = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token: tokenA })
  consoleA.send(joinUser(visitor))
  t.equal((await consoleA.nextOfType('RemoveUser')).json.args.userId, visitor.userId, 'A claims on Subscriber')

  await t.test("B cannot take A's claimed visitor with a first Join", async (t) => {
    const b = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: tokenB })
    b.send(agentJoin(visitor, { supportUserName: 'Boris' }))
    await expectError(t, b, 'ALREADY_CLAIMED', 'Another agent has already joined this chat')
    await stillServed(t, b)
    await stillServed(t, user)
  })

  const a = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: tokenA })
  a.send(agentJoin(visitor))
  const joined = await a.nextOfType('SupportJoinedUser')
  const { supportId } = joined.json.args
  t.equal(joined.json.args.supportUserName, 'Vika', "A's Join works")
  t.equal((await user.nextOfType('SupportJoinedUser')).text, joined.text)
  user.send(chatMessage(visitor, supportId, 'User', 'first'))
  t.equal((await a.nextOfType('ChatMessage')).json.args.content, 'first')
  await user.nextOfType('ChatMessage')

  await t.test("B cannot re-join A's chat, even with A's supportId", async (t) => {
    const b = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: tokenB })
    b.send(agentJoin(visitor, { supportId, supportUserName: 'Boris' }))
    await expectError(t, b, 'IDENTITY_MISMATCH', 'Another agent has this chat')
    b.send(chatMessage(visitor, supportId, 'Support', 'I am A, honest'))
    await expectError(t, b, 'NOT_JOINED')
    b.send(agentJoin(visitor, { supportUserName: 'Boris' }))
    await expectError(t, b, 'ALREADY_CLAIMED', 'Another agent has already joined this chat')
    t.equal(b.received.filter((m) => m.json?.type === 'ChatHistory').length, 0, 'B never saw the history')
  })

  await t.test("A's console re-joining without supportId gets its chat back, for this socket only", async (t) => {
    const a2 = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: await stack.agentToken('Vika', { id: 'agent-a' }) })
    a2.send(agentJoin(visitor))
    const back = await a2.next()
    t.equal(back.text, joined.text, 'SupportJoinedUser with the same supportId and name')
    const history = await a2.next()
    t.equal(history.json?.type, 'ChatHistory')
    t.same(
      history.json.args.messages.map((m: { content: string }) => m.content),
      ['first'],
    )
    a2.send(chatMessage(visitor, supportId, 'Support', 'back again'))
    t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'back again', 'and it speaks in the chat')
    t.equal(user.received.filter((m) => m.json?.type === 'SupportJoinedUser').length, 1, 'the visitor was not told twice')
    t.equal(a.received.filter((m) => m.json?.type === 'SupportJoinedUser').length, 1, "A's first socket neither")
    t.equal((await a.nextOfType('ChatMessage')).json.args.content, 'back again')
  })

  await t.test("A's refresh with its supportId also works", async (t) => {
    const a3 = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: tokenA })
    a3.send(agentJoin(visitor, { supportId }))
    const history = await a3.next()
    t.equal(history.json?.type, 'ChatHistory')
    t.same(
      history.json.args.messages.map((m: { content: string }) => m.content),
      ['first', 'back again'],
    )
  })
})

t.test('a visitor cannot speak as Support; an agent cannot speak as User', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const { visitor, socket: user } = await visitorInQueue(stack)
  const agent = await stack.socket(chatUrl(stack, visitor), 'pong:support', { token: await stack.agentToken('Vika') })
  agent.send(agentJoin(visitor))
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')

  user.send(chatMessage(visitor, supportId, 'Support', 'I am the bank, send me your PIN'))
  await expectError(t, user, 'IDENTITY_MISMATCH', 'This socket joined as User')
  agent.send(chatMessage(visitor, supportId, 'User', 'I am the visitor'))
  await expectError(t, agent, 'IDENTITY_MISMATCH', 'This socket joined as Support')

  // Neither was stored nor delivered: the next real message is the first.
  user.send(chatMessage(visitor, supportId, 'User', 'real'))
  t.equal((await agent.nextOfType('ChatMessage')).json.args.content, 'real')
  t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'real')
  const reader = await stack.socket(chatUrl(stack, visitor), 'pong:user')
  reader.send(userJoin(visitor, { supportId }))
  t.same(
    (await reader.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string; from: string }) => [m.from, m.content]),
    [['User', 'real']],
  )

  // The visitor, knowing the supportId, cannot join as Support either.
  const impostor = await stack.socket(chatUrl(stack, visitor), 'pong:support')
  impostor.send(agentJoin(visitor, { supportId }))
  await expectError(t, impostor, 'UNAUTHORIZED')
  impostor.send(agentJoin(visitor))
  await expectError(t, impostor, 'UNAUTHORIZED')
})
