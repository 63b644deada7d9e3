import t, { type Test } from 'tap'
import { once } from 'node:events'
import { Errors } from '@switchboard/protocol'
import { connectRedis, keys } from '@switchboard/domain'
import { startStack, type Received, type Stack, type TestSocket, startRedis, redisReady, openChat, type ActiveChat } from '@switchboard/testing'

/*
 * Protocol v2, delivery: seq and messageId on every stored message, Ack for a
 * clientMessageId (once, however often it is retried), Error with the
 * clientMessageId for anything not stored, resume with lastSeq, paging.
 * Sockets without the subprotocol must keep getting seed-004 bytes.
 */

type Party = 'User' | 'Support'
const HEX32 = /^[0-9a-f]{32}$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const SEED_MESSAGE_KEYS = ['userId', 'supportId', 'content', 'timestamp', 'from']
const V2_MESSAGE_KEYS = [...SEED_MESSAGE_KEYS, 'seq', 'messageId']


const isType = (type: string) => (m: Received) => m.json?.type === type
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const isSeq = (seq: number) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.seq === seq
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const seqsOf = (messages: { seq: number }[]) => messages.map((m) => m.seq)

/**
 * Waits for the next frame that matches and returns the frames received before
 * it that no wait had consumed yet (consuming them too).
 */
async function framesUntil(socket: TestSocket, predicate: (m: Received) => boolean): Promise<Received[]> {
  const hit = await socket.next(predicate)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

/**
 * Ordering marker for frames a socket is sent directly: a frame the server
 * answers with Error INVALID_JSON, in turn after everything sent before it.
 */
function framesBeforeMarker(socket: TestSocket): Promise<Received[]> {
  socket.send('marker: not JSON')
  return framesUntil(socket, (m) => m.json?.type === 'Error' && m.json.args.code === 'INVALID_JSON')
}

/** Seed-004 bytes of a frame, rebuilt in seed order from only the seed's fields. */
function seedText(json: any): string | undefined {
  const message = (m: any) => ({ userId: m.userId, supportId: m.supportId, content: m.content, timestamp: m.timestamp, from: m.from })
  const visitor = (v: any) => ({ username: v.username, userId: v.userId, chatId: v.chatId })
  const args = json?.args
  const rebuilt: Record<string, () => unknown> = {
    UserJoined: () => visitor(args),
    SupportJoinedUser: () => ({ supportId: args.supportId, supportUserName: args.supportUserName, username: args.username, userId: args.userId, chatId: args.chatId }),
    ChatMessage: () => message(args),
    ChatHistory: () => ({ user: visitor(args.user), messages: args.messages.map(message) }),
    ChatExpired: () => ({ chatId: args.chatId }),
    Error: () => ({ code: args.code, message: args.message }),
  }
  const build = rebuilt[json?.type]
  return build === undefined ? undefined : JSON.stringify({ type: json.type, args: build() })
}

/** Every frame a seed-004 socket got that is not byte-for-byte a seed-004 frame. */
function notSeed(socket: TestSocket): string[] {
  return socket.received.filter((m) => seedText(m.json) !== m.text).map((m) => m.text)
}

const file = t



t.test('every stored message has a messageId and its chat seq (1, 2, 3 …) in every ChatMessage and ChatHistory entry', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const { user, agent } = chat
  const script: [Party, string, string?][] = [
    ['User', 'hello'],
    ['Support', 'hi, how can I help?', 'a-1'],
    ['User', 'my "order" is late', 'u-1'],
    ['User', 'order 42'],
    ['Support', 'looking ⏳'],
  ]
  const echoes: Received[] = []
  for (const [i, [from, content, clientMessageId]] of script.entries()) {
    ;(from === 'User' ? user : agent).send(chat.message(from, content, clientMessageId))
    const seenByUser = await user.next(isMessage(content))
    const seenByAgent = await agent.next(isMessage(content))
    t.equal(seenByAgent.text, seenByUser.text, `${content}: both participants get the same bytes`)
    t.same(Object.keys(seenByUser.json.args), clientMessageId === undefined ? V2_MESSAGE_KEYS : [...V2_MESSAGE_KEYS, 'clientMessageId'], `${content}: seed fields in seed order, then seq and messageId`)
    t.match(seenByUser.json.args, { from, content, userId: chat.visitor.userId, supportId: chat.supportId, seq: i + 1, messageId: HEX32, timestamp: TIMESTAMP })
    echoes.push(seenByUser)
  }
  t.equal(new Set(echoes.map((m) => m.json.args.messageId)).size, script.length, 'every messageId is different')

  const again = await chat.rejoin('User')
  const history = await again.nextOfType('ChatHistory')
  t.same(Object.keys(history.json.args), ['user', 'messages', 'fromSeq', 'hasMore'])
  t.match(history.json.args, { fromSeq: 1, hasMore: false })
  t.equal(
    history.text.slice(history.text.indexOf('"messages":[') + 12, history.text.indexOf('],"fromSeq"')),
    echoes.map((m) => m.text.slice('{"type":"ChatMessage","args":'.length, -1)).join(','),
    'the history entries are the ChatMessage args, byte for byte',
  )

  const other = await openChat(stack)
  other.agent.send(other.message('Support', 'another chat'))
  t.equal((await other.user.next(isMessage('another chat'))).json.args.seq, 1, 'seq counts per chat')
})

