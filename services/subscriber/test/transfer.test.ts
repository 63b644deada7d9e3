import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { startStack, type Received, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * TransferChat on v2 `/users` (docs/agent-workflow.md): an agent hands a chat
 * to another online agent with a free seat, or back to the head of the queue.
 * The new agent's sockets get ChatAssigned, the old agent's ChatUnassigned;
 * the visitor (v2 and seed-004 alike) gets SupportJoinedUser naming the new
 * agent, or UserJoined when queued again; the old agent's chat sockets are
 * closed with 4403; nothing the visitor sends meanwhile is lost or refused.
 */

const HEX32 = /^[0-9a-f]{32}$/
const hexId = () => randomUUID().replaceAll('-', '')

type Visitor = { userId: string; username: string; chatId: string }
interface Agent {
  id: string
  name: string
  token: string
  /** v2 `/users` sockets, one per Subscriber instance asked for. */
  users: TestSocket[]
}

const isType = (type: string) => (m: Received) => m.json?.type === type
const isError = (code?: string) => (m: Received) => m.json?.type === 'Error' && (code === undefined || m.json.args?.code === code)
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const contents = (messages: { content: string }[]) => messages.map((m) => m.content)

const chatAssigned = (v: Visitor, fromAgentId: string) =>
  JSON.stringify({ type: 'ChatAssigned', args: { chatId: v.chatId, userId: v.userId, username: v.username, fromAgentId } })
const chatUnassigned = (v: Visitor, toAgentId: string | null) => JSON.stringify({ type: 'ChatUnassigned', args: { chatId: v.chatId, toAgentId } })
const supportJoined = (v: Visitor, supportId: string, supportUserName: string) =>
  JSON.stringify({ type: 'SupportJoinedUser', args: { supportId, supportUserName, username: v.username, userId: v.userId, chatId: v.chatId } })
const seedUserJoined = (v: Visitor) => JSON.stringify({ type: 'UserJoined', args: { username: v.username, userId: v.userId, chatId: v.chatId } })
const removeUser = (v: Visitor) => `{"type":"RemoveUser","args":{"userId":"${v.userId}"}}`
const transfer = (v: Visitor, toAgentId: string | null) => ({ type: 'TransferChat', args: { chatId: v.chatId, toAgentId } })

/**
 * Frames a socket got before the answer to a marker (an unknown frame type,
 * answered UNKNOWN_TYPE in turn after everything sent before it), consuming them.
 */
async function framesBeforeMarker(socket: TestSocket): Promise<Received[]> {
  socket.send({ type: 'Marker' })
  return framesUntil(socket, isError('UNKNOWN_TYPE'))
}

/** Waits for the next frame that matches; returns (and consumes) the unconsumed frames before it. */
async function framesUntil(socket: TestSocket, predicate: (m: Received) => boolean, timeoutMs?: number): Promise<Received[]> {
  const hit = await socket.next(predicate, timeoutMs)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

/**
 * Waits until an AgentsOnline frame on `socket` satisfies `check` for the agent
 * (undefined: not listed), consuming the frames before it, so an older
 * AgentsOnline cannot answer a later wait.
 */
async function seesAgent(socket: TestSocket, agentId: string, check: (a: { status: string } | undefined) => boolean, timeoutMs?: number): Promise<void> {
  await framesUntil(
    socket,
    (m) => m.json?.type === 'AgentsOnline' && check(m.json.args.agents.find((a: { agentId: string }) => a.agentId === agentId)),
    timeoutMs,
  )
}

/** Frames a chat socket got before the answer to a marker (not JSON: Error INVALID_JSON, in turn), consuming them. */
function chatFramesBeforeMarker(socket: TestSocket): Promise<Received[]> {
  socket.send('marker: not JSON')
  return framesUntil(socket, isError('INVALID_JSON'))
}
const online = (a: { status: string } | undefined) => a?.status === 'online'

/** An agent with a v2 `/users` socket on each given Subscriber instance, each seeing the agent online. */
async function signIn(stack: Stack, name: string, on: number[] = [0]): Promise<Agent> {
  const id = `agent-${name.toLowerCase()}`
  const token = await stack.agentToken(name, { id })
  const users: TestSocket[] = []
  for (const i of on) {
    const socket = await stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support', { token, v2: true })
    await seesAgent(socket, id, online)
    users.push(socket)
  }
  return { id, name, token, users }
}

/** Sends JoinUser; the answer (from a socket that did not Load) is RemoveUser for that visitor. */
async function claim(t: Pick<Test, 'equal'>, socket: TestSocket, v: Visitor): Promise<void> {
  socket.send({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
  const answer = await socket.next((m) => (m.json?.type === 'RemoveUser' && m.json.args?.userId === v.userId) || m.json?.type === 'Error')
  t.equal(answer.text, removeUser(v), `${v.username} claimed`)
}

function chatUrl(stack: Stack, v: Visitor): string {
  return `${stack.chatServers[0]!.ws}/chat/${v.chatId}`
}

/** An agent's chat socket (v2 unless told otherwise) that sent Join as Support; the answer is left to the caller. */
async function agentJoin(stack: Stack, agent: Agent, v: Visitor, opts: { v2?: boolean; supportId?: string } = {}): Promise<TestSocket> {
  const socket = await stack.socket(chatUrl(stack, v), 'pong:support', { token: agent.token, v2: opts.v2 ?? true })
  socket.send({
    type: 'Join',
    args: { userId: v.userId, username: v.username, supportUserName: agent.name, from: 'Support', ...(opts.supportId === undefined ? {} : { supportId: opts.supportId }) },
  })
  return socket
}

/** A visitor's chat socket that sent Join as User (first time: no supportId). */
async function visitorJoin(stack: Stack, v: Visitor, v2: boolean): Promise<TestSocket> {
  const socket = await stack.socket(chatUrl(stack, v), 'pong:user', { v2 })
  socket.send({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User' } })
  return socket
}

interface HeldChat {
  visitor: Visitor
  /** The visitor's v2 socket and a seed-004 tab of the same visitor. */
  user: TestSocket
  seed: TestSocket
  /** The holding agent's v2 chat socket. */
  agent: TestSocket
  supportId: string
}

/** A visitor (on a v2 socket and a seed tab), claimed by `holder` with JoinUser, who then joined the chat. */
async function heldChat(t: Pick<Test, 'equal'>, stack: Stack, holder: Agent, name = 'Nika'): Promise<HeldChat> {
  const visitor = await stack.joinVisitor(name)
  const user = await visitorJoin(stack, visitor, true)
  await user.nextOfType('UserJoined')
  const seed = await visitorJoin(stack, visitor, false)
  await seed.nextOfType('UserJoined')
  await claim(t, holder.users[0]!, visitor)
  const agent = await agentJoin(stack, holder, visitor)
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  for (const s of [user, seed]) await s.nextOfType('SupportJoinedUser')
  return { visitor, user, seed, agent, supportId }
}

const message = (v: Visitor, supportId: string, from: 'User' | 'Support', content: string, clientMessageId?: string) => ({
  type: 'ChatMessage',
  args: { userId: v.userId, supportId, content, from, ...(clientMessageId === undefined ? {} : { clientMessageId }) },
})

t.test('TransferChat to another online agent: ChatAssigned / ChatUnassigned, the visitor meets the new agent, the old one is closed out', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika', [0, 1])
  const dora = await signIn(stack, 'Dora', [0, 1])
  for (const s of vika.users) await seesAgent(s, dora.id, online)
  const chat = await heldChat(t, stack, vika)
  const { visitor, user, seed } = chat

  // A conversation with Vika, and a second (seed-004) chat socket of hers.
  user.send(message(visitor, chat.supportId, 'User', 'hello', 'u-1'))
  await chat.agent.next(isMessage('hello'))
  chat.agent.send(message(visitor, chat.supportId, 'Support', 'hi, Vika here'))
  await user.next(isMessage('hi, Vika here'))
  seed.send(message(visitor, chat.supportId, 'User', 'from the old tab'))
  await chat.agent.next(isMessage('from the old tab'))
  const vikaSeedTab = await agentJoin(stack, vika, visitor, { v2: false, supportId: chat.supportId })
  await vikaSeedTab.nextOfType('ChatHistory')
  for (const s of [user, seed]) await s.next(isMessage('from the old tab'))

  vika.users[1]!.send(transfer(visitor, dora.id))

  for (const [i, s] of dora.users.entries()) {
    t.equal((await s.nextOfType('ChatAssigned')).text, chatAssigned(visitor, vika.id), `Dora's socket on instance ${i} gets ChatAssigned, exact`)
  }
  for (const [i, s] of vika.users.entries()) {
    t.equal((await s.nextOfType('ChatUnassigned')).text, chatUnassigned(visitor, dora.id), `Vika's socket on instance ${i} gets ChatUnassigned, exact`)
  }

  const joinedV2 = await user.nextOfType('SupportJoinedUser')
  const newSupportId: string = joinedV2.json.args.supportId
  t.match(newSupportId, HEX32, 'a new supportId')
  t.not(newSupportId, chat.supportId, 'not the old one')
  t.equal(joinedV2.text, supportJoined(visitor, newSupportId, 'Dora'), "the visitor's v2 socket: SupportJoinedUser naming Dora")
  t.equal((await seed.nextOfType('SupportJoinedUser')).text, supportJoined(visitor, newSupportId, 'Dora'), "the visitor's seed tab: the same, seed bytes")

  t.equal((await chat.agent.nextOfType('ChatUnassigned')).text, chatUnassigned(visitor, dora.id), "Vika's v2 chat socket gets ChatUnassigned")
  t.equal((await chat.agent.closed).code, 4403, "Vika's v2 chat socket is closed with 4403")
  t.equal((await vikaSeedTab.closed).code, 4403, "Vika's seed-004 chat socket is closed with 4403")
  t.same(vikaSeedTab.received.filter(isType('ChatUnassigned')), [], 'the seed-004 socket is not sent ChatUnassigned')

  // Dora opens the chat without a supportId: she gets it, and everything said so far.
  const doraChat = await agentJoin(stack, dora, visitor)
  const doraJoined = await doraChat.nextOfType('SupportJoinedUser')
  t.equal(doraJoined.text, supportJoined(visitor, newSupportId, 'Dora'), 'Dora: SupportJoinedUser with the new supportId')
  const history = (await doraChat.nextOfType('ChatHistory')).json.args
  t.same(contents(history.messages), ['hello', 'hi, Vika here', 'from the old tab'], 'Dora: the whole history, in order')
  t.equal(history.hasMore, false)

  // Both ways, on the new supportId.
  doraChat.send(message(visitor, newSupportId, 'Support', 'Dora here, I will take it from here'))
  for (const s of [user, seed]) {
    const m = await s.next(isMessage('Dora here, I will take it from here'))
    t.equal(m.json.args.supportId, newSupportId, 'the visitor gets Dora’s message under the new supportId')
  }
  user.send(message(visitor, newSupportId, 'User', 'thanks Dora', 'u-2'))
  t.ok(await user.next(isAck('u-2')), 'the v2 visitor’s message is acknowledged')
  seed.send(message(visitor, newSupportId, 'User', 'and from the seed tab'))
  for (const content of ['thanks Dora', 'and from the seed tab']) {
    t.equal((await doraChat.next(isMessage(content))).json.args.supportId, newSupportId, `Dora gets "${content}"`)
  }
  await seed.next(isMessage('and from the seed tab'))
  t.same(
    [...user.received, ...seed.received].filter(isError()).map((m) => m.text),
    [],
    'the visitor was refused nothing',
  )
  t.equal(
    user.received.filter(isType('SupportJoinedUser')).length,
    2,
    "the visitor got SupportJoinedUser twice in all: Vika's, then Dora's (her own Join did not repeat it)",
  )

  // Vika is out: neither her old supportId nor a fresh Join gets her back in.
  const stale = await agentJoin(stack, vika, visitor, { supportId: chat.supportId })
  t.equal((await stale.next((m) => isError()(m) || isType('ChatHistory')(m))).json.args.code, 'IDENTITY_MISMATCH', 'Vika re-joining with the old supportId')
  const fresh = await agentJoin(stack, vika, visitor)
  t.equal((await fresh.next((m) => isError()(m) || isType('SupportJoinedUser')(m))).json.args.code, 'ALREADY_CLAIMED', 'Vika joining afresh')
})

t.test('a chat claimed but never opened can be transferred: the new agent opens it and the visitor meets them, never the old one', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora')
  await seesAgent(vika.users[0]!, dora.id, online)
  const visitor = await stack.joinVisitor('Nika')
  const user = await visitorJoin(stack, visitor, true)
  await user.nextOfType('UserJoined')
  const seed = await visitorJoin(stack, visitor, false)
  await seed.nextOfType('UserJoined')
  await claim(t, vika.users[0]!, visitor)

  vika.users[0]!.send(transfer(visitor, dora.id))
  t.equal((await dora.users[0]!.nextOfType('ChatAssigned')).text, chatAssigned(visitor, vika.id), 'Dora: ChatAssigned')
  t.equal((await vika.users[0]!.nextOfType('ChatUnassigned')).text, chatUnassigned(visitor, dora.id), 'Vika: ChatUnassigned')

  const doraChat = await agentJoin(stack, dora, visitor)
  const joined = await doraChat.nextOfType('SupportJoinedUser')
  const supportId: string = joined.json.args.supportId
  t.equal(joined.text, supportJoined(visitor, supportId, 'Dora'), 'Dora opens the chat')
  t.same((await doraChat.nextOfType('ChatHistory')).json.args.messages, [], 'and gets the (empty) history')
  // Told at the transfer or at Dora's Join: either way the visitor's first agent is Dora.
  for (const s of [user, seed]) t.equal((await s.nextOfType('SupportJoinedUser')).text, supportJoined(visitor, supportId, 'Dora'), 'the visitor meets Dora')

  user.send(message(visitor, supportId, 'User', 'hi', 'u-1'))
  t.ok(await user.next(isAck('u-1')))
  await doraChat.next(isMessage('hi'))
  doraChat.send(message(visitor, supportId, 'Support', 'hello Nika'))
  for (const s of [user, seed]) await s.next(isMessage('hello Nika'))
  t.same(
    [...user.received, ...seed.received].filter(isType('SupportJoinedUser')).map((m) => m.json.args.supportUserName),
    ['Dora', 'Dora'],
    'one SupportJoinedUser per visitor socket, naming Dora',
  )
  const late = await agentJoin(stack, vika, visitor)
  t.equal((await late.next((m) => isError()(m) || isType('SupportJoinedUser')(m))).json.args.code, 'ALREADY_CLAIMED', 'Vika can no longer open it')
})

t.test('a visitor refreshing with the supportId their chat had before the transfer gets the chat as it is now', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora')
  await seesAgent(vika.users[0]!, dora.id, online)
  const chat = await heldChat(t, stack, vika)
  chat.user.send(message(chat.visitor, chat.supportId, 'User', 'before'))
  await chat.agent.next(isMessage('before'))
  vika.users[0]!.send(transfer(chat.visitor, dora.id))
  const newSupportId = (await chat.seed.nextOfType('SupportJoinedUser')).json.args.supportId

  for (const v2 of [false, true]) {
    const tab = await stack.socket(chatUrl(stack, chat.visitor), 'pong:user', { v2 })
    tab.send({ type: 'Join', args: { userId: chat.visitor.userId, username: 'Nika', supportId: chat.supportId, from: 'User' } })
    const frames = await framesUntil(tab, isType('ChatHistory'))
    const label = v2 ? 'v2' : 'seed-004'
    t.same(frames.filter(isError()).map((m) => m.text), [], `${label}: no IDENTITY_MISMATCH`)
    t.same(
      frames.filter(isType('SupportJoinedUser')).map((m) => m.text),
      [supportJoined(chat.visitor, newSupportId, 'Dora')],
      `${label}: SupportJoinedUser tells the tab the new supportId and agent`,
    )
    t.same(contents(tab.received.find(isType('ChatHistory'))!.json.args.messages), ['before'], `${label}: and the history`)
  }
})

t.test('transfer while the visitor is typing and sending with the old supportId: every message stored once, in order, none refused', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika', [0])
  const dora = await signIn(stack, 'Dora', [1])
  await seesAgent(vika.users[0]!, dora.id, online)
  const chat = await heldChat(t, stack, vika)
  const { visitor, user, seed, supportId: oldSupportId } = chat

  const ROUNDS = 22 // two messages a round: 44, within one 50-message ChatHistory
  const sendRound = (i: number) => {
    // Typing, as a page does between messages: never refused either.
    user.send({ type: 'Typing', args: { state: i % 2 === 0 ? 'stop' : 'start' } })
    user.send(message(visitor, oldSupportId, 'User', `v2-${i}`, `c-${i}`))
    seed.send(message(visitor, oldSupportId, 'User', `v1-${i}`))
  }
  for (let i = 1; i <= 8; i++) sendRound(i)
  vika.users[0]!.send(transfer(visitor, dora.id))
  for (let i = 9; i <= 16; i++) sendRound(i)
  const newSupportId = (await user.nextOfType('SupportJoinedUser')).json.args.supportId
  await seed.nextOfType('SupportJoinedUser')
  // Certainly after the transfer, and still with the old supportId: a page that has not caught up yet.
  for (let i = 17; i <= ROUNDS; i++) sendRound(i)
  const afterTransfer = new Set(Array.from({ length: ROUNDS - 16 }, (_, k) => [`v2-${17 + k}`, `v1-${17 + k}`]).flat())

  const acks: { type: string }[] = []
  for (let i = 1; i <= ROUNDS; i++) acks.push((await user.next((m) => isAck(`c-${i}`)(m) || isError()(m))).json)
  t.same(acks.filter((a) => a.type !== 'Ack'), [], 'every v2 message is acknowledged, none refused')

  // The seed tab's messages are stored in the order sent: once its last one is echoed, all are stored.
  await seed.next((m) => isMessage(`v1-${ROUNDS}`)(m) || isError()(m))
  await dora.users[0]!.nextOfType('ChatAssigned')
  const doraChat = await agentJoin(stack, dora, visitor)
  t.equal((await doraChat.nextOfType('SupportJoinedUser')).json.args.supportId, newSupportId)
  const history = (await doraChat.nextOfType('ChatHistory')).json.args
  t.equal(history.hasMore, false, 'the history is complete')
  // Then live messages, up to one Dora sends as a marker.
  doraChat.send(message(visitor, newSupportId, 'Support', 'marker'))
  const live = (await framesUntil(doraChat, isMessage('marker'))).filter(isType('ChatMessage')).map((m) => m.json.args)
  const seen: { content: string; seq: number; supportId: string }[] = [...history.messages, ...live]

  const all = contents(seen)
  const expected = Array.from({ length: ROUNDS }, (_, k) => [`v2-${k + 1}`, `v1-${k + 1}`]).flat()
  t.same([...all].sort(), [...expected].sort(), 'Dora sees every message exactly once (history plus live)')
  t.same(seen.map((m) => m.seq), Array.from({ length: seen.length }, (_, k) => k + 1), 'seq 1, 2, 3 … with no gap or repeat')
  t.same(all.filter((c) => c.startsWith('v2-')), expected.filter((c) => c.startsWith('v2-')), 'the v2 socket’s messages in the order sent')
  t.same(all.filter((c) => c.startsWith('v1-')), expected.filter((c) => c.startsWith('v1-')), 'the seed tab’s messages in the order sent')
  t.same(
    seen.filter((m) => afterTransfer.has(m.content) && m.supportId !== newSupportId).map((m) => m.content),
    [],
    'messages sent after the transfer with the old supportId are stored under the new one',
  )
  const ids = seen.map((m) => m.supportId)
  const firstNew = ids.indexOf(newSupportId)
  t.ok(firstNew >= 0 && ids.slice(0, firstNew).every((id) => id === oldSupportId) && ids.slice(firstNew).every((id) => id === newSupportId),
    `the old supportId up to the transfer, the new one after it (got ${ids.map((id) => (id === oldSupportId ? 'old' : id === newSupportId ? 'new' : id)).join(',')})`)

  // The visitor's own sockets: each message echoed once, nothing refused.
  for (const [name, s] of [['v2', user], ['seed-004', seed]] as const) {
    await s.next(isMessage('marker'))
    const echoed = s.received.filter(isType('ChatMessage')).map((m) => m.json.args.content).filter((c: string) => c !== 'marker')
    t.same([...echoed].sort(), [...expected].sort(), `the visitor's ${name} socket got each message once`)
    t.same(s.received.filter(isError()).map((m) => m.text), [], `the visitor's ${name} socket was refused nothing`)
  }
})

t.test('TransferChat to null: the visitor goes back to the head of the queue; another agent can claim them', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora')
  const watcher = dora.users[0]!
  watcher.send({ type: 'Load' })
  await framesBeforeMarker(watcher)
  const seedWatcher = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token: await stack.agentToken('Olga', { id: 'agent-olga' }) })
  seedWatcher.send({ type: 'Load' })
  await framesBeforeMarker(seedWatcher)

  // Dodo queues before Nika; Nika is claimed; Gela queues after.
  const dodo = await stack.waitingVisitor('Dodo')
  const chat = await heldChat(t, stack, vika, 'Nika')
  const nika = chat.visitor
  const gela = await stack.waitingVisitor('Gela')
  // Consume everything so far (Nika's first UserJoined, her RemoveUser, …) up to Gela's UserJoined.
  for (const w of [watcher, seedWatcher]) await framesUntil(w, (m) => isType('UserJoined')(m) && m.json.args.userId === gela.userId)
  const dodoOrder = watcher.received.find((m) => isType('UserJoined')(m) && m.json.args.userId === dodo.userId)!.json.args.order
  t.type(dodoOrder, 'number', 'v2 UserJoined carries order')

  chat.user.send(message(nika, chat.supportId, 'User', 'can someone else help?', 'u-1'))
  await chat.agent.next(isMessage('can someone else help?'))
  for (const s of [chat.user, chat.seed]) await chatFramesBeforeMarker(s)
  vika.users[0]!.send(transfer(nika, null))

  t.equal((await vika.users[0]!.nextOfType('ChatUnassigned')).text, chatUnassigned(nika, null), 'Vika: ChatUnassigned {toAgentId: null}')
  t.equal((await chat.agent.nextOfType('ChatUnassigned')).text, chatUnassigned(nika, null), "Vika's chat socket: ChatUnassigned")
  t.equal((await chat.agent.closed).code, 4403, "Vika's chat socket is closed with 4403")

  const again = await watcher.next((m) => isType('UserJoined')(m) && m.json.args.userId === nika.userId)
  t.same(Object.keys(again.json.args), ['username', 'userId', 'chatId', 'since', 'order'], 'v2 agents: UserJoined with since and order')
  t.match(again.json.args, { username: 'Nika', userId: nika.userId, chatId: nika.chatId })
  t.ok(again.json.args.order < dodoOrder, `Nika's order (${again.json.args.order}) is below Dodo's (${dodoOrder}), who came first`)
  t.equal((await seedWatcher.next((m) => isType('UserJoined')(m) && m.json.args.userId === nika.userId)).text, seedUserJoined(nika), 'seed agents: UserJoined, seed bytes')

  t.equal((await chat.seed.nextOfType('UserJoined')).text, seedUserJoined(nika), "the visitor's seed tab: UserJoined, seed bytes")
  const userFrames = await framesUntil(chat.user, isType('QueuePosition'))
  t.same(userFrames.map((m) => m.json?.type), ['UserJoined'], "the visitor's v2 socket: UserJoined, then QueuePosition")
  t.match(userFrames[0]!.json.args, { username: 'Nika', userId: nika.userId, chatId: nika.chatId })
  const position = chat.user.received[chat.user.received.indexOf(userFrames[0]!) + 1]!.json.args
  t.match(position, { chatId: nika.chatId, position: 1, waiting: 3 }, 'first of three waiting')

  // A fresh Load, v2 and seed: Nika first.
  watcher.send({ type: 'Load' })
  const listed = (await framesBeforeMarker(watcher)).filter((m) => m.json?.type === undefined && m.json?.userId !== undefined).map((m) => m.json)
  t.same(listed.map((v) => v.userId), [nika.userId, dodo.userId, gela.userId], 'v2 Load: Nika, Dodo, Gela')
  t.ok(listed[0].order < listed[1].order && listed[1].order < listed[2].order, 'ascending order')
  seedWatcher.send({ type: 'Load' })
  const seedListed = (await framesBeforeMarker(seedWatcher)).filter((m) => m.json?.type === undefined && m.json?.userId !== undefined)
  t.same(seedListed.map((m) => m.text), [nika, dodo, gela].map((v) => JSON.stringify({ username: v.username, userId: v.userId, chatId: v.chatId })), 'seed Load: Nika first, seed bytes')

  // A refresh with the supportId the chat had: the chat as it is now (waiting), not IDENTITY_MISMATCH.
  const refreshed = await stack.socket(chatUrl(stack, nika), 'pong:user')
  refreshed.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', supportId: chat.supportId, from: 'User' } })
  t.equal((await refreshed.next((m) => isError()(m) || isType('UserJoined')(m) || isType('ChatHistory')(m))).text, seedUserJoined(nika), 'a seed tab re-joining with the old supportId: UserJoined')

  // Dora claims Nika and meets her.
  await claim(t, dora.users[0]!, nika)
  t.equal((await seedWatcher.next((m) => isType('RemoveUser')(m) && m.json.args.userId === nika.userId)).text, removeUser(nika), 'agents are told Nika is taken')
  const doraChat = await agentJoin(stack, dora, nika)
  const joined = await doraChat.nextOfType('SupportJoinedUser')
  t.equal(joined.json.args.supportUserName, 'Dora')
  // The chat has a conversation already: Dora gets it, right after her SupportJoinedUser.
  const history = await doraChat.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string }) => m.content),
    ['can someone else help?'],
    'the agent who takes a requeued chat gets its history',
  )
  t.same(
    (await chatFramesBeforeMarker(doraChat)).filter(isType('SupportJoinedUser')),
    [],
    'and SupportJoinedUser once, not a second time from the channel',
  )
  const seedDora = await stack.socket(chatUrl(stack, nika), 'pong:support', { token: dora.token })
  seedDora.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', supportId: joined.json.args.supportId, from: 'Support' } })
  t.same(
    (await seedDora.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content),
    ['can someone else help?'],
    'a seed-004 socket of Dora re-joining: the same history',
  )
  for (const s of [chat.user, chat.seed]) {
    t.equal((await s.nextOfType('SupportJoinedUser')).text, supportJoined(nika, joined.json.args.supportId, 'Dora'), 'the visitor meets Dora')
  }
})

