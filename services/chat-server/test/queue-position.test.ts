import t, { type Test } from 'tap'
import { keys } from '@switchboard/domain'
import { redisNow, startStack, type Received, type RunningApp, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * QueuePosition (docs/agent-workflow.md): a waiting v2 visitor learns where
 * they stand, on Join and whenever their position or the estimate changes,
 * from claims and joins on any instance; never twice for the same state,
 * never after an agent came, never on a seed-004 socket. Someone joining
 * behind changes only `waiting`, which is not news on its own (issue 15,
 * item 4: in a surge it cost N² frames); a frame carries the current count.
 */

// Positions are re-read every QUEUE_POSITION_INTERVAL_MS; a short one keeps this file quick (the surge test keeps the default).
const FAST = { QUEUE_POSITION_INTERVAL_MS: '100' }

interface Visitor {
  userId: string
  username: string
  chatId: string
}

interface QueuedVisitor extends Visitor {
  /** The visitor's latest socket. */
  socket: TestSocket
}

const isType = (type: string) => (m: Received) => m.json?.type === type

// The frames, written out by hand in their documented field order.
const queuePosition = (chatId: string, position: number, waiting: number, estimate: number | null) =>
  `{"type":"QueuePosition","args":{"chatId":"${chatId}","position":${position},"waiting":${waiting},"estimatedWaitSeconds":${estimate}}}`
const seedUserJoined = (v: Visitor) => `{"type":"UserJoined","args":{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}}`
const seedSupportJoined = (v: Visitor, supportId: string, supportUserName: string) =>
  `{"type":"SupportJoinedUser","args":{"supportId":"${supportId}","supportUserName":"${supportUserName}","username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}}`

const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
const visitorJoin = (v: Visitor) => ({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User' } })
const agentJoin = (v: Visitor, supportUserName = 'Vika') => ({
  type: 'Join',
  args: { userId: v.userId, username: v.username, supportUserName, from: 'Support' },
})

/** Opens a visitor socket (v2 unless told) on `on`, sends Join and waits for UserJoined. */
async function openVisitorSocket(stack: Stack, visitor: Visitor, on: RunningApp, v2 = true): Promise<TestSocket> {
  const socket = await stack.socket(`${on.ws}/chat/${visitor.chatId}`, 'pong:user', { v2 })
  socket.send(visitorJoin(visitor))
  await socket.nextOfType('UserJoined')
  return socket
}

/** A registered v2 visitor who has sent Join (and got UserJoined) on `on`. */
async function enterQueue(stack: Stack, name: string, on: RunningApp = stack.chatServers[0]!): Promise<QueuedVisitor> {
  const visitor = await stack.joinVisitor(name, on)
  return { ...visitor, socket: await openVisitorSocket(stack, visitor, on) }
}

/** A refresh: the old socket closes, a new one (v2) joins on `on`. */
async function refresh(stack: Stack, visitor: QueuedVisitor, on: RunningApp): Promise<TestSocket> {
  await visitor.socket.close()
  visitor.socket = await openVisitorSocket(stack, visitor, on)
  return visitor.socket
}

/**
 * Whether `frame` only brings a fresher estimate than `previous`: the same
 * place, both estimates numbers, different (`waiting` may have moved too). The estimate grows with
 * the time since the claims it is drawn from, so a recount for some other
 * reason may carry a new one; that is a change (the spec sends one whenever
 * any of the three fields changes), not a duplicate.
 */
function onlyFresherEstimate(previous: Received | undefined, frame: Received): boolean {
  if (previous === undefined || previous.text === frame.text) return false
  const [a, b] = [previous.json.args, frame.json.args]
  return a.position === b.position && a.estimatedWaitSeconds !== null && b.estimatedWaitSeconds !== null
}

/**
 * Consumes the socket's next QueuePosition and checks it exactly. With
 * `estimateSince` null the estimate must be null; with a time (ms, taken
 * before the first claim of the test) it must be a whole number of seconds,
 * at least 1 and at most `ceil(position × seconds since then)`: the mean gap
 * between claims and now can never exceed the time since the first of them.
 * Returns the estimate. When the latest QueuePosition the test consumed already says
 * `position` (with an estimate or not, as expected), only `waiting` changed:
 * not news, no frame is sent, and that is checked instead.
 */
async function expectPosition(
  t: Test,
  socket: TestSocket,
  chatId: string,
  position: number,
  waiting: number,
  estimateSince: number | null,
  what: string,
): Promise<number | null> {
  // The last one the test has seen (consumed): a frame not consumed yet is not taken for what it was told.
  const unseen = new Set(socket.unconsumed)
  const told = socket.received.findLast((m) => isType('QueuePosition')(m) && !unseen.has(m))?.json.args
  if (told !== undefined && told.position === position && (told.estimatedWaitSeconds === null) === (estimateSince === null)) {
    t.not(told.waiting, waiting, `${what}: still position ${position}; only waiting changed (${told.waiting} → ${waiting}), which is not news`)
    return told.estimatedWaitSeconds
  }
  let frame = await socket.nextOfType('QueuePosition')
  while (onlyFresherEstimate(lastPositionBefore(socket, frame), frame)) frame = await socket.nextOfType('QueuePosition')
  const estimate = frame.json?.args?.estimatedWaitSeconds
  if (estimateSince === null) {
    t.equal(frame.text, queuePosition(chatId, position, waiting, null), `${what}: position ${position} of ${waiting}, no estimate`)
    return null
  }
  t.equal(frame.text, queuePosition(chatId, position, waiting, estimate), `${what}: position ${position} of ${waiting}, exact frame`)
  const bound = Math.max(1, Math.ceil((position * (Date.now() - estimateSince)) / 1000))
  t.ok(Number.isInteger(estimate) && estimate >= 1 && estimate <= bound, `${what}: estimate ${estimate} s is a whole number in [1, ${bound}]`)
  return estimate
}

function lastPositionBefore(socket: TestSocket, frame: Received): Received | undefined {
  return socket.received.slice(0, socket.received.indexOf(frame)).findLast(isType('QueuePosition'))
}

/**
 * [position, waiting] of every QueuePosition the socket received, in order;
 * a frame that only brings a fresher estimate is not listed again (an
 * identical frame is: that would be a duplicate).
 */
function positionsOf(socket: TestSocket): [number, number][] {
  const frames = socket.received.filter(isType('QueuePosition'))
  return frames.filter((m, i) => !onlyFresherEstimate(frames[i - 1], m)).map((m) => [m.json.args.position, m.json.args.waiting])
}

/** An agent's /users socket (agents anonymous unless a token is given). */
function agentSocket(stack: Stack, i = 0, opts: { token?: string; v2?: boolean } = {}): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support', opts)
}

/** Claims with JoinUser and waits for the answer, which must be RemoveUser. */
async function claim(t: Test, agent: TestSocket, visitor: Visitor): Promise<void> {
  agent.send(joinUser(visitor))
  const answer = await agent.next((m) => (m.json?.type === 'RemoveUser' && m.json.args.userId === visitor.userId) || m.json?.type === 'Error')
  t.equal(answer.json.type, 'RemoveUser', `${visitor.username} claimed by JoinUser`)
}

/** Sends Load and returns the chatIds it listed, in order (a marker frame answered with UNKNOWN_TYPE ends the list). */
async function load(agent: TestSocket): Promise<string[]> {
  const before = agent.received.length
  agent.send({ type: 'Load' })
  agent.send({ type: 'Marker' })
  const marker = await agent.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
  return agent.received
    .slice(before, agent.received.indexOf(marker))
    .filter((m) => m.json?.type === undefined)
    .map((m) => m.json.chatId)
}

async function getStatus(on: RunningApp): Promise<any> {
  const res = await fetch(`${on.http}/status`)
  return res.json()
}

t.test('a v2 visitor gets UserJoined, then QueuePosition: first in line, no estimate before any claim', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const ana = await enterQueue(stack, 'Ana')
  t.equal(ana.socket.ws.protocol, 'switchboard.v2', 'the server selected v2')
  t.match(ana.socket.received[0]!.json, { type: 'UserJoined', args: { username: 'Ana', userId: ana.userId, chatId: ana.chatId } })
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana alone')
  t.same(ana.socket.received.map((m) => m.json?.type), ['UserJoined', 'QueuePosition'], 'UserJoined first, then QueuePosition, nothing else')

  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea behind Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana, someone joined behind')
  t.same(bea.socket.received.map((m) => m.json?.type), ['UserJoined', 'QueuePosition'])
  t.same(positionsOf(ana.socket), [[1, 1]], 'Ana got exactly one QueuePosition: Bea joining behind is not news')
})

t.test('claims anywhere move everyone behind up, on both ChatServer instances; a visitor joining behind changes only waiting', async (t) => {
  const stack = await startStack(t, { env: FAST, chatServers: 2 })
  const [cs0, cs1] = stack.chatServers as [RunningApp, RunningApp]

  const ana = await enterQueue(stack, 'Ana', cs0)
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea', cs1)
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea (instance 1)')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana hears of Bea')
  const cai = await enterQueue(stack, 'Cai', cs0)
  await expectPosition(t, cai.socket, cai.chatId, 3, 3, null, 'Cai')
  await expectPosition(t, ana.socket, ana.chatId, 1, 3, null, 'Ana hears of Cai')
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, null, 'Bea hears of Cai on the other instance')

  // The first claim: JoinUser on /users.
  const since = Date.now()
  const agent = await agentSocket(stack)
  await claim(t, agent, ana)
  const bea1 = await expectPosition(t, bea.socket, bea.chatId, 1, 2, since, 'Bea after Ana was claimed')
  const cai2 = await expectPosition(t, cai.socket, cai.chatId, 2, 2, since, 'Cai after Ana was claimed')
  t.ok(cai2! >= bea1!, `position 2 waits at least as long as position 1 (${cai2} ≥ ${bea1})`)
  // Ana, claimed but with no agent yet, refreshes: UserJoined again (seed 004), but she has no place in the line.
  const anaFirstSocket = ana.socket
  await refresh(stack, ana, cs1)

  // The second: an agent's chat Join on instance 1, without JoinUser.
  const beaAgent = await stack.socket(`${cs1.ws}/chat/${bea.chatId}`, 'pong:support')
  beaAgent.send(agentJoin(bea))
  await beaAgent.nextOfType('SupportJoinedUser')
  await bea.socket.nextOfType('SupportJoinedUser')
  await expectPosition(t, cai.socket, cai.chatId, 1, 1, since, 'Cai after Bea was joined directly')

  // Someone joins behind: Cai stays first, only waiting changes.
  const dia = await enterQueue(stack, 'Dia', cs1)
  const dia2 = await expectPosition(t, dia.socket, dia.chatId, 2, 2, since, 'Dia (instance 1)')
  const cai1 = await expectPosition(t, cai.socket, cai.chatId, 1, 2, since, 'Cai: Dia joined behind')
  t.ok(dia2! >= cai1!, `position 2 waits at least as long as position 1 (${dia2} ≥ ${cai1})`)

  // Marker: one more visitor; everyone still waiting hears of them, the claimed ones do not.
  const eli = await enterQueue(stack, 'Eli', cs0)
  await expectPosition(t, eli.socket, eli.chatId, 3, 3, since, 'Eli')
  await expectPosition(t, cai.socket, cai.chatId, 1, 3, since, 'Cai hears of Eli')
  await expectPosition(t, dia.socket, dia.chatId, 2, 3, since, 'Dia hears of Eli on the other instance')

  t.same(positionsOf(anaFirstSocket), [[1, 1]], 'Ana (claimed by JoinUser) got nothing after her claim')
  t.same(ana.socket.received.map((m) => m.json?.type), ['UserJoined'], 'nor on the socket she opened after it')
  t.same(positionsOf(bea.socket), [[2, 2], [1, 2]], 'Bea (joined by an agent) got nothing after the agent came')
  t.same(positionsOf(cai.socket), [[3, 3], [2, 2], [1, 1]], 'Cai: each change of place once')
  t.same(positionsOf(dia.socket), [[2, 2]], 'Dia: no change of place')
  t.same(positionsOf(eli.socket), [[3, 3]])
})

