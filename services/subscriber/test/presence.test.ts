import t from 'tap'
import { Errors } from '@switchboard/protocol'
import { startStack, type Received, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * Agent presence (docs/agent-workflow.md): AgentsOnline on connect and after
 * every change, SetStatus, the grace period after an agent's last socket
 * closes, and what a seed-004 or anonymous agent sees. Over real sockets, on
 * one or two Subscriber instances sharing one Redis.
 */

type Status = 'online' | 'away'
/** One entry of AgentsOnline: [agentId, name, status, activeChats]. */
type Entry = [agentId: string, name: string, status: Status, activeChats: number]

/** The exact bytes of an AgentsOnline frame, fields in their documented order. */
const agentsOnline = (entries: Entry[]) =>
  JSON.stringify({
    type: 'AgentsOnline',
    args: { agents: entries.map(([agentId, name, status, activeChats]) => ({ agentId, name, status, activeChats })) },
  })

const isType = (type: string) => (m: Received) => m.json?.type === type
const isError = (code: string) => (m: Received) => m.json?.type === 'Error' && m.json.args?.code === code
interface Presence {
  agentId: string
  name: string
  status: Status
  activeChats: number
}
const ids = (m: Received): string[] => (m.json.args.agents as Presence[]).map((a) => a.agentId)
const entryOf = (m: Received, agentId: string): Presence | undefined => (m.json.args.agents as Presence[]).find((a) => a.agentId === agentId)

/** An agent's `/users` socket on Subscriber `i`: v2 unless told otherwise, with the token if given. */
function queueSocket(stack: Stack, i: number, token: string | undefined, v2 = true): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support', { ...(token ? { token } : {}), v2 })
}

/**
 * Waits for the AgentsOnline frame with exactly these entries, consuming the
 * AgentsOnline frames before it; returns those earlier frames.
 */
