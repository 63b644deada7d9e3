import t, { type Test } from 'tap'
import { startStack, type Received, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * Agent capacity (docs/agent-workflow.md): an agent holds at most
 * MAX_CHATS_PER_AGENT chats (claimed or joined, not ended). A claim
 * (JoinUser, v1 or v2, with a token) or a direct chat Join beyond that is
 * AGENT_AT_CAPACITY and leaves the visitor queued; ending, expiry and a
 * transfer away each free a seat; an away agent cannot take visitors.
 */

const ENV = { AGENT_AUTH: 'on', MAX_CHATS_PER_AGENT: '2' }

type Visitor = { userId: string; username: string; chatId: string }
interface Agent {
  id: string
  name: string
  token: string
}

async function agentNamed(stack: Stack, name: string, id = `agent-${name.toLowerCase()}`): Promise<Agent> {
  return { id, name, token: await stack.agentToken(name, { id }) }
}

/** The agent's `/users` socket on the given Subscriber instance; v2 unless told otherwise. */
function usersSocket(stack: Stack, agent: Agent, opts: { v2?: boolean; on?: number } = {}): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[opts.on ?? 0]!.ws}/users`, 'pong:support', { token: agent.token, v2: opts.v2 ?? true })
}

const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
const removeUser = (v: Visitor) => `{"type":"RemoveUser","args":{"userId":"${v.userId}"}}`
const isError = (code?: string) => (m: Received) => m.json?.type === 'Error' && (code === undefined || m.json.args?.code === code)

/** The answer to a JoinUser from a socket that did not Load: RemoveUser for that visitor, or an Error. */
function claimAnswer(socket: TestSocket, v: Visitor): Promise<Received> {
  return socket.next((m) => (m.json?.type === 'RemoveUser' && m.json.args?.userId === v.userId) || m.json?.type === 'Error')
}

async function claim(socket: TestSocket, v: Visitor): Promise<Received> {
  socket.send(joinUser(v))
  return claimAnswer(socket, v)
}

type Asserts = Pick<Test, 'equal'>
function won(t: Asserts, answer: Received, v: Visitor, what: string): void {
  t.equal(answer.text, removeUser(v), `${what}: the claim succeeds (RemoveUser)`)
}
function refused(t: Asserts, answer: Received, code: string, what: string): void {
  t.equal(answer.json?.type === 'Error' ? answer.json.args?.code : answer.text, code, `${what}: Error ${code}`)
}

/**
 * Frames a socket got before the answer to a marker (an unknown frame type,
 * answered UNKNOWN_TYPE in turn), consuming them.
 */
async function framesBeforeMarker(socket: TestSocket): Promise<Received[]> {
  socket.send({ type: 'Marker' })
  const hit = await socket.next(isError('UNKNOWN_TYPE'))
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

/** The visitors a fresh Load lists (their userIds, in order). */
async function queueOf(stack: Stack, agent: Agent): Promise<string[]> {
  const socket = await usersSocket(stack, agent, { v2: false })
  socket.send({ type: 'Load' })
  const frames = await framesBeforeMarker(socket)
  await socket.close()
  return frames.filter((m) => m.json?.type === undefined && typeof m.json?.userId === 'string').map((m) => m.json.userId)
}

/** The agent's chat socket (v2 unless told otherwise) after `Join` as Support without supportId; the answer is left to the caller. */
async function joinChat(stack: Stack, agent: Agent, v: Visitor, v2 = true): Promise<TestSocket> {
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${v.chatId}`, 'pong:support', { token: agent.token, v2 })
  socket.send({ type: 'Join', args: { userId: v.userId, username: v.username, supportUserName: agent.name, from: 'Support' } })
  return socket
}

/** Joins the chat as the agent and waits until both sides have SupportJoinedUser. */
async function openAsAgent(stack: Stack, agent: Agent, v: Visitor & { socket: TestSocket }): Promise<{ chat: TestSocket; supportId: string }> {
  const chat = await joinChat(stack, agent, v)
  const answer = await chat.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')
  if (answer.json.type !== 'SupportJoinedUser') throw new Error(`${agent.name} could not join ${v.username}: ${answer.text}`)
  await v.socket.next((m) => m.json?.type === 'SupportJoinedUser' && m.json.args.supportId === answer.json.args.supportId)
  return { chat, supportId: answer.json.args.supportId }
}