t.test('a visitor ahead who leaves (EndChat) moves everyone behind up; leaving is not a claim', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana')
  const cai = await enterQueue(stack, 'Cai')
  await expectPosition(t, cai.socket, cai.chatId, 3, 3, null, 'Cai')
  await expectPosition(t, ana.socket, ana.chatId, 1, 3, null, 'Ana')
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, null, 'Bea')

  ana.socket.send({ type: 'EndChat', args: {} })
  await ana.socket.nextOfType('ChatEnded')
  await expectPosition(t, bea.socket, bea.chatId, 1, 2, null, 'Bea: Ana left, still no estimate')
  await expectPosition(t, cai.socket, cai.chatId, 2, 2, null, 'Cai: Ana left')

  const dia = await enterQueue(stack, 'Dia')
  await expectPosition(t, dia.socket, dia.chatId, 3, 3, null, 'Dia (marker)')
  await expectPosition(t, bea.socket, bea.chatId, 1, 3, null, 'Bea hears of Dia')
  await expectPosition(t, cai.socket, cai.chatId, 2, 3, null, 'Cai hears of Dia')
  t.same(positionsOf(ana.socket), [[1, 1]], 'Ana got nothing after she left')
})

t.test('a visitor ahead who closes the tab and is not back within CHAT_TTL_SECONDS leaves; those behind move up', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, CHAT_TTL_SECONDS: '1' }, sweepIntervalMs: 50 })
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana')

  await ana.socket.close()
  // The chat expires a TTL after Ana's last keep-alive; Bea, still here, stays.
  const moved = await bea.socket.nextOfType('QueuePosition', 10_000)
  t.equal(moved.text, queuePosition(bea.chatId, 1, 1, null), 'Bea moves up; an expiry is not a claim: still no estimate')
  t.same(positionsOf(bea.socket), [[2, 2], [1, 1]])
})