t.test('a chat handed on and back: Vika to Dora to Vika; each holder opens it with the whole history', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora')
  await seesAgent(vika.users[0]!, dora.id, online)
  const chat = await heldChat(t, stack, vika)
  const { visitor, user, seed } = chat
  user.send(message(visitor, chat.supportId, 'User', 'one', 'u-1'))
  await chat.agent.next(isMessage('one'))

  vika.users[0]!.send(transfer(visitor, dora.id))
  t.equal((await dora.users[0]!.nextOfType('ChatAssigned')).text, chatAssigned(visitor, vika.id))
  const doraId: string = (await user.nextOfType('SupportJoinedUser')).json.args.supportId
  await seed.nextOfType('SupportJoinedUser')
  const doraChat = await agentJoin(stack, dora, visitor)
  await doraChat.nextOfType('ChatHistory')
  doraChat.send(message(visitor, doraId, 'Support', 'two'))
  await user.next(isMessage('two'))

  dora.users[0]!.send(transfer(visitor, vika.id))
  t.equal((await vika.users[0]!.nextOfType('ChatAssigned')).text, chatAssigned(visitor, dora.id), 'Vika: ChatAssigned from Dora')
  t.equal((await dora.users[0]!.nextOfType('ChatUnassigned')).text, chatUnassigned(visitor, vika.id), 'Dora: ChatUnassigned to Vika')
  t.equal((await doraChat.closed).code, 4403, "Dora's chat socket is closed with 4403")
  const back = await user.nextOfType('SupportJoinedUser')
  const vikaId: string = back.json.args.supportId
  t.equal(back.text, supportJoined(visitor, vikaId, 'Vika'), 'the visitor meets Vika again')
  t.not(vikaId, chat.supportId, 'under a new supportId')
  t.not(vikaId, doraId)
  t.equal((await seed.nextOfType('SupportJoinedUser')).text, supportJoined(visitor, vikaId, 'Vika'), 'the seed tab too')

  const vikaChat = await agentJoin(stack, vika, visitor)
  t.equal((await vikaChat.nextOfType('SupportJoinedUser')).text, supportJoined(visitor, vikaId, 'Vika'))
  t.same(contents((await vikaChat.nextOfType('ChatHistory')).json.args.messages), ['one', 'two'], 'Vika gets the whole history')
  seed.send(message(visitor, vikaId, 'User', 'three'))
  t.equal((await vikaChat.next(isMessage('three'))).json.args.supportId, vikaId)
  vikaChat.send(message(visitor, vikaId, 'Support', 'four'))
  for (const s of [user, seed]) await s.next(isMessage('four'))
  t.same([...user.received, ...seed.received].filter(isError()).map((m) => m.text), [], 'the visitor was refused nothing')
})