async function untilAgents(socket: TestSocket, entries: Entry[], timeoutMs = 8000): Promise<Received[]> {
  const want = agentsOnline(entries)
  const hit = await socket.next((m) => m.text === want, timeoutMs)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => isType('AgentsOnline')(m) && socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

/** An ordering marker for frames a socket is sent directly: the answer to an unknown type comes after earlier answers. */
async function marker(socket: TestSocket): Promise<void> {
  socket.send({ type: 'Marker' })
  await socket.next(isError('UNKNOWN_TYPE'))
}

const joinUser = (v: { userId: string; chatId: string; username: string }) => ({
  type: 'JoinUser',
  args: { userId: v.userId, chatId: v.chatId, username: v.username },
})

/** The answer to a JoinUser on a socket that did not Load: RemoveUser (won) or Error. */
const claimAnswer = (socket: TestSocket) => socket.next((m) => m.json?.type === 'RemoveUser' || m.json?.type === 'Error')

/** The agent (by token) opens the visitor's chat on ChatServer and joins as Support over v2. */
async function joinChat(stack: Stack, token: string, v: { userId: string; chatId: string; username: string }): Promise<TestSocket> {
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${v.chatId}`, 'pong:support', { token, v2: true })
  socket.send({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'Support' } })
  await socket.nextOfType('SupportJoinedUser')
  return socket
}

t.test('AgentsOnline on connect: the exact frame, the agent itself included, sorted by name then agentId', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })

  const vikaB = await queueSocket(stack, 0, await stack.agentToken('Vika', { id: 'agent-b' }))
  t.equal(vikaB.ws.protocol, 'switchboard.v2', 'the server selects the v2 subprotocol on /users')
  t.equal((await vikaB.nextOfType('AgentsOnline')).text, agentsOnline([['agent-b', 'Vika', 'online', 0]]), 'alone: just herself, online, no chats')

  const anna = await queueSocket(stack, 0, await stack.agentToken('Anna', { id: 'agent-z' }))
  t.equal(
    (await anna.nextOfType('AgentsOnline')).text,
    agentsOnline([
      ['agent-z', 'Anna', 'online', 0],
      ['agent-b', 'Vika', 'online', 0],
    ]),
    'sorted by name: Anna before Vika although her id sorts last',
  )
  await untilAgents(vikaB, [
    ['agent-z', 'Anna', 'online', 0],
    ['agent-b', 'Vika', 'online', 0],
  ])
  t.pass('an agent already connected is told when another comes online')

  const vikaA = await queueSocket(stack, 0, await stack.agentToken('Vika', { id: 'agent-a' }))
  const all: Entry[] = [
    ['agent-z', 'Anna', 'online', 0],
    ['agent-a', 'Vika', 'online', 0],
    ['agent-b', 'Vika', 'online', 0],
  ]
  t.equal((await vikaA.nextOfType('AgentsOnline')).text, agentsOnline(all), 'two agents named Vika: by agentId')
  await untilAgents(anna, all)
  await untilAgents(vikaB, all)
  t.pass('both others see the third agent')
})

t.test('two instances: each agent sees the other come online; SetStatus reaches every socket of everyone, on every instance', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  t.equal((await vika.nextOfType('AgentsOnline')).text, agentsOnline([['agent-vika', 'Vika', 'online', 0]]))

  const bora = await queueSocket(stack, 1, await stack.agentToken('Bora', { id: 'agent-bora' }))
  const both: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ]
  t.equal((await bora.nextOfType('AgentsOnline')).text, agentsOnline(both), 'Bora, on instance 1, sees Vika from instance 0 on connect')
  await untilAgents(vika, both)
  t.pass('Vika, on instance 0, sees Bora come online on instance 1')

  // Vika's second device, on the other instance.
  const vikaPhone = await queueSocket(stack, 1, vikaToken)
  t.equal((await vikaPhone.nextOfType('AgentsOnline')).text, agentsOnline(both), 'a second device of an online agent: the same list')

  vika.send({ type: 'SetStatus', args: { status: 'away' } })
  const away: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'away', 0],
  ]
  for (const [name, socket] of [['Vika (laptop, instance 0)', vika], ['Vika (phone, instance 1)', vikaPhone], ['Bora (instance 1)', bora]] as const) {
    await untilAgents(socket, away)
    t.pass(`${name} gets AgentsOnline with Vika away`)
  }

  // From the other device: a status is the agent's, not the socket's.
  vikaPhone.send({ type: 'SetStatus', args: { status: 'online' } })
  for (const [name, socket] of [['Vika (laptop)', vika], ['Vika (phone)', vikaPhone], ['Bora', bora]] as const) {
    await untilAgents(socket, both)
    t.pass(`${name} gets AgentsOnline with Vika online again`)
  }

  bora.send({ type: 'SetStatus', args: { status: 'away' } })
  const boraAway: Entry[] = [
    ['agent-bora', 'Bora', 'away', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ]
  await untilAgents(vika, boraAway)
  await untilAgents(vikaPhone, boraAway)
  t.pass("Bora's status reaches both of Vika's devices")

  // A later connection sees the status as it is now.
  const late = await queueSocket(stack, 0, await stack.agentToken('Cora', { id: 'agent-cora' }))
  t.equal(
    (await late.nextOfType('AgentsOnline')).text,
    agentsOnline([
      ['agent-bora', 'Bora', 'away', 0],
      ['agent-cora', 'Cora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 0],
    ]),
    'a new connection gets the current statuses',
  )
})

t.test('an away agent cannot claim (AGENT_AWAY), from a seed-004 socket either; back online, the same claim succeeds', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  const seed = await queueSocket(stack, 0, vikaToken, false)
  await vika.nextOfType('AgentsOnline')
  const nika = await stack.waitingVisitor('Nika')

  vika.send({ type: 'SetStatus', args: { status: 'away' } })
  await untilAgents(vika, [['agent-vika', 'Vika', 'away', 0]])
  const awayError = JSON.stringify({ type: 'Error', args: { code: 'AGENT_AWAY', message: Errors.AGENT_AWAY.message } })
  vika.send(joinUser(nika))
  t.equal((await claimAnswer(vika)).text, awayError, 'the claim is refused with AGENT_AWAY')
  seed.send(joinUser(nika))
  t.equal((await claimAnswer(seed)).text, awayError, "her seed-004 socket's claim too: the status is the agent's")

  vika.send({ type: 'SetStatus', args: { status: 'online' } })
  await untilAgents(vika, [['agent-vika', 'Vika', 'online', 0]])
  vika.send(joinUser(nika))
  t.equal((await claimAnswer(vika)).text, `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`, 'the visitor was still waiting: the claim wins')
  await untilAgents(vika, [['agent-vika', 'Vika', 'online', 1]])
  t.pass('and Vika now holds one chat')
})

t.test('activeChats follows claims and direct joins, and drops when a chat ends (by either side); seen on both instances', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const boraToken = await stack.agentToken('Bora', { id: 'agent-bora' })
  const vika = await queueSocket(stack, 0, vikaToken)
  const bora = await queueSocket(stack, 1, boraToken)
  const seen = async (entries: Entry[], what: string) => {
    await untilAgents(vika, entries)
    await untilAgents(bora, entries)
    t.pass(`${what}: both instances`)
  }
  await seen(
    [
      ['agent-bora', 'Bora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 0],
    ],
    'both online, no chats',
  )

  const nika = await stack.waitingVisitor('Nika')
  vika.send(joinUser(nika))
  t.equal((await claimAnswer(vika)).json.type, 'RemoveUser', 'Vika claims Nika')
  await seen(
    [
      ['agent-bora', 'Bora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 1],
    ],
    'a JoinUser claim counts',
  )

  // Dodo is taken by joining the chat directly, without JoinUser.
  const dodo = await stack.waitingVisitor('Dodo')
  const dodoChat = await joinChat(stack, vikaToken, dodo)
  await seen(
    [
      ['agent-bora', 'Bora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 2],
    ],
    'a direct Join of a waiting visitor counts',
  )

  // Joining the chat she claimed takes no second seat.
  const nikaChat = await joinChat(stack, vikaToken, nika)
  nikaChat.send({ type: 'EndChat', args: { reason: 'solved' } })
  await nikaChat.nextOfType('ChatEnded')
  const afterEnd = await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  t.notOk(
    afterEnd.some((m) => entryOf(m, 'agent-vika')?.activeChats === 3),
    'joining the claimed chat did not count it twice',
  )
  await untilAgents(vika, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  t.pass('the agent ending a chat frees its seat: both instances')

  // The visitor ends Dodo's chat, from a v2 socket.
  const dodoSupportId = (await dodo.socket.nextOfType('SupportJoinedUser')).json.args.supportId as string
  const dodoV2 = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${dodo.chatId}`, 'pong:user', { v2: true })
  dodoV2.send({ type: 'Join', args: { userId: dodo.userId, username: dodo.username, supportId: dodoSupportId, from: 'User' } })
  await dodoV2.nextOfType('ChatHistory')
  dodoV2.send({ type: 'EndChat', args: {} })
  await dodoChat.nextOfType('ChatEnded')
  await seen(
    [
      ['agent-bora', 'Bora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 0],
    ],
    'the visitor ending a chat frees the seat too',
  )

  const zaza = await stack.waitingVisitor('Zaza')
  bora.send(joinUser(zaza))
  t.equal((await claimAnswer(bora)).json.type, 'RemoveUser')
  await seen(
    [
      ['agent-bora', 'Bora', 'online', 1],
      ['agent-vika', 'Vika', 'online', 0],
    ],
    "Bora's claim, from instance 1",
  )
})