t.test('no QueuePosition when nothing changed for that visitor', async (t) => {
  const stack = await startStack(t, { env: FAST, chatServers: 2 })
  const [cs0, cs1] = stack.chatServers as [RunningApp, RunningApp]
  const ana = await enterQueue(stack, 'Ana', cs0)
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea', cs1)
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana')

  // Not changes for Ana: Bea refreshes (onto the other instance) …
  await refresh(stack, bea, cs0)
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, "Bea's new socket")
  // … a seed visitor joins (a change) and refreshes (not one) …
  const cai = await stack.waitingVisitor('Cai', cs1)
  await expectPosition(t, ana.socket, ana.chatId, 1, 3, null, 'Ana: Cai joined')
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, null, 'Bea: Cai joined')
  await cai.socket.close()
  cai.socket = await openVisitorSocket(stack, cai, cs1, false)
  // … someone registers without joining …
  await stack.joinVisitor('Dia', cs1)
  // … and Ana opens a second tab: that tab is told, the first is not.
  const anaTab = await openVisitorSocket(stack, ana, cs1)
  await expectPosition(t, anaTab, ana.chatId, 1, 3, null, "Ana's second tab")

  // Cai is claimed (a change for everyone ahead), then the claiming agent opens the chat (not one).
  const since = Date.now()
  const agent = await agentSocket(stack)
  await claim(t, agent, cai)
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, since, 'Ana: Cai claimed')
  await expectPosition(t, anaTab, ana.chatId, 1, 2, since, "Ana's second tab: Cai claimed")
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, since, 'Bea: Cai claimed')
  const caiAgent = await stack.socket(`${cs0.ws}/chat/${cai.chatId}`, 'pong:support')
  caiAgent.send(agentJoin(cai))
  await caiAgent.nextOfType('SupportJoinedUser')
  await cai.socket.nextOfType('SupportJoinedUser')

  // A visitor joins behind: news to nobody but her.
  const eli = await enterQueue(stack, 'Eli', cs1)
  await expectPosition(t, eli.socket, eli.chatId, 3, 3, since, 'Eli')
  await expectPosition(t, ana.socket, ana.chatId, 1, 3, since, 'Ana: Eli joined')
  await expectPosition(t, anaTab, ana.chatId, 1, 3, since, "Ana's second tab: Eli joined")
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, since, 'Bea: Eli joined')

  t.same(positionsOf(ana.socket), [[1, 1], [1, 2]], "Ana's first tab: the estimate's arrival once, nothing for the joins behind, the refreshes, the registration, her second tab or the agent's Join")
  t.same(positionsOf(anaTab), [[1, 3], [1, 2]], "Ana's second tab: the same, from when it joined")
  t.same(positionsOf(bea.socket), [[2, 2], [2, 2]], "Bea's new socket: her place, then the estimate's arrival")
  t.same(positionsOf(eli.socket), [[3, 3]])
})