t.test('Ack: once stored; the same clientMessageId again stores nothing and returns the same Ack', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const { user, agent } = chat

  user.send(chat.message('User', 'first try', 'm-1'))
  const ack = await user.next(isAck('m-1'))
  t.same(Object.keys(ack.json.args), ['clientMessageId', 'messageId', 'seq', 'timestamp'])
  const echo = await agent.next(isMessage('first try'))
  t.equal(
    ack.text,
    `{"type":"Ack","args":{"clientMessageId":"m-1","messageId":"${echo.json.args.messageId}","seq":1,"timestamp":"${echo.json.args.timestamp}"}}`,
    'the Ack names the stored message: its messageId, seq and timestamp',
  )
  t.equal(echo.json.args.clientMessageId, 'm-1', 'the stored message keeps its clientMessageId')

  user.send(chat.message('User', 'first try', 'm-1'))
  t.equal((await user.next(isAck('m-1'))).text, ack.text, 'a retry gets the same Ack')
  user.send(chat.message('User', 'edited before the retry', 'm-1'))
  t.equal((await user.next(isAck('m-1'))).text, ack.text, 'a retry with other content too: the first one stands')

  user.send(chat.message('User', 'second', 'm-2'))
  t.equal((await user.next(isAck('m-2'))).json.args.seq, 2, 'the next message is seq 2: the retries stored nothing')
  const agentSaw = await framesUntil(agent, isMessage('second'))
  t.same(agentSaw.filter(isType('ChatMessage')), [], 'the agent got no copy of a retried message')

  user.send(chat.message('User', 'no id'))
  await user.next(isMessage('no id'))
  t.same((await framesBeforeMarker(user)).filter(isType('Ack')), [], 'a message without clientMessageId gets no Ack')

  const history = (await (await chat.rejoin('Support')).nextOfType('ChatHistory')).json.args.messages
  t.same(history.map((m: { content: string }) => m.content), ['first try', 'second', 'no id'], 'stored once each')
})

t.test('a clientMessageId belongs to its sender: the other participant may use the same one', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const { user, agent } = chat
  user.send(chat.message('User', 'from the visitor', 'msg-1'))
  const userAck = (await user.next(isAck('msg-1'))).json.args
  t.equal(userAck.seq, 1)
  agent.send(chat.message('Support', 'from the agent', 'msg-1'))
  const agentAck = (await agent.next(isAck('msg-1'))).json.args
  t.equal(agentAck.seq, 2, "the agent's message is stored as seq 2")
  t.not(agentAck.messageId, userAck.messageId, "the agent's Ack does not name the visitor's message")
  const history = (await (await chat.rejoin('User')).nextOfType('ChatHistory')).json.args.messages
  t.same(history.map((m: { content: string }) => m.content), ['from the visitor', 'from the agent'], 'both messages are stored')
})