t.test('activeChats drops when a chat expires', async (t) => {
  const stack = await startStack(t, {
    subscribers: 2,
    sweepIntervalMs: 50,
    env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3', CHAT_TTL_SECONDS: '1', CHAT_EXPIRY_WARNING_SECONDS: '0' },
  })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  const bora = await queueSocket(stack, 1, await stack.agentToken('Bora', { id: 'agent-bora' }))
  const nika = await stack.waitingVisitor('Nika')
  const chat = await joinChat(stack, vikaToken, nika)
  const holding: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ]
  await untilAgents(bora, holding)
  await untilAgents(vika, holding)

  // Nobody writes: after CHAT_TTL_SECONDS the chat expires.
  await chat.nextOfType('ChatExpired', 8000)
  const freed: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ]
  await untilAgents(bora, freed)
  await untilAgents(vika, freed)
  t.pass('the expired chat no longer counts, on both instances')
})

t.test('a reload within the grace period keeps the agent online and away; one who stays gone goes offline; back later, online', async (t) => {
  const GRACE_MS = 1000
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: String(GRACE_MS / 1000) } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const cora = await queueSocket(stack, 0, await stack.agentToken('Cora', { id: 'agent-cora' }))
  const bora = await queueSocket(stack, 1, await stack.agentToken('Bora', { id: 'agent-bora' }))
  const vika = await queueSocket(stack, 0, vikaToken)
  vika.send({ type: 'SetStatus', args: { status: 'away' } })
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-cora', 'Cora', 'online', 0],
    ['agent-vika', 'Vika', 'away', 0],
  ])

  // Vika reloads (her new page lands on the other instance); Cora closes her tab for good.
  // Cora is the clock: she closed after Vika, so once she is gone, Vika's grace period has passed too.
  await vika.close()
  await cora.close()
  const closedAt = Date.now()
  const reloaded = await queueSocket(stack, 1, vikaToken)
  const first = await reloaded.nextOfType('AgentsOnline')
  t.same(entryOf(first, 'agent-vika'), { agentId: 'agent-vika', name: 'Vika', status: 'away', activeChats: 0 }, 'after the reload: still there, still away')
  t.same(entryOf(first, 'agent-bora'), { agentId: 'agent-bora', name: 'Bora', status: 'online', activeChats: 0 })

  const during = await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'away', 0],
  ])
  const elapsed = Date.now() - closedAt
  t.ok(elapsed >= GRACE_MS - 100, `Cora went offline after the grace period, not at once (${elapsed} ms)`)
  t.same(
    during.filter((m) => entryOf(m, 'agent-vika')?.status !== 'away').map((m) => m.text),
    [],
    'meanwhile Bora never saw Vika leave or come back online',
  )
  await untilAgents(reloaded, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'away', 0],
  ])
  t.pass('the reloaded page sees Cora go too')

  // Now Vika closes and stays away.
  await reloaded.close()
  const goneAt = Date.now()
  await untilAgents(bora, [['agent-bora', 'Bora', 'online', 0]])
  t.ok(Date.now() - goneAt >= GRACE_MS - 100, `Vika goes offline after the grace period (${Date.now() - goneAt} ms)`)

  // Coming back after the grace period: online again, not away.
  const back = await queueSocket(stack, 0, vikaToken)
  const backFirst = await back.nextOfType('AgentsOnline')
  t.equal(
    backFirst.text,
    agentsOnline([
      ['agent-bora', 'Bora', 'online', 0],
      ['agent-vika', 'Vika', 'online', 0],
    ]),
    'back after the grace period: starts online',
  )
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ])
  t.pass('and Bora sees her come back')
})