t.test('a visitor who refreshes keeps their place; one who came later stays behind', async (t) => {
  const stack = await startStack(t, { env: FAST, chatServers: 2 })
  const [cs0, cs1] = stack.chatServers as [RunningApp, RunningApp]
  const ana = await enterQueue(stack, 'Ana', cs0)
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea', cs0)
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana')
  const cai = await enterQueue(stack, 'Cai', cs1)
  await expectPosition(t, cai.socket, cai.chatId, 3, 3, null, 'Cai')
  await expectPosition(t, ana.socket, ana.chatId, 1, 3, null, 'Ana')
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, null, 'Bea')

  // Bea refreshes onto the other instance: still second, Cai still third.
  await refresh(stack, bea, cs1)
  await expectPosition(t, bea.socket, bea.chatId, 2, 3, null, 'Bea after a refresh')
  t.same(bea.socket.received.map((m) => m.json?.type), ['UserJoined', 'QueuePosition'], 'the new socket: UserJoined, then QueuePosition')
  const dia = await enterQueue(stack, 'Dia', cs0)
  await expectPosition(t, dia.socket, dia.chatId, 4, 4, null, 'Dia')
  await expectPosition(t, bea.socket, bea.chatId, 2, 4, null, 'Bea, still second')
  await expectPosition(t, cai.socket, cai.chatId, 3, 4, null, 'Cai, still behind Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 4, null, 'Ana')

  // Ana is claimed while Bea is between two sockets: Bea comes back first in line.
  await bea.socket.close()
  const since = Date.now()
  const agent = await agentSocket(stack)
  await claim(t, agent, ana)
  await expectPosition(t, cai.socket, cai.chatId, 2, 3, since, 'Cai: Ana claimed')
  await expectPosition(t, dia.socket, dia.chatId, 3, 3, since, 'Dia: Ana claimed')
  bea.socket = await openVisitorSocket(stack, bea, cs0)
  await expectPosition(t, bea.socket, bea.chatId, 1, 3, since, 'Bea back: first in line')
  t.same(await load(agent), [bea.chatId, cai.chatId, dia.chatId], 'agents see the same order, oldest first')
})