t.test('a message that cannot be stored gets Error with its clientMessageId, never an Ack', async (t) => {
  // No sweeper in this stack: a chat past its deadline stays until a message finds it expired.
  const stack = await startStack(t, { env: { MAX_MESSAGE_LENGTH: '20' }, sweepIntervalMs: 600_000 })

  /** The next frame must be Error `code` for `clientMessageId`; then nothing else came (no Ack). */
  async function refused(t: Test, socket: TestSocket, clientMessageId: string, code: string, message?: string | RegExp) {
    const error = await socket.next(isType('Error'))
    t.same(Object.keys(error.json.args), ['code', 'message', 'clientMessageId'], 'code, message, clientMessageId')
    t.match(error.json.args, { code, clientMessageId, message: message ?? (Errors as Record<string, { message: string }>)[code]!.message })
  }

  await t.test('NOT_JOINED, then the same id stored once joined', async (t) => {
    const chat = await openChat(stack)
    const early = await stack.socket(chat.url, 'pong:user', { v2: true })
    early.send(chat.message('User', 'too early', 'e-1'))
    await refused(t, early, 'e-1', 'NOT_JOINED')
    early.send({ type: 'Join', args: { userId: chat.visitor.userId, username: 'Nika', supportId: chat.supportId, from: 'User' } })
    await early.nextOfType('ChatHistory')
    early.send(chat.message('User', 'too early', 'e-1'))
    t.match((await early.next(isAck('e-1'))).json.args, { seq: 1 }, 'a refused id was not recorded: it stores now')
    t.same((await framesBeforeMarker(early)).filter((m) => m.json?.type === 'Ack' || m.json?.type === 'Error'), [])
  })

  await t.test('before an agent joined: a supportId the chat never had is IDENTITY_MISMATCH; none is stored (waiting-messages.test.ts)', async (t) => {
    const visitor = await stack.joinVisitor('Dodo')
    const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
    const user = await stack.socket(url, 'pong:user', { v2: true })
    user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', from: 'User' } })
    await user.nextOfType('UserJoined')
    const frame = (supportId?: string) => ({
      type: 'ChatMessage',
      args: { userId: visitor.userId, ...(supportId ? { supportId } : {}), content: 'anyone?', from: 'User', clientMessageId: 'n-1' },
    })
    user.send(frame('0'.repeat(32)))
    await refused(t, user, 'n-1', 'IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    t.same((await framesBeforeMarker(user)).filter(isType('Ack')), [], 'no Ack')
    user.send(frame())
    t.match((await user.next(isAck('n-1'))).json.args, { seq: 1 }, 'a v2 visitor may write while waiting')
    const agent = await stack.socket(url, 'pong:support', { v2: true })
    agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', supportUserName: 'Vika', from: 'Support' } })
    const { supportId } = (await user.nextOfType('SupportJoinedUser')).json.args
    user.send({ ...frame(supportId), args: { ...frame(supportId).args, clientMessageId: 'n-2' } })
    t.match((await user.next(isAck('n-2'))).json.args, { seq: 2 })
  })

  await t.test('IDENTITY_MISMATCH and MESSAGE_TOO_LONG store nothing', async (t) => {
    const chat = await openChat(stack)
    chat.user.send(chat.message('Support', 'posing as the agent', 'i-1'))
    await refused(t, chat.user, 'i-1', 'IDENTITY_MISMATCH', 'This socket joined as User')
    chat.user.send({
      type: 'ChatMessage',
      args: { userId: chat.visitor.userId, supportId: 'f'.repeat(32), content: 'wrong supportId', from: 'User', clientMessageId: 'i-2' },
    })
    await refused(t, chat.user, 'i-2', 'IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    chat.user.send(chat.message('User', 'x'.repeat(21), 'l-1'))
    await refused(t, chat.user, 'l-1', 'MESSAGE_TOO_LONG', /20 characters/)
    t.same((await framesBeforeMarker(chat.user)).filter(isType('Ack')), [], 'no Ack for any of them')
    chat.user.send(chat.message('User', 'x'.repeat(20), 'l-1'))
    t.match((await chat.user.next(isAck('l-1'))).json.args, { seq: 1 }, 'nothing was stored before: seq 1')
    t.same((await framesUntil(chat.agent, isMessage('x'.repeat(20)))).filter(isType('ChatMessage')), [], 'the agent saw only that one')
  })

  await t.test('CHAT_ENDED', async (t) => {
    const chat = await openChat(stack)
    chat.user.send(chat.message('User', 'before the end', 'd-1'))
    await chat.user.next(isAck('d-1'))
    await chat.user.next(isMessage('before the end'))
    chat.agent.send({ type: 'EndChat', args: {} })
    await chat.user.nextOfType('ChatEnded')
    chat.user.send(chat.message('User', 'after the end', 'd-2'))
    await refused(t, chat.user, 'd-2', 'CHAT_ENDED')
    chat.agent.send(chat.message('Support', 'after the end too', 'd-3'))
    await refused(t, chat.agent, 'd-3', 'CHAT_ENDED')
    t.same((await framesBeforeMarker(chat.user)).filter((m) => m.json?.type === 'Ack' || m.json?.type === 'ChatMessage'), [], 'no Ack, no echo')
  })

  await t.test('CHAT_EXPIRED: the Error, then ChatExpired and close 4410', async (t) => {
    const chat = await openChat(stack)
    const conn = connectRedis(stack.redis.url, { warn() {}, info() {} })
    t.teardown(() => conn.close())
    if (conn.commands.status !== 'ready') await once(conn.commands, 'ready')
    // The deadline passes (no sweeper runs here): the next message finds the chat expired.
    await conn.commands.zadd(keys.deadlines, 1, chat.visitor.chatId)
    chat.user.send(chat.message('User', 'too late', 'x-1'))
    await refused(t, chat.user, 'x-1', 'CHAT_EXPIRED')
    t.equal((await chat.user.next()).text, `{"type":"ChatExpired","args":{"chatId":"${chat.visitor.chatId}"}}`)
    t.equal((await chat.user.closed).code, 4410)
    t.notOk(chat.user.received.some(isType('Ack')), 'no Ack')
  })
})

t.test('Redis down: a v2 ChatMessage with clientMessageId gets STORE_UNAVAILABLE carrying it, and no Ack', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  chat.user.send(chat.message('User', 'before', 'r-0'))
  await chat.user.next(isAck('r-0'))
  await chat.user.next(isMessage('before'))
  const exited = once(stack.redis.process, 'exit')
  stack.redis.process.kill('SIGKILL')
  await exited

  chat.user.send(chat.message('User', 'during the outage', 'r-1'))
  const error = await chat.user.next(isType('Error'))
  t.equal(
    error.text,
    `{"type":"Error","args":{"code":"STORE_UNAVAILABLE","message":${JSON.stringify(Errors.STORE_UNAVAILABLE.message)},"clientMessageId":"r-1"}}`,
  )
  const after = await framesBeforeMarker(chat.user)
  t.same(after.map((m) => m.text), [], 'nothing else: no Ack, no echo')
  t.notOk(chat.agent.received.some(isMessage('during the outage')), 'the agent never saw it')

  // Redis comes back empty (nothing was persisted): the retry finds the chat gone, and still no Ack.
  // (Also what lets the services close quickly: with a chat subscribed and Redis down, closing waits out ioredis's retries.)
  const again = await startRedis({ port: stack.redis.port })
  file.teardown(() => again.stop())
  await redisReady(stack.chatServers[0]!.app)
  chat.user.send(chat.message('User', 'during the outage', 'r-1'))
  const retried = await chat.user.next(isType('Error'))
  t.match(retried.json.args, { code: 'CHAT_EXPIRED', clientMessageId: 'r-1' })
  t.equal((await chat.user.next()).text, `{"type":"ChatExpired","args":{"chatId":"${chat.visitor.chatId}"}}`)
  t.equal((await chat.user.closed).code, 4410)
  t.notOk(chat.user.received.some(isAck('r-1')), 'never an Ack for it')
})

t.test('ack lost and retried: after a re-join with lastSeq the retry gets the same Ack, and the message is stored once', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  chat.user.send(chat.message('User', 'seen and acked', 'k-1'))
  await chat.user.next(isAck('k-1'))
  await chat.user.next(isMessage('seen and acked'))
  await chat.agent.next(isMessage('seen and acked'))

  // The visitor's page sends and dies before it reads anything more: the Ack is lost.
  chat.user.ws.pause()
  chat.user.ws.removeAllListeners('message')
  chat.user.send(chat.message('User', 'was it stored?', 'k-2'))
  const stored = await chat.agent.next(isMessage('was it stored?'))
  t.equal(stored.json.args.seq, 2, 'the server stored it')
  chat.user.ws.terminate()
  await chat.user.closed

  const again = await chat.rejoin('User', { lastSeq: 1 })
  const history = (await again.nextOfType('ChatHistory')).json.args
  t.match(history, { fromSeq: 2 })
  t.same(history.messages, [stored.json.args], 'the history after lastSeq holds it, with its clientMessageId')
  again.send(chat.message('User', 'was it stored?', 'k-2'))
  const ack = (await again.next(isAck('k-2'))).json.args
  t.same(ack, { clientMessageId: 'k-2', messageId: stored.json.args.messageId, seq: 2, timestamp: stored.json.args.timestamp }, 'the same Ack as the lost one')

  again.send(chat.message('User', 'next', 'k-3'))
  t.equal((await again.next(isAck('k-3'))).json.args.seq, 3, 'the retry stored nothing')
  const agentSaw = await framesUntil(chat.agent, isMessage('next'))
  t.same(agentSaw.filter(isType('ChatMessage')), [], 'the agent got it once')
  const whole = (await (await chat.rejoin('Support', { lastSeq: 0 })).nextOfType('ChatHistory')).json.args.messages
  t.same(whole.map((m: { content: string }) => m.content), ['seen and acked', 'was it stored?', 'next'])
})