t.test('an agent who closes their only socket goes offline for agents on every instance, announced once', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vika = await queueSocket(stack, 0, await stack.agentToken('Vika', { id: 'agent-vika' }))
  const boraToken = await stack.agentToken('Bora', { id: 'agent-bora' })
  const watchers = [await queueSocket(stack, 0, boraToken), await queueSocket(stack, 1, boraToken)]
  const both: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ]
  for (const w of watchers) await untilAgents(w, both)
  await untilAgents(vika, both)

  await vika.close()
  const closedAt = Date.now()
  for (const [i, w] of watchers.entries()) {
    const before = await untilAgents(w, [['agent-bora', 'Bora', 'online', 0]])
    t.ok(Date.now() - closedAt >= 250, `instance ${i}: not before AGENT_OFFLINE_AFTER_SECONDS (${Date.now() - closedAt} ms)`)
    t.ok(
      before.every((m) => ids(m).includes('agent-vika')),
      `instance ${i}: every AgentsOnline before it still listed Vika`,
    )
  }

  // Marker: a status change after the sweep. Between the two, no second "Vika left" frame.
  watchers[0]!.send({ type: 'SetStatus', args: { status: 'away' } })
  for (const [i, w] of watchers.entries()) {
    const between = await untilAgents(w, [['agent-bora', 'Bora', 'away', 0]])
    t.same(between.map((m) => m.text), [], `instance ${i}: Vika's leaving was announced once`)
  }
})

t.test("a Subscriber that goes away: its agents go offline after the grace period, announced by the instance left", async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  const phone = await queueSocket(stack, 1, vikaToken)
  const cora = await queueSocket(stack, 0, await stack.agentToken('Cora', { id: 'agent-cora' }))
  const bora = await queueSocket(stack, 1, await stack.agentToken('Bora', { id: 'agent-bora' }))
  const all: Entry[] = [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-cora', 'Cora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ]
  await untilAgents(bora, all)

  // Instance 0 stops: Cora had a socket there only; Vika also has her phone on instance 1.
  await stack.subscribers[0]!.app.close()
  await vika.closed
  await cora.closed
  const before = await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ])
  t.ok(before.every((m) => ids(m).includes('agent-vika')), 'Vika, with a socket on the instance left, never went offline')
  await untilAgents(phone, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ])
  t.pass("the instance left swept Cora's lease and told everyone")
})