t.test('first in, first out across two ChatServer and two Subscriber instances', async (t) => {
  const stack = await startStack(t, { env: FAST, chatServers: 2, subscribers: 2 })
  const visitors: QueuedVisitor[] = []
  for (const [i, name] of ['V1', 'V2', 'V3', 'V4', 'V5'].entries()) {
    const v = await enterQueue(stack, name, stack.chatServers[i % 2]!)
    visitors.push(v)
    await expectPosition(t, v.socket, v.chatId, i + 1, i + 1, null, `${name} arrives ${i + 1}th`)
    for (const earlier of visitors.slice(0, i)) {
      await expectPosition(t, earlier.socket, earlier.chatId, visitors.indexOf(earlier) + 1, i + 1, null, `${earlier.username} hears of ${name}`)
    }
  }
  const [v1, v2, v3, v4, v5] = visitors as [QueuedVisitor, QueuedVisitor, QueuedVisitor, QueuedVisitor, QueuedVisitor]
  await refresh(stack, v2, stack.chatServers[0]!)
  await expectPosition(t, v2.socket, v2.chatId, 2, 5, null, 'V2 refreshed onto the other instance: still second')

  const agents = [await agentSocket(stack, 0), await agentSocket(stack, 1)]
  for (const [i, agent] of agents.entries()) {
    t.same(await load(agent), visitors.map((v) => v.chatId), `Subscriber ${i} lists them in order of arrival`)
  }

  const since = Date.now()
  await claim(t, agents[1]!, v1)
  await expectPosition(t, v2.socket, v2.chatId, 1, 4, since, 'V2 is next')
  await expectPosition(t, v3.socket, v3.chatId, 2, 4, since, 'V3')
  await expectPosition(t, v4.socket, v4.chatId, 3, 4, since, 'V4')
  await expectPosition(t, v5.socket, v5.chatId, 4, 4, since, 'V5')

  // An agent may pick anyone (seed 004 allows it): positions follow what is left.
  await claim(t, agents[0]!, v3)
  await expectPosition(t, v2.socket, v2.chatId, 1, 3, since, 'V2 stays first')
  await expectPosition(t, v4.socket, v4.chatId, 2, 3, since, 'V4 moves up')
  await expectPosition(t, v5.socket, v5.chatId, 3, 3, since, 'V5 moves up')
  for (const [i, agent] of agents.entries()) {
    t.same(await load(agent), [v2.chatId, v4.chatId, v5.chatId], `Subscriber ${i} lists what is left, in order`)
  }
})