t.test('a retry of a stored message after the chat ended still gets its Ack: it was stored', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  chat.user.ws.pause()
  chat.user.ws.removeAllListeners('message')
  chat.user.send(chat.message('User', 'last words', 'w-1'))
  const stored = (await chat.agent.next(isMessage('last words'))).json.args
  chat.user.ws.terminate()
  chat.agent.send({ type: 'EndChat', args: { reason: 'resolved' } })
  await chat.agent.nextOfType('ChatEnded')

  const again = await chat.rejoin('User', { lastSeq: 0 })
  t.same((await again.nextOfType('ChatHistory')).json.args.messages, [stored], 'the history has it')
  await again.nextOfType('ChatEnded')
  again.send(chat.message('User', 'last words', 'w-1'))
  const answer = await again.next((m) => m.json?.type === 'Ack' || m.json?.type === 'Error')
  t.equal(
    answer.text,
    `{"type":"Ack","args":{"clientMessageId":"w-1","messageId":"${stored.messageId}","seq":1,"timestamp":"${stored.timestamp}"}}`,
    'the Ack of the stored message, not CHAT_ENDED',
  )
})

t.test('a socket closed right after sending: whether or not the first try arrived, the retry leaves exactly one copy', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  chat.user.send(chat.message('User', 'sent while closing', 'z-1'))
  chat.user.ws.terminate()
  await chat.user.closed

  const again = await chat.rejoin('User', { lastSeq: 0 })
  await again.nextOfType('ChatHistory')
  again.send(chat.message('User', 'sent while closing', 'z-1'))
  const ack = (await again.next(isAck('z-1'))).json.args
  t.equal(ack.seq, 1)
  again.send(chat.message('User', 'after', 'z-2'))
  t.equal((await again.next(isAck('z-2'))).json.args.seq, 2, 'one copy: the next message is seq 2')
  const history = (await (await chat.rejoin('Support')).nextOfType('ChatHistory')).json.args.messages
  t.same(history.map((m: { content: string }) => m.content), ['sent while closing', 'after'], 'stored once')
  t.equal(history[0]?.messageId, ack.messageId, 'the Ack names the stored copy')
})