/**
 * Waits until an AgentsOnline frame on `socket` shows the agent with the given
 * status, consuming the frames before it (so an older AgentsOnline cannot answer a later wait).
 */
async function seesStatus(socket: TestSocket, agentId: string, status: 'online' | 'away', timeoutMs?: number): Promise<void> {
  const hit = await socket.next(
    (m) => m.json?.type === 'AgentsOnline' && m.json.args.agents.some((a: { agentId: string; status: string }) => a.agentId === agentId && a.status === status),
    timeoutMs,
  )
  const at = socket.received.indexOf(hit)
  for (const m of socket.unconsumed.filter((x) => socket.received.indexOf(x) < at)) await socket.next((x) => x === m)
}

t.test('claims up to MAX_CHATS_PER_AGENT (v1 and v2 sockets alike); the next gets AGENT_AT_CAPACITY and the visitor stays queued for others', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const dora = await agentNamed(stack, 'Dora')
  const seedSocket = await usersSocket(stack, vika, { v2: false })
  const v2Socket = await usersSocket(stack, vika, { v2: true })
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')

  won(t, await claim(seedSocket, nika), nika, 'first claim, seed-004 socket')
  won(t, await claim(v2Socket, dodo), dodo, 'second claim, v2 socket')
  refused(t, await claim(seedSocket, gela), 'AGENT_AT_CAPACITY', 'third claim, seed-004 socket')
  refused(t, await claim(v2Socket, gela), 'AGENT_AT_CAPACITY', 'third claim, v2 socket')
  const seedError = seedSocket.received.find(isError('AGENT_AT_CAPACITY'))!
  t.same(Object.keys(seedError.json.args), ['code', 'message'], 'the seed socket gets a seed-style Error {code, message}')
  t.type(seedError.json.args.message, 'string')
  for (const [name, socket] of [['seed-004', seedSocket], ['v2', v2Socket]] as const) {
    t.equal(socket.ws.readyState, socket.ws.OPEN, `the ${name} socket stays open`)
  }

  t.same(await queueOf(stack, dora), [gela.userId], 'the refused visitor is still in the queue (and the claimed ones are not)')
  const doraSocket = await usersSocket(stack, dora)
  won(t, await claim(doraSocket, gela), gela, 'another agent claims the refused visitor')
  t.same(gela.socket.received.filter((m) => m.json?.type === 'SupportJoinedUser'), [], 'the refused claim told the visitor nothing')
})

t.test('a direct chat Join as Support (no JoinUser) beyond capacity gets AGENT_AT_CAPACITY; the visitor stays waiting', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const dora = await agentNamed(stack, 'Dora')
  const console_ = await usersSocket(stack, vika)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')

  await openAsAgent(stack, vika, nika) // a direct Join takes a seat
  won(t, await claim(console_, dodo), dodo, 'second seat by JoinUser')

  for (const v2 of [true, false]) {
    const chat = await joinChat(stack, vika, gela, v2)
    const answer = await chat.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')
    refused(t, answer, 'AGENT_AT_CAPACITY', `a direct Join of a third visitor (${v2 ? 'v2' : 'seed-004'} chat socket)`)
    t.equal(chat.ws.readyState, chat.ws.OPEN, 'the chat socket stays open')
  }
  t.same(await queueOf(stack, dora), [gela.userId], 'the visitor is still waiting')

  // Dora takes her: Gela's first SupportJoinedUser names Dora (Vika's refused Join told her nothing).
  const doraChat = await joinChat(stack, dora, gela)
  t.equal((await doraChat.nextOfType('SupportJoinedUser')).json.args.supportUserName, 'Dora')
  const first = await gela.socket.nextOfType('SupportJoinedUser')
  t.equal(first.json.args.supportUserName, 'Dora', "the visitor's first SupportJoinedUser is Dora's")
})