t.test('estimatedWaitSeconds = ceil(position × (now − oldest of the last k ≤ 20 claims in 30 minutes) / k)', async (t) => {
  // The claims are written into Redis as claims record them (chatId scored by
  // the Redis clock in ms), so the expected estimates do not depend on timing.
  const stack = await startStack(t, { env: FAST })
  const redis = stack.chatServers[0]!.app.redis.commands
  const fake = (i: number) => `${'f'.repeat(28)}${String(i).padStart(4, '0')}`
  const minutes = 60_000

  // Claims older than 30 minutes say nothing.
  let now = await redisNow(stack.chatServers[0]!.app.redis.commands)
  await redis.zadd(keys.claims, now - 31 * minutes, fake(1), now - 45 * minutes, fake(2), now - 60 * minutes, fake(3))
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'only claims older than 30 minutes')
  t.strictSame(await getStatus(stack.chatServers[0]!), { agentsOnline: 0, agentsAway: 0, visitorsWaiting: 1, estimatedWaitSeconds: null }, '/status too')

  // Five claims 21–25 minutes ago, then twenty from 400 s to 362 s ago, 2 s apart:
  // the last 20 are the ones that count, and the gap is 400 s / 20 = 20 s.
  // (Not (newest − oldest) / 19 = 2 s, not the 25 in the window: 1500 s / 25 = 60 s.)
  const seededAt = Date.now()
  now = await redisNow(stack.chatServers[0]!.app.redis.commands)
  const older = [21, 22, 23, 24, 25].flatMap((m, i) => [now - m * minutes, fake(10 + i)])
  const recent = Array.from({ length: 20 }, (_, i) => [now - 400_000 + i * 2000, fake(100 + i)]).flat()
  await redis.zadd(keys.claims, ...older, ...recent)
  /** The estimate for `position`, given that the oldest counted claim was `ageMs` old at seeding: [least, most]. */
  const range = (position: number, ageMs: number) => [
    Math.ceil((position * ageMs) / 20 / 1000),
    Math.ceil((position * (ageMs + (Date.now() - seededAt) + 1)) / 20 / 1000),
  ]
  const inRange = (estimate: number | null, [least, most]: number[], what: string) =>
    t.ok(estimate !== null && estimate >= least! && estimate <= most!, `${what}: ${estimate} in [${least}, ${most}]`)

  const bea = await enterQueue(stack, 'Bea')
  const beaEstimate = (await bea.socket.nextOfType('QueuePosition')).json.args
  t.match(beaEstimate, { chatId: bea.chatId, position: 2, waiting: 2 })
  inRange(beaEstimate.estimatedWaitSeconds, range(2, 400_000), 'position 2: 2 × 20 s')
  const anaEstimate = (await ana.socket.nextOfType('QueuePosition')).json.args
  t.match(anaEstimate, { chatId: ana.chatId, position: 1, waiting: 2 })
  inRange(anaEstimate.estimatedWaitSeconds, range(1, 400_000), 'position 1: 20 s')
  const status = await getStatus(stack.chatServers[0]!)
  t.match(status, { agentsOnline: 0, agentsAway: 0, visitorsWaiting: 2 })
  inRange(status.estimatedWaitSeconds, range(3, 400_000), '/status, for the next to join (position 3): 3 × 20 s')

  // A real claim: it is the newest, and the oldest of the twenty drops out (398 s old at seeding).
  const agent = await agentSocket(stack)
  await claim(t, agent, ana)
  const afterClaim = (await bea.socket.nextOfType('QueuePosition')).json.args
  t.match(afterClaim, { chatId: bea.chatId, position: 1, waiting: 1 })
  inRange(afterClaim.estimatedWaitSeconds, range(1, 398_000), 'Bea, position 1, after a real claim: 398 s / 20')
})