t.test('resume: a socket dropped mid-conversation re-joins with lastSeq and gets every later message once, in order', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack, { user: 2, agent: 2 })
  const seedTab = await chat.rejoin('User', { v2: false, lastSeq: 0 })
  await seedTab.nextOfType('ChatHistory')
  const { user, agent } = chat

  // The agent talks; the visitor's connection drops somewhere in the middle.
  for (let i = 1; i <= 12; i++) agent.send(chat.message('Support', `before drop ${i}`, `b-${i}`))
  await user.next((m) => m.json?.type === 'ChatMessage' && m.json.args.seq >= 5)
  user.ws.terminate()
  await user.closed
  const seenBefore = user.received.filter(isType('ChatMessage')).map((m) => m.json.args.seq)
  const lastSeq = Math.max(...seenBefore)
  t.same(seenBefore, range(1, lastSeq), `before the drop the visitor saw 1…${lastSeq} in order`)
  await agent.next(isAck('b-12'))

  // It comes back while the agent keeps typing away: a burst that lands partly before the history is
  // read, partly between the subscription and the read (in both: must be sent once), partly after.
  const again = await chat.rejoin('User', { lastSeq })
  for (let i = 1; i <= 60; i++) agent.send(chat.message('Support', `during rejoin ${i}`, `c-${i}`))
  const history = (await again.nextOfType('ChatHistory')).json.args
  t.equal(history.fromSeq, lastSeq + 1, 'fromSeq is the first seq after lastSeq')
  await agent.next(isAck('c-60'))
  agent.send(chat.message('Support', 'marker', 'c-marker'))
  const live = (await framesUntil(again, isMessage('marker'))).filter(isType('ChatMessage')).map((m) => m.json.args.seq)
  const got = [...seqsOf(history.messages), ...live, 73]
  t.same(got, range(lastSeq + 1, 73), 'history then live: every seq after lastSeq exactly once, in order')

  // The seed tab got all of it, without seq.
  await seedTab.next(isMessage('marker'))
  t.equal(seedTab.received.filter(isType('ChatMessage')).length, 73)
  t.same(notSeed(seedTab), [], 'seed-004 bytes only on the seed tab')
})