t.test('two devices: closing one keeps the agent online, on the same instance or another', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const bora = await queueSocket(stack, 1, await stack.agentToken('Bora', { id: 'agent-bora' }))
  // Two clocks: agents who leave for good at the same moment as one of Vika's devices.
  const cora = await queueSocket(stack, 0, await stack.agentToken('Cora', { id: 'agent-cora' }))
  const dora = await queueSocket(stack, 1, await stack.agentToken('Dora', { id: 'agent-dora' }))
  const laptop = await queueSocket(stack, 0, vikaToken)
  const tablet = await queueSocket(stack, 0, vikaToken)
  const phone = await queueSocket(stack, 1, vikaToken)
  const vikaOnline: Entry = ['agent-vika', 'Vika', 'online', 0]
  await untilAgents(bora, [['agent-bora', 'Bora', 'online', 0], ['agent-cora', 'Cora', 'online', 0], ['agent-dora', 'Dora', 'online', 0], vikaOnline])

  // One of two devices on instance 0 closes (with Cora).
  await laptop.close()
  await cora.close()
  let before = await untilAgents(bora, [['agent-bora', 'Bora', 'online', 0], ['agent-dora', 'Dora', 'online', 0], vikaOnline])
  t.ok(
    before.every((m) => ids(m).includes('agent-vika')),
    'the other device on the same instance keeps Vika online',
  )
  await untilAgents(phone, [['agent-bora', 'Bora', 'online', 0], ['agent-dora', 'Dora', 'online', 0], vikaOnline])
  t.pass('her phone still gets AgentsOnline')

  // Her only device on instance 1 closes (with Dora): the tablet on instance 0 still holds her.
  await phone.close()
  await dora.close()
  before = await untilAgents(bora, [['agent-bora', 'Bora', 'online', 0], vikaOnline])
  t.ok(
    before.every((m) => ids(m).includes('agent-vika')),
    'a device on another instance keeps Vika online',
  )
  await untilAgents(tablet, [['agent-bora', 'Bora', 'online', 0], vikaOnline])

  // The last one: now she goes.
  await tablet.close()
  await untilAgents(bora, [['agent-bora', 'Bora', 'online', 0]])
  t.pass('her last device closing takes her offline')
})

t.test('a seed-004 /users socket with a token: seed bytes only, never AgentsOnline or MyChats, yet online for others', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const bora = await queueSocket(stack, 0, await stack.agentToken('Bora', { id: 'agent-bora' }))
  const nika = await stack.waitingVisitor('Nika')

  const seed = await queueSocket(stack, 0, await stack.agentToken('Vika', { id: 'agent-vika' }), false)
  t.equal(seed.ws.protocol, '', 'no subprotocol offered, none selected')
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 0],
  ])
  t.pass('a seed-004 agent with a token counts as online')

  seed.send({ type: 'Load' })
  const listed = await seed.next()
  t.equal(listed.text, `{"username":"Nika","userId":"${nika.userId}","chatId":"${nika.chatId}"}`, "Load: the seed's bare visitor entry, exact bytes")
  const dodo = await stack.waitingVisitor('Dodo')
  t.equal(
    (await seed.nextOfType('UserJoined')).text,
    `{"type":"UserJoined","args":{"username":"Dodo","userId":"${dodo.userId}","chatId":"${dodo.chatId}"}}`,
    "UserJoined: the seed's args only",
  )

  seed.send(joinUser(nika))
  t.equal((await seed.nextOfType('RemoveUser')).text, `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`)
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  t.pass("the seed agent's claim counts in activeChats")

  // Changes the seed socket must not hear of: another agent's status and claim.
  bora.send({ type: 'SetStatus', args: { status: 'away' } })
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'away', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  bora.send({ type: 'SetStatus', args: { status: 'online' } })
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 0],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  bora.send(joinUser(dodo))
  t.equal((await seed.nextOfType('RemoveUser')).text, `{"type":"RemoveUser","args":{"userId":"${dodo.userId}"}}`)
  await untilAgents(bora, [
    ['agent-bora', 'Bora', 'online', 1],
    ['agent-vika', 'Vika', 'online', 1],
  ])

  seed.send({ type: 'SetStatus', args: { status: 'away' } })
  t.equal((await seed.nextOfType('Error')).json.args.code, 'UNKNOWN_TYPE', 'SetStatus is not a seed-004 frame')
  await marker(seed)
  t.same(
    seed.received.map((m) => (m.json?.type === 'Error' ? `Error ${m.json.args.code}` : m.text)),
    [
      `{"username":"Nika","userId":"${nika.userId}","chatId":"${nika.chatId}"}`,
      `{"type":"UserJoined","args":{"username":"Dodo","userId":"${dodo.userId}","chatId":"${dodo.chatId}"}}`,
      `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`,
      `{"type":"RemoveUser","args":{"userId":"${dodo.userId}"}}`,
      'Error UNKNOWN_TYPE',
      'Error UNKNOWN_TYPE',
    ],
    'everything the seed socket got: seed-004 frames, nothing of v2',
  )
  // Marker for Bora: a change of his own, published after anything the seed's SetStatus could have caused.
  bora.send({ type: 'SetStatus', args: { status: 'away' } })
  const between = await untilAgents(bora, [
    ['agent-bora', 'Bora', 'away', 1],
    ['agent-vika', 'Vika', 'online', 1],
  ])
  t.same(between.map((m) => m.text), [], "the seed socket's SetStatus changed nothing")
})