t.test('a seed-004 visitor never gets QueuePosition: byte-for-byte seed frames', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const url = (v: Visitor) => `${stack.chatServers[0]!.ws}/chat/${v.chatId}`
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana (v2) first')
  const nika = await stack.waitingVisitor('Nika')
  t.equal(nika.socket.ws.protocol, '', 'no subprotocol: seed 004')
  // A v2 tab of the same visitor, on the same instance: it witnesses every change Nika's seed tab would have heard of.
  const witness = await openVisitorSocket(stack, nika, stack.chatServers[0]!)
  await expectPosition(t, witness, nika.chatId, 2, 2, null, "Nika's v2 tab")
  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 3, 3, null, 'Bea')
  await expectPosition(t, witness, nika.chatId, 2, 3, null, "Nika's v2 tab: Bea joined")

  const since = Date.now()
  const agent = await agentSocket(stack)
  await claim(t, agent, ana)
  await expectPosition(t, witness, nika.chatId, 1, 2, since, "Nika's v2 tab: Ana claimed")
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, since, 'Bea: Ana claimed')

  const support = await stack.socket(url(nika), 'pong:support')
  support.send(agentJoin(nika))
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await expectPosition(t, bea.socket, bea.chatId, 1, 1, since, 'Bea: Nika joined by an agent')
  nika.socket.send({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content: 'hello', from: 'User' } })
  const message = await nika.socket.nextOfType('ChatMessage')
  t.same(
    nika.socket.received.map((m) => m.text),
    [
      seedUserJoined(nika),
      seedSupportJoined(nika, supportId, 'Vika'),
      `{"type":"ChatMessage","args":{"userId":"${nika.userId}","supportId":"${supportId}","content":"hello","timestamp":"${message.json.args.timestamp}","from":"User"}}`,
    ],
    'the seed tab got exactly the seed-004 frames: UserJoined, SupportJoinedUser, ChatMessage',
  )
  t.same(positionsOf(witness), [[2, 2], [1, 2]], 'while the v2 tab of the same visitor heard of every change of place')
})