t.test('paging: a v2 Join without lastSeq gets the last 50 with fromSeq and hasMore; LoadMore pages back', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  async function store(from: number, to: number) {
    for (const i of range(from, to)) chat.agent.send(chat.message('Support', `message ${i}`, `p-${i}`))
    t.equal((await chat.agent.next(isAck(`p-${to}`))).json.args.seq, to)
  }
  async function lastPage(): Promise<{ fromSeq: number; hasMore: boolean; messages: { seq: number }[] }> {
    const socket = await chat.rejoin('User')
    return (await socket.nextOfType('ChatHistory')).json.args
  }

  await store(1, 50)
  let page = await lastPage()
  t.match(page, { fromSeq: 1, hasMore: false }, '50 messages: all of them, nothing more')
  t.same(seqsOf(page.messages), range(1, 50))
  await store(51, 51)
  page = await lastPage()
  t.match(page, { fromSeq: 2, hasMore: true }, '51 messages: the last 50, and more before')
  t.same(seqsOf(page.messages), range(2, 51))
  await store(52, 120)
  page = await lastPage()
  t.match(page, { fromSeq: 71, hasMore: true })
  t.same(seqsOf(page.messages), range(71, 120))

  const reader = await chat.rejoin('User')
  await reader.nextOfType('ChatHistory')
  const loadMore = async (args: object) => {
    reader.send({ type: 'LoadMore', args })
    return reader.next((m) => m.json?.type === 'ChatHistoryPage' || m.json?.type === 'Error')
  }
  let answer = await loadMore({ beforeSeq: 71 })
  t.same(Object.keys(answer.json.args), ['messages', 'hasMore'])
  t.equal(answer.json.args.hasMore, true)
  t.same(seqsOf(answer.json.args.messages), range(21, 70), 'a page is 50 messages, oldest first')
  t.same(Object.keys(answer.json.args.messages[0]), [...V2_MESSAGE_KEYS, 'clientMessageId'])
  answer = await loadMore({ beforeSeq: 21 })
  t.same([seqsOf(answer.json.args.messages), answer.json.args.hasMore], [range(1, 20), false], 'the first page: hasMore false')
  answer = await loadMore({ beforeSeq: 71, limit: 10 })
  t.same([seqsOf(answer.json.args.messages), answer.json.args.hasMore], [range(61, 70), true], 'limit')
  answer = await loadMore({ beforeSeq: 11, limit: 10 })
  t.same([seqsOf(answer.json.args.messages), answer.json.args.hasMore], [range(1, 10), false], 'exactly to the first message')
  answer = await loadMore({ beforeSeq: 1 })
  t.equal(answer.text, '{"type":"ChatHistoryPage","args":{"messages":[],"hasMore":false}}', 'nothing before seq 1')
  for (const [args, what] of [
    [{ beforeSeq: 71, limit: 51 }, 'limit over a page'],
    [{ beforeSeq: 0 }, 'beforeSeq 0'],
    [{ limit: 10 }, 'no beforeSeq'],
  ] as const) {
    answer = await loadMore(args)
    t.equal(answer.json.args.code, 'INVALID_FRAME', what)
  }

  const early = await stack.socket(chat.url, 'pong:user', { v2: true })
  early.send({ type: 'LoadMore', args: { beforeSeq: 10 } })
  t.equal((await early.nextOfType('Error')).json.args.code, 'NOT_JOINED', 'LoadMore before Join')

  const seed = await chat.rejoin('User', { v2: false, lastSeq: 100 })
  const seedHistory = await seed.nextOfType('ChatHistory')
  t.equal(seedHistory.json.args.messages.length, 120, 'a seed socket gets the whole history (lastSeq means nothing to seed 004)')
  seed.send({ type: 'LoadMore', args: { beforeSeq: 10 } })
  t.equal((await seed.nextOfType('Error')).json.args.code, 'UNKNOWN_TYPE', 'LoadMore is not a seed-004 frame')
  t.same(notSeed(seed), [], 'seed-004 bytes')
})

