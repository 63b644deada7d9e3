import t from 'tap'
import { Errors } from '@switchboard/protocol'
import { startStack, type Received, type Stack, type TestSocket, openChat, type ActiveChat, type ChatMessageFrame } from '@switchboard/testing'

/*
 * Protocol v2, signals: Typing, delivered/read receipts, unread counts (and
 * how they stand after a refresh), EndChat, ChatExpiring. None of it may
 * reach a seed-004 socket: a seed tab sits in most chats here, and every
 * frame it gets must be byte-for-byte seed 004.
 */

type Party = 'User' | 'Support'


/** A second visitor socket speaking seed 004 (another tab), joined to the chat. */
async function seedTab(chat: ActiveChat): Promise<TestSocket> {
  const socket = await chat.rejoin('User', { v2: false })
  await socket.nextOfType('ChatHistory')
  return socket
}

const isType = (type: string) => (m: Received) => m.json?.type === type
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const isError = (code: string) => (m: Received) => m.json?.type === 'Error' && m.json.args.code === code
const textsOf = (frames: Received[], type: string) => frames.filter(isType(type)).map((m) => m.text)

// The v2 frames, written out by hand in their documented field order.
const typing = (chatId: string, from: Party, state: 'start' | 'stop') => `{"type":"Typing","args":{"chatId":"${chatId}","from":"${from}","state":"${state}"}}`
const receipt = (chatId: string, seq: number, status: 'delivered' | 'read', from: Party) =>
  `{"type":"Receipt","args":{"chatId":"${chatId}","seq":${seq},"status":"${status}","from":"${from}"}}`
const unread = (chatId: string, count: number) => `{"type":"UnreadCount","args":{"chatId":"${chatId}","count":${count}}}`
const chatEnded = (chatId: string, by: Party, reason: string | null) => `{"type":"ChatEnded","args":{"chatId":"${chatId}","by":"${by}","reason":${JSON.stringify(reason)}}}`
const chatExpiring = (chatId: string, secondsLeft: number) => `{"type":"ChatExpiring","args":{"chatId":"${chatId}","secondsLeft":${secondsLeft}}}`
const chatExpired = (chatId: string) => `{"type":"ChatExpired","args":{"chatId":"${chatId}"}}`