t.test('AGENT_AUTH off: SetStatus is UNAUTHORIZED and the socket stays usable; AgentsOnline lists no anonymous agent', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'off', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const first = await queueSocket(stack, 0, undefined)
  t.equal(first.ws.protocol, 'switchboard.v2')
  t.equal((await first.nextOfType('AgentsOnline')).text, agentsOnline([]), 'an anonymous agent is not listed, not even to itself')
  const second = await queueSocket(stack, 0, undefined)
  t.equal((await second.nextOfType('AgentsOnline')).text, agentsOnline([]), 'nor another one')

  first.send({ type: 'SetStatus', args: { status: 'away' } })
  const refused = await first.nextOfType('Error')
  t.equal(refused.json.args.code, 'UNAUTHORIZED', 'SetStatus without an agent identity')
  t.type(refused.json.args.message, 'string')
  t.equal(first.ws.readyState, first.ws.OPEN, 'the socket stays open')

  // Still usable: it claims a visitor.
  const nika = await stack.waitingVisitor('Nika')
  first.send(joinUser(nika))
  t.equal((await claimAnswer(first)).text, `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`, 'and claims after the refusal')

  await marker(first)
  await marker(second)
  for (const [name, socket] of [['first', first], ['second', second]] as const) {
    const frames = socket.received.filter(isType('AgentsOnline'))
    t.ok(frames.length >= 1, `${name} got AgentsOnline`)
    t.same(frames.filter((m) => m.text !== agentsOnline([])).map((m) => m.text), [], `${name}: every AgentsOnline is empty`)
  }
})

t.test('a malformed SetStatus is INVALID_FRAME; the socket stays open and the status unchanged', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vika = await queueSocket(stack, 0, await stack.agentToken('Vika', { id: 'agent-vika' }))
  await untilAgents(vika, [['agent-vika', 'Vika', 'online', 0]])

  for (const [what, frame] of [
    ['an unknown status', { type: 'SetStatus', args: { status: 'busy' } }],
    ['a status in the wrong case', { type: 'SetStatus', args: { status: 'Away' } }],
    ['a status that is not a string', { type: 'SetStatus', args: { status: 1 } }],
    ['a null status', { type: 'SetStatus', args: { status: null } }],
    ['no status', { type: 'SetStatus', args: {} }],
    ['no args', { type: 'SetStatus' }],
    ['args not an object', { type: 'SetStatus', args: 'away' }],
  ] as const) {
    vika.send(frame)
    const answer = await vika.nextOfType('Error')
    t.equal(answer.json.args.code, 'INVALID_FRAME', what)
    t.equal(vika.ws.readyState, vika.ws.OPEN, `${what}: the socket stays open`)
  }

  vika.send({ type: 'SetStatus', args: { status: 'away' } })
  const before = await untilAgents(vika, [['agent-vika', 'Vika', 'away', 0]])
  t.same(
    before.filter((m) => m.text !== agentsOnline([['agent-vika', 'Vika', 'online', 0]])).map((m) => m.text),
    [],
    'none of the malformed frames changed the status; a valid one then does',
  )
})