t.test('a seed-004 socket in a v2 chat: seed bytes only, and an extra clientMessageId field means nothing', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack, { user: 1, agent: 2 })
  t.equal(chat.user.ws.protocol, '', 'no subprotocol selected for the seed socket')
  chat.user.send(chat.message('User', 'from seed', 'seed-1'))
  chat.user.send(chat.message('User', 'from seed', 'seed-1'))
  const first = await chat.agent.next(isMessage('from seed'))
  const second = await chat.agent.next(isMessage('from seed'))
  t.same([first.json.args.seq, second.json.args.seq], [1, 2], 'a seed client is not deduplicated: seed 004 stores each message')
  t.same(Object.keys(first.json.args), V2_MESSAGE_KEYS, 'stored without the clientMessageId a seed client cannot have meant')
  chat.agent.send(chat.message('Support', 'from v2', 'v-1'))
  await chat.agent.next(isAck('v-1'))
  const echo = await chat.user.next(isMessage('from v2'))
  t.same(Object.keys(echo.json.args), SEED_MESSAGE_KEYS)
  chat.user.send({ type: 'Join', args: { userId: chat.visitor.userId, username: 'Nika', from: 'User' } })
  t.equal((await chat.user.nextOfType('Error')).json.args.code, 'ALREADY_JOINED')
  t.same((await framesBeforeMarker(chat.user)).filter(isType('Ack')), [], 'no Ack ever')
  t.same(notSeed(chat.user), [], 'every frame the seed socket got is seed-004 bytes')
  t.equal(chat.user.received.filter(isType('ChatMessage')).length, 3)
})