t.test('two consoles of the same agent transfer the same chat at once: exactly one transfer happens (5 rounds)', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', MAX_CHATS_PER_AGENT: '0' } })
  const vika = await signIn(stack, 'Vika', [0, 1])
  const dora = await signIn(stack, 'Dora', [0])
  const pia = await signIn(stack, 'Pia', [1])
  for (const s of vika.users) {
    await seesAgent(s, dora.id, online)
    await seesAgent(s, pia.id, online)
  }
  for (let round = 1; round <= 5; round++) {
    const chat = await heldChat(t, stack, vika, `Nika${round}`)
    for (const s of [...vika.users, ...dora.users, ...pia.users]) await framesBeforeMarker(s)
    const [first, second] = round % 2 === 0 ? [0, 1] : [1, 0]
    vika.users[first]!.send(transfer(chat.visitor, dora.id))
    vika.users[second]!.send(transfer(chat.visitor, pia.id))
    const assigned = await chat.user.nextOfType('SupportJoinedUser')
    const winner = assigned.json.args.supportUserName as string
    const frames = (await Promise.all([...vika.users, ...dora.users, ...pia.users].map(framesBeforeMarker))).map((list) =>
      list.filter((m) => ['ChatAssigned', 'ChatUnassigned', 'Error'].includes(m.json?.type)).map((m) => m.json),
    )
    const [vika0, vika1, doraFrames, piaFrames] = frames as [any[], any[], any[], any[]]
    t.same(
      [...vika0, ...vika1].filter((m) => m.type === 'Error').map((m) => m.args.code),
      ['NOT_ASSIGNED'],
      `round ${round}: the later transfer is refused NOT_ASSIGNED (${winner} got the chat)`,
    )
    for (const [i, list] of [vika0, vika1].entries()) {
      t.equal(list.filter((m) => m.type === 'ChatUnassigned').length, 1, `round ${round}: Vika's socket ${i} gets one ChatUnassigned`)
    }
    t.same(
      [doraFrames.filter((m) => m.type === 'ChatAssigned').length, piaFrames.filter((m) => m.type === 'ChatAssigned').length],
      winner === 'Dora' ? [1, 0] : [0, 1],
      `round ${round}: only ${winner} gets ChatAssigned`,
    )
    // The visitor was handed on once: a message from the winner comes right after the one SupportJoinedUser.
    const winnerAgent = winner === 'Dora' ? dora : pia
    const winnerChat = await agentJoin(stack, winnerAgent, chat.visitor)
    await winnerChat.nextOfType('ChatHistory')
    winnerChat.send(message(chat.visitor, assigned.json.args.supportId, 'Support', `round ${round}`))
    const between = await framesUntil(chat.user, isMessage(`round ${round}`))
    t.same(between.filter(isType('SupportJoinedUser')).map((m) => m.text), [], `round ${round}: the visitor got one SupportJoinedUser`)
  }
})