/** Waits for the next frame that matches; returns the unconsumed frames before it, consuming them. */
async function framesUntil(socket: TestSocket, predicate: (m: Received) => boolean): Promise<Received[]> {
  const hit = await socket.next(predicate)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

/** Ordering marker for what a socket is sent directly: Error INVALID_JSON comes after every earlier answer. */
function framesBeforeMarker(socket: TestSocket): Promise<Received[]> {
  socket.send('marker: not JSON')
  return framesUntil(socket, isError('INVALID_JSON'))
}

/**
 * Ordering marker for what reaches a socket through the chat channel: a
 * message `sender` sends now is published after anything its earlier frames
 * published, and reaches `socket` after those. Returns every frame `socket`
 * received before that message (consumed or not).
 */
async function everythingBefore(sender: TestSocket, socket: TestSocket, message: ChatMessageFrame): Promise<Received[]> {
  sender.send(message)
  const hit = await socket.next(isMessage(message.args.content))
  return socket.received.slice(0, socket.received.indexOf(hit))
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

t.test('Typing reaches the other v2 participant; a start without a stop ends by itself after TYPING_TIMEOUT_MS', async (t) => {
  const stack = await startStack(t, { env: { TYPING_TIMEOUT_MS: '200' } })
  const chat = await openChat(stack)
  const started = Date.now()
  chat.user.send({ type: 'Typing', args: { state: 'start' } })
  t.equal((await chat.agent.nextOfType('Typing')).text, typing(chat.chatId, 'User', 'start'))
  t.equal((await chat.agent.nextOfType('Typing')).text, typing(chat.chatId, 'User', 'stop'), 'the stop comes by itself')
  t.ok(Date.now() - started >= 195, `not before TYPING_TIMEOUT_MS (${Date.now() - started} ms)`)

  chat.agent.send({ type: 'Typing', args: { state: 'start' } })
  t.equal((await chat.user.nextOfType('Typing')).text, typing(chat.chatId, 'Support', 'start'), 'the agent types too')
  chat.agent.send({ type: 'Typing', args: { state: 'stop' } })
  t.equal((await chat.user.nextOfType('Typing')).text, typing(chat.chatId, 'Support', 'stop'))

  const userGot = await everythingBefore(chat.agent, chat.user, chat.message('Support', 'marker'))
  t.same(userGot.filter(isType('Typing')).map((m) => m.json.args.from), ['Support', 'Support'], 'nobody hears their own typing')
  const marker = await chat.agent.next(isMessage('marker'))
  const agentGot = chat.agent.received.slice(0, chat.agent.received.indexOf(marker))
  t.same(agentGot.filter(isType('Typing')).map((m) => m.json.args.from), ['User', 'User'], 'the agent neither')
})

t.test('repeated starts are throttled: one start until a stop; a closed socket stops typing; seed sockets never see it', async (t) => {
  const stack = await startStack(t, { env: { TYPING_TIMEOUT_MS: '60000' } })
  const chat = await openChat(stack)
  const seed = await seedTab(chat)
  for (const state of ['start', 'start', 'start', 'stop', 'stop', 'start', 'start', 'stop'] as const) {
    chat.user.send({ type: 'Typing', args: { state } })
  }
  const agentGot = await everythingBefore(chat.user, chat.agent, chat.message('User', 'typed it'))
  t.same(
    textsOf(agentGot, 'Typing'),
    [typing(chat.chatId, 'User', 'start'), typing(chat.chatId, 'User', 'stop'), typing(chat.chatId, 'User', 'start'), typing(chat.chatId, 'User', 'stop')],
    'start, stop, start, stop: the repeats and the stray stop send nothing',
  )

  chat.agent.send({ type: 'Typing', args: { state: 'start' } })
  await chat.user.next((m) => m.text === typing(chat.chatId, 'Support', 'start'))
  await chat.agent.close()
  t.equal((await chat.user.nextOfType('Typing')).text, typing(chat.chatId, 'Support', 'stop'), 'the agent left: typing stops (long before the timeout)')

  seed.send({ type: 'Typing', args: { state: 'start' } })
  t.equal((await seed.next(isType('Error'))).json.args.code, 'UNKNOWN_TYPE', 'a seed socket cannot send Typing')
  await everythingBefore(chat.user, seed, chat.message('User', 'seed marker'))
  t.same(notSeed(seed), [], 'the seed tab got seed-004 bytes only, no Typing')

  const early = await stack.socket(chat.url, 'pong:user', { v2: true })
  early.send({ type: 'Typing', args: { state: 'start' } })
  t.equal((await early.next()).json.args.code, 'NOT_JOINED', 'Typing before Join')
  early.send({ type: 'Typing', args: { state: 'maybe' } })
  t.equal((await early.next()).json.args.code, 'INVALID_FRAME', 'a state that is neither start nor stop')
})

t.test('Received and Read: a Receipt to the other side, monotonic; INVALID_SEQ beyond the last message', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const seed = await seedTab(chat)
  const { user, agent, chatId } = chat
  user.send(chat.message('User', 'u1'))
  user.send(chat.message('User', 'u2'))
  await agent.next(isMessage('u2'))
  agent.send(chat.message('Support', 'a3'))
  await user.next(isMessage('a3'))

  agent.send({ type: 'Received', args: { seq: 2 } })
  t.equal((await user.nextOfType('Receipt')).text, receipt(chatId, 2, 'delivered', 'Support'))
  agent.send({ type: 'Received', args: { seq: 1 } }) // older: nothing
  agent.send({ type: 'Received', args: { seq: 2 } }) // the same: nothing
  agent.send({ type: 'Read', args: { seq: 1 } })
  t.equal((await user.nextOfType('Receipt')).text, receipt(chatId, 1, 'read', 'Support'), 'read is tracked apart from delivered')
  agent.send({ type: 'Read', args: { seq: 1 } }) // the same: nothing
  agent.send({ type: 'Received', args: { seq: 3 } })
  t.equal((await user.nextOfType('Receipt')).text, receipt(chatId, 3, 'delivered', 'Support'), 'a newer one goes through')
  const userGot = await everythingBefore(agent, user, chat.message('Support', 'a4'))
  t.same(
    textsOf(userGot, 'Receipt'),
    [receipt(chatId, 2, 'delivered', 'Support'), receipt(chatId, 1, 'read', 'Support'), receipt(chatId, 3, 'delivered', 'Support')],
    'an older or repeated receipt sends nothing',
  )

  agent.send({ type: 'Read', args: { seq: 5 } })
  const invalid = await agent.next(isType('Error'))
  t.equal(invalid.text, `{"type":"Error","args":{"code":"INVALID_SEQ","message":"No message with seq 5 in this chat yet"}}`, 'one beyond the last message')
  agent.send({ type: 'Received', args: { seq: 1000 } })
  t.equal((await agent.next(isType('Error'))).json.args.code, 'INVALID_SEQ')
  agent.send({ type: 'Read', args: { seq: 0 } })
  t.equal((await agent.next(isType('Error'))).json.args.code, 'INVALID_FRAME', 'seq 0 is no seq')
  agent.send({ type: 'Read', args: { seq: 4 } })
  t.equal((await user.nextOfType('Receipt')).text, receipt(chatId, 4, 'read', 'Support'), 'the last message is a valid seq')

  user.send({ type: 'Received', args: { seq: 4 } })
  t.equal((await agent.nextOfType('Receipt')).text, receipt(chatId, 4, 'delivered', 'User'), 'and the other way round')
  user.send({ type: 'Read', args: { seq: 3 } })
  t.equal((await agent.nextOfType('Receipt')).text, receipt(chatId, 3, 'read', 'User'))
  t.same(textsOf(await everythingBefore(agent, user, chat.message('Support', 'a5')), 'Receipt').slice(3), [receipt(chatId, 4, 'read', 'Support')], 'the refused ones sent nothing')

  seed.send({ type: 'Read', args: { seq: 1 } })
  t.equal((await seed.next(isType('Error'))).json.args.code, 'UNKNOWN_TYPE', 'a seed socket cannot send receipts')
  await seed.next(isMessage('a5'))
  t.same(notSeed(seed), [], 'the seed tab never got a Receipt')
})

t.test('UnreadCount: to a participant when a message from the other side arrives or when it reads; never to the sender', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const { user, agent, chatId } = chat
  const nextUnread = (socket: TestSocket) => socket.nextOfType('UnreadCount').then((m) => m.text)

  user.send(chat.message('User', 'u1'))
  t.equal(await nextUnread(agent), unread(chatId, 1), 'a message from the visitor: the agent has 1 unread')
  user.send(chat.message('User', 'u2'))
  t.equal(await nextUnread(agent), unread(chatId, 2))
  agent.send(chat.message('Support', 'a3'))
  t.equal(await nextUnread(user), unread(chatId, 1), 'the visitor has 1 unread')
  agent.send({ type: 'Read', args: { seq: 1 } })
  t.equal(await nextUnread(agent), unread(chatId, 1), 'the agent read u1')
  agent.send({ type: 'Read', args: { seq: 1 } })
  agent.send({ type: 'Read', args: { seq: 3 } })
  t.equal(await nextUnread(agent), unread(chatId, 0), 'reading up to its own a3 counts only u2')
  user.send({ type: 'Read', args: { seq: 3 } })
  t.equal(await nextUnread(user), unread(chatId, 0))
  agent.send({ type: 'Received', args: { seq: 3 } })
  user.send(chat.message('User', 'u4'))
  t.equal(await nextUnread(agent), unread(chatId, 1))

  // Everything each side got, up to a message of its own (published after anything its frames caused).
  const agentAll = await everythingBefore(agent, agent, chat.message('Support', 'agent marker'))
  t.same(textsOf(agentAll, 'UnreadCount'), [1, 2, 1, 0, 1].map((n) => unread(chatId, n)), "the agent's counts: none for its own message, a repeated Read or a Received")
  const userAll = await everythingBefore(user, user, chat.message('User', 'user marker'))
  t.same(textsOf(userAll, 'UnreadCount'), [1, 0, 1].map((n) => unread(chatId, n)), "the visitor's counts: none for its own messages")
})