t.test('after an agent joins, no more QueuePosition for that visitor, on any socket', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const url = (v: Visitor) => `${stack.chatServers[0]!.ws}/chat/${v.chatId}`
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')
  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, null, 'Bea')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, null, 'Ana')

  const since = Date.now()
  const support = await stack.socket(url(ana), 'pong:support', { v2: true })
  support.send(agentJoin(ana))
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await ana.socket.nextOfType('SupportJoinedUser')
  await expectPosition(t, bea.socket, bea.chatId, 1, 1, since, 'Bea: Ana joined by an agent')

  // Ana refreshes: her chat, not a place in the queue.
  const again = await stack.socket(url(ana), 'pong:user', { v2: true })
  again.send({ type: 'Join', args: { userId: ana.userId, username: ana.username, supportId, from: 'User' } })
  await again.nextOfType('ChatHistory')

  const cai = await enterQueue(stack, 'Cai')
  await expectPosition(t, cai.socket, cai.chatId, 2, 2, since, 'Cai')
  await expectPosition(t, bea.socket, bea.chatId, 1, 2, since, 'Bea: Cai joined')
  // Marker through Ana's chat: the agent's message reaches both of her sockets after anything sent before it.
  support.send({ type: 'ChatMessage', args: { userId: ana.userId, supportId, content: 'hi', from: 'Support' } })
  await ana.socket.nextOfType('ChatMessage')
  await again.nextOfType('ChatMessage')

  t.same(positionsOf(ana.socket), [[1, 1]], "Ana's first socket: nothing after the agent came")
  const joinedAt = ana.socket.received.findIndex(isType('SupportJoinedUser'))
  t.ok(ana.socket.received.slice(joinedAt).every((m) => !isType('QueuePosition')(m)), 'no QueuePosition after SupportJoinedUser')
  t.same(positionsOf(again), [], 'her refreshed socket: none at all')
})

t.test('a chat handed back to the queue: the visitor gets UserJoined, then QueuePosition at the head', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, AGENT_AUTH: 'on' } })
  const token = await stack.agentToken('Vika')
  const ana = await enterQueue(stack, 'Ana')
  await expectPosition(t, ana.socket, ana.chatId, 1, 1, null, 'Ana')

  const since = Date.now()
  const agent = await agentSocket(stack, 0, { token, v2: true })
  await claim(t, agent, ana)
  const support = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${ana.chatId}`, 'pong:support', { token, v2: true })
  support.send(agentJoin(ana))
  await support.nextOfType('SupportJoinedUser')
  await ana.socket.nextOfType('SupportJoinedUser')

  const bea = await enterQueue(stack, 'Bea')
  await expectPosition(t, bea.socket, bea.chatId, 1, 1, since, 'Bea, alone in the queue')

  agent.send({ type: 'TransferChat', args: { chatId: ana.chatId, toAgentId: null } })
  const userJoined = await ana.socket.nextOfType('UserJoined')
  t.match(userJoined.json.args, { username: 'Ana', userId: ana.userId, chatId: ana.chatId }, 'Ana is waiting again')
  await expectPosition(t, ana.socket, ana.chatId, 1, 2, since, 'Ana, back at the head of the queue')
  const joinedAgain = ana.socket.received.indexOf(userJoined)
  t.equal(ana.socket.received.findIndex((m, i) => i > joinedAgain && isType('QueuePosition')(m)), joinedAgain + 1, 'right after UserJoined')
  await expectPosition(t, bea.socket, bea.chatId, 2, 2, since, 'Bea, behind her')
})