t.test('race for the last seat across two Subscriber instances: of two simultaneous claims exactly one wins (10 rounds)', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: ENV })
  for (let round = 1; round <= 10; round++) {
    const racer = await agentNamed(stack, `Racer${round}`)
    const helper = await agentNamed(stack, `Helper${round}`)
    // Alternate which instance speaks v2, so both kinds of socket race.
    const a = await usersSocket(stack, racer, { on: 0, v2: round % 2 === 0 })
    const b = await usersSocket(stack, racer, { on: 1, v2: round % 2 === 1 })
    const held = await stack.waitingVisitor(`Held${round}`)
    const first = await stack.waitingVisitor(`First${round}`)
    const second = await stack.waitingVisitor(`Second${round}`)
    won(t, await claim(a, held), held, `round ${round}: the racer takes one seat`)

    // Which goes out first alternates, so either instance may win.
    if (round % 2 === 0) {
      a.send(joinUser(first))
      b.send(joinUser(second))
    } else {
      b.send(joinUser(second))
      a.send(joinUser(first))
    }
    const answers = await Promise.all([claimAnswer(a, first), claimAnswer(b, second)])
    const wins = answers.filter((m) => m.json?.type === 'RemoveUser')
    const losses = answers.filter(isError('AGENT_AT_CAPACITY'))
    t.equal(wins.length, 1, `round ${round}: exactly one claim wins (got ${answers.map((m) => m.text).join(' | ')})`)
    t.equal(losses.length, 1, `round ${round}: the other gets AGENT_AT_CAPACITY`)
    if (wins.length !== 1 || losses.length !== 1) continue

    const loser = answers[0] === losses[0] ? first : second
    const helperSocket = await usersSocket(stack, helper, { on: round % 2 })
    won(t, await claim(helperSocket, loser), loser, `round ${round}: the losing visitor is still in the queue for another agent`)
    const third = await stack.waitingVisitor(`Third${round}`)
    refused(t, await claim(a, third), 'AGENT_AT_CAPACITY', `round ${round}: the racer holds exactly two`)
    for (const socket of [a, b, helperSocket]) await socket.close()
  }
})

t.test('race for the last seat between a JoinUser and a direct chat Join: exactly one wins (10 rounds)', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: ENV })
  for (let round = 1; round <= 10; round++) {
    const racer = await agentNamed(stack, `Racer${round}`)
    const console_ = await usersSocket(stack, racer, { on: round % 2 })
    const held = await stack.waitingVisitor(`Held${round}`)
    const claimed = await stack.waitingVisitor(`Claimed${round}`)
    const joined = await stack.waitingVisitor(`Joined${round}`)
    won(t, await claim(console_, held), held, `round ${round}: the racer takes one seat`)
    const chat = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${joined.chatId}`, 'pong:support', { token: racer.token, v2: true })

    const join = { type: 'Join', args: { userId: joined.userId, username: joined.username, supportUserName: racer.name, from: 'Support' } }
    // Which goes out first alternates, so either path may win.
    if (round % 2 === 0) {
      console_.send(joinUser(claimed))
      chat.send(join)
    } else {
      chat.send(join)
      console_.send(joinUser(claimed))
    }
    const [claimAns, joinAns] = await Promise.all([
      claimAnswer(console_, claimed),
      chat.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error'),
    ])
    const outcomes = [claimAns.json?.type === 'RemoveUser', joinAns.json?.type === 'SupportJoinedUser']
    t.equal(outcomes.filter(Boolean).length, 1, `round ${round}: exactly one wins (got ${claimAns.text} | ${joinAns.text})`)
    t.equal([claimAns, joinAns].filter(isError('AGENT_AT_CAPACITY')).length, 1, `round ${round}: the other gets AGENT_AT_CAPACITY`)
    await chat.close()
    await console_.close()
  }
})

t.test("race for the target's last seat between a transfer to them and their own claim: exactly one wins (10 rounds)", async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: ENV })
  for (let round = 1; round <= 10; round++) {
    const giver = await agentNamed(stack, `Giver${round}`)
    const taker = await agentNamed(stack, `Taker${round}`)
    const giverConsole = await usersSocket(stack, giver, { on: 0 })
    const takerConsole = await usersSocket(stack, taker, { on: 1 })
    await seesStatus(giverConsole, taker.id, 'online')
    const given = await stack.waitingVisitor(`Given${round}`)
    const held = await stack.waitingVisitor(`Held${round}`)
    const wanted = await stack.waitingVisitor(`Wanted${round}`)
    won(t, await claim(giverConsole, given), given, `round ${round}: the giver holds a chat`)
    won(t, await claim(takerConsole, held), held, `round ${round}: the taker has one seat left`)

    const transfer = { type: 'TransferChat', args: { chatId: given.chatId, toAgentId: taker.id } }
    if (round % 2 === 0) {
      giverConsole.send(transfer)
      takerConsole.send(joinUser(wanted))
    } else {
      takerConsole.send(joinUser(wanted))
      giverConsole.send(transfer)
    }
    const [transferAns, claimAns] = await Promise.all([
      giverConsole.next((m) => m.json?.type === 'ChatUnassigned' || m.json?.type === 'Error'),
      claimAnswer(takerConsole, wanted),
    ])
    const transferred = transferAns.json?.type === 'ChatUnassigned'
    const claimed = claimAns.json?.type === 'RemoveUser'
    t.equal(Number(transferred) + Number(claimed), 1, `round ${round}: exactly one wins (got ${transferAns.text} | ${claimAns.text})`)
    refused(t, transferred ? claimAns : transferAns, 'AGENT_AT_CAPACITY', `round ${round}: the other`)
    for (const socket of [giverConsole, takerConsole]) await socket.close()
  }
})

t.test('ending a chat frees a seat: EndChat by the agent, then by the visitor', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const console_ = await usersSocket(stack, vika)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')
  const zaza = await stack.waitingVisitor('Zaza')

  won(t, await claim(console_, nika), nika, 'first seat')
  const nikaChat = await openAsAgent(stack, vika, nika)
  won(t, await claim(console_, dodo), dodo, 'second seat')
  const dodoChat = await openAsAgent(stack, vika, dodo)
  refused(t, await claim(console_, gela), 'AGENT_AT_CAPACITY', 'full')

  nikaChat.chat.send({ type: 'EndChat', args: { reason: 'resolved' } })
  await nikaChat.chat.nextOfType('ChatEnded')
  won(t, await claim(console_, gela), gela, 'after the agent ended a chat, the next claim')
  refused(t, await claim(console_, zaza), 'AGENT_AT_CAPACITY', 'full again')

  // The visitor ends the other chat, from a v2 tab.
  const tab = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${dodo.chatId}`, 'pong:user', { v2: true })
  tab.send({ type: 'Join', args: { userId: dodo.userId, username: dodo.username, supportId: dodoChat.supportId, from: 'User' } })
  await tab.nextOfType('ChatHistory')
  tab.send({ type: 'EndChat', args: {} })
  await tab.nextOfType('ChatEnded')
  await dodoChat.chat.nextOfType('ChatEnded')
  won(t, await claim(console_, zaza), zaza, 'after the visitor ended a chat, the next claim')
})