t.test('read state survives a refresh: a v2 re-join gets the other side\'s Receipts and its own UnreadCount', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const { chatId } = chat
  for (const content of ['u1', 'u2', 'u3']) chat.user.send(chat.message('User', content))
  await chat.agent.next(isMessage('u3'))
  chat.agent.send({ type: 'Received', args: { seq: 3 } })
  chat.agent.send({ type: 'Read', args: { seq: 1 } })
  chat.agent.send(chat.message('Support', 'a4'))
  await chat.user.next(isMessage('a4'))
  chat.user.send({ type: 'Received', args: { seq: 4 } })
  await chat.agent.next((m) => m.text === receipt(chatId, 4, 'delivered', 'User'))
  await chat.user.close()
  await chat.agent.close()

  const user = await chat.rejoin('User')
  const userFrames = await framesBeforeMarker(user)
  t.same(userFrames.map((m) => m.json?.type), ['ChatHistory', 'Receipt', 'Receipt', 'UnreadCount'])
  t.same(
    userFrames.slice(1).map((m) => m.text),
    [receipt(chatId, 3, 'delivered', 'Support'), receipt(chatId, 1, 'read', 'Support'), unread(chatId, 1)],
    'the visitor: delivered up to 3 and read up to 1 by the agent; a4 unread',
  )

  const agent = await chat.rejoin('Support')
  const agentFrames = await framesBeforeMarker(agent)
  t.same(
    agentFrames.map((m) => (m.json?.type === 'ChatHistory' ? 'ChatHistory' : m.text)),
    ['ChatHistory', receipt(chatId, 4, 'delivered', 'User'), unread(chatId, 2)],
    'the agent: delivered up to 4, nothing read by the visitor; u2 and u3 unread',
  )

  const resumed = await chat.rejoin('User', { lastSeq: 4 })
  const resumedFrames = await framesBeforeMarker(resumed)
  t.match(resumedFrames[0]?.json.args, { fromSeq: 5, messages: [] }, 'resuming with lastSeq: nothing new')
  t.same(resumedFrames.slice(1).map((m) => m.text), userFrames.slice(1).map((m) => m.text), 'and the same read state')

  const seed = await chat.rejoin('User', { v2: false })
  const seedFrames = await framesBeforeMarker(seed)
  t.same(seedFrames.map((m) => m.json?.type), ['ChatHistory'], 'a seed socket gets the history and nothing more')
  t.same(notSeed(seed), [], 'in seed-004 bytes')
})