t.test('a visitor put back in the queue stays queued while their socket is open, past CHAT_TTL_SECONDS', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', CHAT_TTL_SECONDS: '1' }, sweepIntervalMs: 50 })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora')
  const chat = await heldChat(t, stack, vika)
  vika.users[0]!.send(transfer(chat.visitor, null))
  await chat.seed.nextOfType('UserJoined')
  await chat.user.nextOfType('UserJoined')

  // Time passes, measured by events: two chats opened one after the other after the transfer, each expiring after CHAT_TTL.
  for (const name of ['Ctrl1', 'Ctrl2']) {
    const control = await stack.waitingVisitor(name)
    await claim(t, vika.users[0]!, control)
    const agent = await agentJoin(stack, vika, control)
    await agent.nextOfType('SupportJoinedUser')
    await agent.nextOfType('ChatExpired', 8000)
  }
  t.same([...chat.user.received, ...chat.seed.received].filter(isType('ChatExpired')), [], 'Nika got no ChatExpired')
  t.equal(chat.user.ws.readyState, chat.user.ws.OPEN, "Nika's socket is open")
  const watcher = dora.users[0]!
  watcher.send({ type: 'Load' })
  t.same(
    (await framesBeforeMarker(watcher)).filter((m) => m.json?.type === undefined).map((m) => m.json?.userId),
    [chat.visitor.userId],
    'Nika is still in the queue',
  )
  await claim(t, watcher, chat.visitor)
  const doraChat = await agentJoin(stack, dora, chat.visitor)
  t.equal((await doraChat.nextOfType('SupportJoinedUser')).json.args.supportUserName, 'Dora', 'and Dora can take her')
})