t.test('an expired chat frees its seat', async (t) => {
  const stack = await startStack(t, { env: { ...ENV, CHAT_TTL_SECONDS: '1' }, sweepIntervalMs: 50 })
  const vika = await agentNamed(stack, 'Vika')
  const console_ = await usersSocket(stack, vika)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')

  won(t, await claim(console_, nika), nika, 'first seat')
  const { chat } = await openAsAgent(stack, vika, nika)
  // Dodo is claimed but not opened: kept while Dodo's socket is open, so this seat stays taken.
  won(t, await claim(console_, dodo), dodo, 'second seat')
  refused(t, await claim(console_, gela), 'AGENT_AT_CAPACITY', 'full')

  t.equal((await chat.nextOfType('ChatExpired', 8000)).json.args.chatId, nika.chatId, "Nika's chat expires")
  won(t, await claim(console_, gela), gela, 'after the expiry, the next claim')
})

t.test('transferring a chat away frees a seat (to another agent, who then holds it; or back to the queue)', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const dora = await agentNamed(stack, 'Dora')
  const console_ = await usersSocket(stack, vika)
  const doraConsole = await usersSocket(stack, dora)
  await seesStatus(console_, dora.id, 'online')
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')
  const zaza = await stack.waitingVisitor('Zaza')
  const eka = await stack.waitingVisitor('Eka')

  won(t, await claim(console_, nika), nika, 'first seat')
  await openAsAgent(stack, vika, nika)
  won(t, await claim(console_, dodo), dodo, 'second seat')
  refused(t, await claim(console_, gela), 'AGENT_AT_CAPACITY', 'full')

  console_.send({ type: 'TransferChat', args: { chatId: nika.chatId, toAgentId: dora.id } })
  await console_.nextOfType('ChatUnassigned')
  await doraConsole.nextOfType('ChatAssigned')
  won(t, await claim(console_, gela), gela, 'after the transfer, the next claim')

  // Nika now takes one of Dora's seats.
  won(t, await claim(doraConsole, zaza), zaza, "Dora's second seat")
  refused(t, await claim(doraConsole, eka), 'AGENT_AT_CAPACITY', 'Dora is full with the chat she was handed')
  const doraChat = await joinChat(stack, dora, nika)
  await doraChat.nextOfType('ChatHistory')
  doraChat.send({ type: 'EndChat', args: {} })
  await doraChat.nextOfType('ChatEnded')
  won(t, await claim(doraConsole, eka), eka, 'Dora ended the handed chat: her seat is free again')

  // Back to the queue frees a seat too.
  const fresh = await stack.waitingVisitor('Fresh')
  refused(t, await claim(console_, fresh), 'AGENT_AT_CAPACITY', 'Vika is full again')
  console_.send({ type: 'TransferChat', args: { chatId: dodo.chatId, toAgentId: null } })
  await console_.nextOfType('ChatUnassigned')
  won(t, await claim(console_, fresh), fresh, 'after a transfer back to the queue, the next claim')
})