t.test('EndChat: ChatEnded to both v2 participants; then CHAT_ENDED for messages (seed sockets too); the history stays readable', async (t) => {
  const stack = await startStack(t)
  const chat = await openChat(stack)
  const seed = await seedTab(chat)
  const { user, agent, chatId } = chat
  user.send(chat.message('User', 'thanks, that fixed it'))
  await agent.next(isMessage('thanks, that fixed it'))
  agent.send(chat.message('Support', 'great, bye'))
  for (const socket of [user, agent, seed]) await framesUntil(socket, isMessage('great, bye'))

  agent.send({ type: 'EndChat', args: { reason: 'resolved' } })
  t.equal((await agent.nextOfType('ChatEnded')).text, chatEnded(chatId, 'Support', 'resolved'))
  t.equal((await user.nextOfType('ChatEnded')).text, chatEnded(chatId, 'Support', 'resolved'))

  user.send(chat.message('User', 'one more thing', 'late-1'))
  t.match((await user.next(isType('Error'))).json.args, { code: 'CHAT_ENDED', clientMessageId: 'late-1' })
  agent.send(chat.message('Support', 'actually…'))
  t.equal((await agent.next(isType('Error'))).text, `{"type":"Error","args":{"code":"CHAT_ENDED","message":${JSON.stringify(Errors.CHAT_ENDED.message)}}}`)
  // The seed tab is on the same instance as the visitor's v2 socket, which has had ChatEnded: had the
  // seed tab been sent it, it would come before this answer.
  seed.send(chat.message('User', 'hello?'))
  t.equal(
    (await seed.next(isType('Error'))).text,
    `{"type":"Error","args":{"code":"CHAT_ENDED","message":${JSON.stringify(Errors.CHAT_ENDED.message)}}}`,
    'a seed socket gets CHAT_ENDED too, as a seed-style Error',
  )
  t.same(notSeed(seed), [], 'and never a ChatEnded')

  agent.send({ type: 'EndChat', args: { reason: 'again' } })
  t.match((await agent.next(isType('Error'))).json.args, { code: 'CHAT_ENDED', message: 'This chat has already ended' }, 'ending twice')
  user.send({ type: 'EndChat', args: {} })
  t.equal((await user.next(isType('Error'))).json.args.code, 'CHAT_ENDED')
  t.same(
    [...(await framesBeforeMarker(user)), ...(await framesBeforeMarker(agent))].filter((m) => ['ChatEnded', 'ChatMessage', 'Ack'].includes(m.json?.type)),
    [],
    'no second ChatEnded, no echo, no Ack',
  )

  const reader = await chat.rejoin('User')
  const frames = await framesBeforeMarker(reader)
  t.same(frames.map((m) => m.json?.type), ['ChatHistory', 'UnreadCount', 'ChatEnded'], 'a re-join: the history, then that it ended')
  t.same(frames[0]!.json.args.messages.map((m: { content: string }) => m.content), ['thanks, that fixed it', 'great, bye'])
  t.equal(frames[2]!.text, chatEnded(chatId, 'Support', 'resolved'))
  reader.send({ type: 'LoadMore', args: { beforeSeq: 3 } })
  t.equal((await reader.nextOfType('ChatHistoryPage')).json.args.messages.length, 2, 'LoadMore still reads it')
  const seedReader = await chat.rejoin('User', { v2: false })
  t.same((await framesBeforeMarker(seedReader)).map((m) => m.json?.type), ['ChatHistory'])
  t.same(notSeed(seedReader), [], 'a seed re-join: the history in seed bytes, nothing else')

  const other = await openChat(stack)
  other.user.send({ type: 'EndChat', args: {} })
  t.equal((await other.agent.nextOfType('ChatEnded')).text, chatEnded(other.chatId, 'User', null), 'without a reason: reason null, by the visitor')
})