t.test('TransferChat errors: an Error each, the socket stays open, nothing changes', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', MAX_CHATS_PER_AGENT: '1', AGENT_OFFLINE_AFTER_SECONDS: '1' } })
  const vika = await signIn(stack, 'Vika')
  const dora = await signIn(stack, 'Dora') // will be at capacity
  const pia = await signIn(stack, 'Pia') // online, a free seat: the one valid target
  const zara = await signIn(stack, 'Zara') // away
  const olga = await signIn(stack, 'Olga') // offline
  const console_ = vika.users[0]!

  zara.users[0]!.send({ type: 'SetStatus', args: { status: 'away' } })
  await seesAgent(console_, zara.id, (a) => a?.status === 'away')
  // That frame lists Olga online, and every older one is consumed: the next without her is her going offline.
  await olga.users[0]!.close()
  await seesAgent(console_, olga.id, (a) => a === undefined, 15_000)

  // Vika ends one chat (its seat is free again), then holds another.
  const ended = await heldChat(t, stack, vika, 'Eka')
  ended.agent.send({ type: 'EndChat', args: {} })
  await ended.agent.nextOfType('ChatEnded')
  const chat = await heldChat(t, stack, vika, 'Nika')
  const doras = await stack.waitingVisitor('Dodo')
  await claim(t, dora.users[0]!, doras)
  const waiting = await stack.waitingVisitor('Gela')
  for (const s of [console_, ...dora.users, ...pia.users]) await framesBeforeMarker(s)

  const cases: [string, TestSocket, unknown, string][] = [
    ['a waiting visitor nobody holds', console_, transfer(waiting, pia.id), 'NOT_ASSIGNED'],
    ["a chat another agent holds (Dora's)", console_, transfer(doras, pia.id), 'NOT_ASSIGNED'],
    ["Dora transferring Vika's chat", dora.users[0]!, transfer(chat.visitor, pia.id), 'NOT_ASSIGNED'],
    ['an unknown chat', console_, { type: 'TransferChat', args: { chatId: hexId(), toAgentId: pia.id } }, 'NOT_ASSIGNED'],
    ['to an unknown agent', console_, transfer(chat.visitor, 'agent-nobody'), 'AGENT_UNAVAILABLE'],
    ['to an offline agent', console_, transfer(chat.visitor, olga.id), 'AGENT_UNAVAILABLE'],
    ['to an away agent', console_, transfer(chat.visitor, zara.id), 'AGENT_UNAVAILABLE'],
    ['to herself', console_, transfer(chat.visitor, vika.id), 'AGENT_UNAVAILABLE'],
    ['to an agent at capacity', console_, transfer(chat.visitor, dora.id), 'AGENT_AT_CAPACITY'],
    ['an ended chat', console_, transfer(ended.visitor, pia.id), 'CHAT_ENDED'],
    ['no args', console_, { type: 'TransferChat' }, 'INVALID_FRAME'],
    ['no toAgentId', console_, { type: 'TransferChat', args: { chatId: chat.visitor.chatId } }, 'INVALID_FRAME'],
    ['no chatId', console_, { type: 'TransferChat', args: { toAgentId: pia.id } }, 'INVALID_FRAME'],
    ['a chatId that is not an id', console_, { type: 'TransferChat', args: { chatId: 'not-an-id', toAgentId: pia.id } }, 'INVALID_FRAME'],
    ['a toAgentId that is a number', console_, { type: 'TransferChat', args: { chatId: chat.visitor.chatId, toAgentId: 42 } }, 'INVALID_FRAME'],
    ['an empty toAgentId', console_, { type: 'TransferChat', args: { chatId: chat.visitor.chatId, toAgentId: '' } }, 'INVALID_FRAME'],
  ]
  for (const [what, socket, frame, code] of cases) {
    socket.send(frame)
    const answer = await socket.next(isError())
    t.equal(answer.json.args.code, code, `${what}: ${code} (got ${answer.text})`)
    t.equal(socket.ws.readyState, socket.ws.OPEN, `${what}: the socket stays open`)
  }

  // A seed-004 console cannot send it at all.
  const seedConsole = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token: vika.token })
  seedConsole.send(transfer(chat.visitor, pia.id))
  t.equal((await seedConsole.next(isError())).json.args.code, 'UNKNOWN_TYPE', 'TransferChat on a seed-004 /users socket: UNKNOWN_TYPE')

  // Nothing changed: no assignment frames anywhere, Vika still has Nika, Gela still waits.
  for (const [who, s] of [['Vika', console_], ['Dora', dora.users[0]!], ['Pia', pia.users[0]!], ['Zara', zara.users[0]!]] as const) {
    const frames = await framesBeforeMarker(s)
    t.same(frames.filter((m) => isType('ChatAssigned')(m) || isType('ChatUnassigned')(m)).map((m) => m.text), [], `${who} got no ChatAssigned / ChatUnassigned`)
  }
  chat.agent.send(message(chat.visitor, chat.supportId, 'Support', 'still with you'))
  for (const s of [chat.user, chat.seed]) {
    const frames = await framesUntil(s, isMessage('still with you'))
    t.same(
      frames.filter((m) => ['SupportJoinedUser', 'UserJoined', 'ChatHistory', 'ChatMessage', 'Error'].includes(m.json?.type)).map((m) => m.text),
      [],
      'the visitor was told nothing of the refused transfers',
    )
  }
  t.equal(chat.user.received.find(isMessage('still with you'))!.json.args.supportId, chat.supportId, 'Vika still holds the chat, same supportId')
  pia.users[0]!.send({ type: 'Load' })
  t.same(
    (await framesBeforeMarker(pia.users[0]!)).filter((m) => m.json?.type === undefined).map((m) => m.json?.userId),
    [waiting.userId],
    'Gela is still the only one waiting',
  )

  // And the same transfer to a valid target goes through: the errors were for the reasons named.
  console_.send(transfer(chat.visitor, pia.id))
  t.equal((await pia.users[0]!.nextOfType('ChatAssigned')).text, chatAssigned(chat.visitor, vika.id), 'to Pia, it works')
})

t.test('TransferChat with AGENT_AUTH=off: UNAUTHORIZED, nothing changes', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'off' } })
  const console_ = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { v2: true })
  const nika = await stack.waitingVisitor('Nika')
  await claim(t, console_, nika)
  const agent = await stack.socket(chatUrl(stack, nika), 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await nika.socket.nextOfType('SupportJoinedUser')

  for (const toAgentId of [null, 'agent-dora']) {
    console_.send(transfer(nika, toAgentId))
    const answer = await console_.next(isError())
    t.equal(answer.json.args.code, 'UNAUTHORIZED', `to ${toAgentId}: UNAUTHORIZED (got ${answer.text})`)
    t.equal(console_.ws.readyState, console_.ws.OPEN, 'the socket stays open')
  }
  agent.send(message(nika, supportId, 'Support', 'still here'))
  t.same((await framesUntil(nika.socket, isMessage('still here'))).map((m) => m.text), [], 'the visitor was told nothing in between')
  t.equal(agent.ws.readyState, agent.ws.OPEN, "the agent's chat socket is still open")
})