t.test('an away agent cannot claim or join a waiting visitor (AGENT_AWAY, on every device); back online it can', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const console_ = await usersSocket(stack, vika)
  const seedConsole = await usersSocket(stack, vika, { v2: false, on: 0 })
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')

  console_.send({ type: 'SetStatus', args: { status: 'away' } })
  await seesStatus(console_, vika.id, 'away')
  refused(t, await claim(console_, nika), 'AGENT_AWAY', 'a claim while away (v2 socket)')
  refused(t, await claim(seedConsole, nika), 'AGENT_AWAY', 'a claim while away (the same agent on a seed-004 socket)')
  const chat = await joinChat(stack, vika, dodo)
  refused(t, await chat.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error'), 'AGENT_AWAY', 'a direct chat Join while away')
  t.same(await queueOf(stack, await agentNamed(stack, 'Dora')), [nika.userId, dodo.userId], 'both visitors are still waiting')

  console_.send({ type: 'SetStatus', args: { status: 'online' } })
  await seesStatus(console_, vika.id, 'online')
  won(t, await claim(seedConsole, nika), nika, 'back online, a claim')
  const again = await joinChat(stack, vika, dodo)
  t.equal((await again.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')).json.type, 'SupportJoinedUser', 'back online, a direct Join')
})

t.test('a claim by the agent who already holds the chat succeeds quietly and takes no second seat', async (t) => {
  const stack = await startStack(t, { env: ENV })
  const vika = await agentNamed(stack, 'Vika')
  const dora = await agentNamed(stack, 'Dora')
  const console_ = await usersSocket(stack, vika)
  const seedConsole = await usersSocket(stack, vika, { v2: false })
  const watcher = await usersSocket(stack, dora, { v2: false })
  watcher.send({ type: 'Load' })
  await framesBeforeMarker(watcher)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const gela = await stack.waitingVisitor('Gela')

  won(t, await claim(console_, nika), nika, 'the first claim')
  await framesBeforeMarker(console_)
  await framesBeforeMarker(seedConsole)
  // Again, on both of Vika's sockets.
  for (const [name, socket] of [['v2', console_], ['seed-004', seedConsole]] as const) {
    socket.send(joinUser(nika))
    const frames = await framesBeforeMarker(socket)
    t.same(frames.filter(isError()).map((m) => m.text), [], `claiming her own chat again (${name} socket): no Error`)
  }
  won(t, await claim(console_, dodo), dodo, 'a second visitor: Nika still takes one seat')

  // Full now; claiming or joining a chat she already holds is still fine.
  seedConsole.send(joinUser(dodo))
  t.same((await framesBeforeMarker(seedConsole)).filter(isError()).map((m) => m.text), [], 'at capacity, claiming her own chat again: no Error')
  for (const v of [nika, dodo]) {
    const chat = await joinChat(stack, vika, v)
    const answer = await chat.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')
    t.equal(answer.json.type, 'SupportJoinedUser', `at capacity, opening her claimed chat with ${v.username} (got ${answer.text})`)
  }
  refused(t, await claim(console_, gela), 'AGENT_AT_CAPACITY', 'a third visitor: exactly two seats are taken')

  // Other agents were told once per visitor: a later visitor marks the end of the stream.
  const zaza = await stack.waitingVisitor('Zaza')
  await watcher.next((m) => m.json?.type === 'UserJoined' && m.json.args.userId === zaza.userId)
  t.same(
    watcher.received.filter((m) => m.json?.type === 'RemoveUser').map((m) => m.text),
    [removeUser(nika), removeUser(dodo)],
    'loaded agents got one RemoveUser per claimed visitor, no repeats',
  )
})