t.test('EndChat by a visitor still waiting: agents get RemoveUser, and the chat stays ended', async (t) => {
  const stack = await startStack(t)
  const console_ = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
  console_.send({ type: 'Load' })
  const visitor = await stack.joinVisitor('Dodo')
  const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url, 'pong:user', { v2: true })
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', from: 'User' } })
  await user.nextOfType('UserJoined')
  await console_.next((m) => m.json?.type === 'UserJoined' && m.json.args.chatId === visitor.chatId)

  user.send({ type: 'EndChat', args: { reason: 'found it myself' } })
  t.equal((await user.nextOfType('ChatEnded')).text, chatEnded(visitor.chatId, 'User', 'found it myself'))
  t.equal((await console_.nextOfType('RemoveUser')).text, `{"type":"RemoveUser","args":{"userId":"${visitor.userId}"}}`, 'agents are told')
  console_.send({ type: 'Load' })
  console_.send({ type: 'Marker' })
  t.same(
    (await framesUntil(console_, isError('UNKNOWN_TYPE'))).map((m) => m.text),
    [],
    'a new Load does not list the visitor',
  )

  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId: '0'.repeat(32), content: 'hello?', from: 'User', clientMessageId: 'w-1' } })
  t.equal((await user.next(isType('Error'))).json.args.code, 'CHAT_ENDED', 'a message on the ended chat')

  // A stale console claims the visitor anyway: the ended chat must not come back to life.
  const agent = await stack.socket(url, 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', supportUserName: 'Vika', from: 'Support' } })
  const answer = await agent.next((m) => m.json?.type === 'Error' || m.json?.type === 'SupportJoinedUser')
  t.equal(answer.json.type === 'Error' && answer.json.args.code, 'CHAT_ENDED', "the agent's Join is refused")
  if (answer.json.type === 'SupportJoinedUser') {
    user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId: answer.json.args.supportId, content: 'still there?', from: 'User', clientMessageId: 'w-2' } })
    const reply = await user.next((m) => m.json?.type === 'Ack' || m.json?.type === 'Error')
    t.equal(reply.json.type === 'Error' && reply.json.args.code, 'CHAT_ENDED', 'messages are still refused')
  }
})

t.test('ChatExpiring: to v2 participants of a chat with an agent, min(warning, TTL/2) ahead, once per deadline; never to seed sockets', async (t) => {
  // TTL 2 s: warned 1 s ahead (half the TTL, below the default 30 s warning).
  const stack = await startStack(t, { env: { CHAT_TTL_SECONDS: '2' }, sweepIntervalMs: 50 })
  const chat = await openChat(stack)
  const joinedAt = Date.now()
  const seed = await seedTab(chat)
  const ended = await openChat(stack)
  ended.agent.send({ type: 'EndChat', args: {} })
  await ended.user.nextOfType('ChatEnded')
  const { user, agent, chatId } = chat

  const first = await user.nextOfType('ChatExpiring')
  t.equal(first.text, chatExpiring(chatId, 1), 'secondsLeft 1')
  t.ok(Date.now() - joinedAt >= 800, `not before the last second (${Date.now() - joinedAt} ms after the agent joined)`)
  t.equal((await agent.nextOfType('ChatExpiring')).text, chatExpiring(chatId, 1), 'the agent too')

  // A message moves the deadline: a new warning for the new deadline, then expiry.
  user.send(chat.message('User', 'still here'))
  await agent.next(isMessage('still here'))
  await user.next(isMessage('still here'))
  t.equal((await user.nextOfType('ChatExpiring')).text, chatExpiring(chatId, 1), 'warned again for the new deadline')
  t.equal((await agent.nextOfType('ChatExpiring')).text, chatExpiring(chatId, 1))
  for (const socket of [user, agent, seed]) t.equal((await socket.nextOfType('ChatExpired', 5000)).text, chatExpired(chatId))
  t.equal((await seed.closed).code, 4410)

  for (const [name, socket] of [['visitor', user], ['agent', agent]] as const) {
    const i = (m: Received) => socket.received.indexOf(m)
    const warnings = socket.received.filter(isType('ChatExpiring'))
    const cut = i(socket.received.find(isMessage('still here'))!)
    t.same(
      [warnings.filter((w) => i(w) < cut).length, warnings.filter((w) => i(w) > cut).length],
      [1, 1],
      `${name}: one warning per deadline, though the sweeper ran every 50 ms`,
    )
  }
  t.same(notSeed(seed), [], 'the seed tab: seed-004 bytes, no ChatExpiring')

  await ended.user.nextOfType('ChatExpired', 5000)
  t.same(
    [...ended.user.received, ...ended.agent.received].filter(isType('ChatExpiring')),
    [],
    'an ended chat is not warned: it expired without a ChatExpiring',
  )
})

t.test('ChatExpiring: CHAT_EXPIRY_WARNING_SECONDS ahead when that is less than half the TTL', async (t) => {
  const stack = await startStack(t, { env: { CHAT_TTL_SECONDS: '2.2', CHAT_EXPIRY_WARNING_SECONDS: '0.4' }, sweepIntervalMs: 50 })
  const chat = await openChat(stack)
  const joinedAt = Date.now()
  const warning = await chat.user.nextOfType('ChatExpiring')
  const elapsed = Date.now() - joinedAt
  t.equal(warning.text, chatExpiring(chat.chatId, 1), 'secondsLeft 1: warned within the last 0.4 s, not 1.1 s ahead')
  t.ok(elapsed >= 1700, `warned 0.4 s before the 2.2 s deadline, not earlier (${elapsed} ms after the agent joined)`)
  t.equal((await chat.user.nextOfType('ChatExpired')).text, chatExpired(chat.chatId))
})
