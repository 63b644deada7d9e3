import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { ProtocolError, encode, encodeV2, type Party, type Visitor } from '@switchboard/protocol'
import {
  appendMessage,
  channels,
  claimGapMs,
  claimVisitor,
  createChat,
  endChat,
  enqueueVisitor,
  estimateWaitSeconds,
  getChat,
  joinSupport,
  keys,
  listAgents,
  listMyChats,
  listQueue,
  markReceipt,
  parseQueueEvent,
  queuePositions,
  readHistory,
  renewPresence,
  serviceStatus,
  setAgentStatus,
  sweepExpired,
  sweepPresence,
  transferChat,
  type RedisConnections,
} from '@switchboard/domain'
import { startRedis, connectedRedis, redisNow, redisClockPast } from '@switchboard/testing'

/*
 * The agent workflow in the store (docs/agent-workflow.md): presence leases
 * and their sweep, status, seats and their limits, my chats, transfers, queue
 * positions and the wait estimate. Over a real redis-server.
 */

const LONG = { chatTtlMs: 60_000 }
const LEASE = 60_000
const MIN = 60_000
const quiet = { warn() {}, info() {} }

/** A frame published on a chat channel, as `<chatId> <envelope>`; agent and queue events as their JSON. */
interface Published {
  chat: string[]
  agents: unknown[]
  queue: string[]
}

/**
 * A private redis-server, a command connection, a second one (for concurrent
 * callers), and everything published on the chat, agent and queue channels.
 * `take()` publishes a marker and waits for it (so everything published
 * before has arrived), then returns and forgets what came.
 */
async function setup(t: Test) {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const conn = await connectedRedis(t, server.url)
  const other = await connectedRedis(t, server.url)
  const listener = await connectedRedis(t, server.url)
  let got: Published = { chat: [], agents: [], queue: [] }
  let marker: (() => void) | undefined
  listener.subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    if (message === 'marker') marker?.()
    else got.chat.push(`${channel.slice(channels.chat('').length)} ${message}`)
  })
  listener.subscriber.on('message', (channel: string, message: string) => {
    if (channel === channels.agents) got.agents.push(JSON.parse(message))
    else if (channel === channels.queue) got.queue.push(message)
  })
  await listener.subscriber.psubscribe(channels.chat('*'))
  await listener.subscriber.subscribe(channels.agents, channels.queue)
  return {
    redis: conn.commands,
    other: other.commands,
    async take(): Promise<Published> {
      const arrived = new Promise<void>((resolve) => (marker = resolve))
      await conn.commands.publish(channels.chat('marker'), 'marker')
      await arrived
      const taken = got
      got = { chat: [], agents: [], queue: [] }
      return taken
    },
  }
}

/** Waits until every lease of the agent (as recorded in Redis) has run out. */
async function leaseRunsOut(redis: Redis, agentId: string): Promise<void> {
  const lease = await redis.zscore(keys.agentsOnline, agentId)
  if (lease === null) throw new Error(`${agentId} holds no lease`)
  await redisClockPast(redis, Number(lease))
}

/** Rejects with a ProtocolError of this code, or fails the test. */
async function rejectsWith(t: Test, promise: Promise<unknown>, code: string, what: string) {
  try {
    await promise
    t.fail(`${what}: resolved, expected ${code}`)
  } catch (err) {
    t.equal(err instanceof ProtocolError ? err.code : String(err), code, what)
  }
}

const changed = (...agentIds: string[]) => ({ changed: agentIds })
const seats = (redis: Redis, agentId: string) => redis.smembers(keys.agentChats(agentId)).then((ids) => ids.sort())
const seatCount = (redis: Redis, agentId: string) => redis.scard(keys.agentChats(agentId))
const online = (redis: Redis, agentId: string, name: string, instanceId = 'sub-1', leaseMs = LEASE) =>
  renewPresence(redis, { agentId, name }, instanceId, leaseMs)

/** A visitor waiting in the queue. */
async function waitingVisitor(redis: Redis, username = 'Nika', opts = LONG): Promise<Visitor> {
  const visitor = await createChat(redis, username, opts)
  await enqueueVisitor(redis, visitor, opts)
  return visitor
}

/** A visitor claimed and joined by `agentId`: their seat, and a supportId to write with. */
async function heldChat(redis: Redis, agentId: string, agentName: string, opts = LONG, username = 'Nika') {
  const visitor = await waitingVisitor(redis, username, opts)
  await claimVisitor(redis, visitor.chatId, visitor.userId, agentId, 0)
  const joined = await joinSupport(redis, visitor, agentName, opts, agentId, 0)
  return { ...visitor, supportId: joined.supportId }
}

const queuedIds = (redis: Redis) => listQueue(redis).then((q) => q.map((v) => v.chatId))

// ---------------------------------------------------------------------------
// The wait estimate, as pure functions.

t.test('claimGapMs: the mean gap of the last k ≤ 20 claims of the past 30 minutes', async (t) => {
  const now = 1_700_000_000_000
  t.equal(claimGapMs([], now), null, 'no claim at all: nothing to go on')
  t.equal(claimGapMs([now - 31 * MIN, now - 45 * MIN], now), null, 'only claims older than 30 minutes: nothing to go on')
  t.equal(claimGapMs([now - 30 * MIN - 1], now), null, 'just past the window')
  t.equal(claimGapMs([now - 30 * MIN + 1], now), 30 * MIN - 1, 'just inside the window')
  t.equal(claimGapMs([now - 4000], now), 4000, 'one claim: the time since it')
  t.equal(claimGapMs([now - 1000, now - 3000], now), 1500, '(now − oldest) / k')
  t.equal(claimGapMs([now - 3000, now - 1000], now), 1500, 'in any order')
  t.equal(claimGapMs([now - 1000, now - 3000, now - 40 * MIN], now), 1500, 'an old claim does not count, nor stretch the gap')
  // 25 claims, one a second: the last 20 go back 20 s.
  const many = Array.from({ length: 25 }, (_, i) => now - (i + 1) * 1000)
  t.equal(claimGapMs(many, now), 1000, 'only the last 20: (now − 20 s) / 20')
  t.equal(claimGapMs([...many].reverse(), now), 1000, 'the last 20 by time, not by position in the list')
  const burst = [now - 60_000, ...Array.from({ length: 20 }, () => now - 100)]
  t.equal(claimGapMs(burst, now), 100 / 20, 'twenty recent claims push an older one out')
  t.equal(claimGapMs([now], now), 0, 'a claim this instant: a gap of 0')
})

t.test('estimateWaitSeconds: max(1, ceil(position × gap / 1000)), null without a gap', async (t) => {
  t.equal(estimateWaitSeconds(1, null), null)
  t.equal(estimateWaitSeconds(5, null), null)
  t.equal(estimateWaitSeconds(1, 1500), 2, 'ceil(1.5)')
  t.equal(estimateWaitSeconds(2, 1500), 3, 'position 2: twice the gap')
  t.equal(estimateWaitSeconds(3, 1500), 5, 'ceil(4.5)')
  t.equal(estimateWaitSeconds(10, 30_000), 300, 'whole seconds as they are')
  t.equal(estimateWaitSeconds(1, 1001), 2, 'rounded up, never down')
  t.equal(estimateWaitSeconds(1, 10), 1, 'at least 1 second')
  t.equal(estimateWaitSeconds(1, 0), 1, 'at least 1 second, even with a gap of 0')
  t.equal(estimateWaitSeconds(4, claimGapMs([0, 2000, 4000, 6000], 8000)), 8, 'together: (8 s − 0) / 4 = a gap of 2 s, position 4')
})

// ---------------------------------------------------------------------------
// Presence.

t.test('renewPresence: true when the agent comes online, false on renewals and on a second instance', async (t) => {
  const { redis, take } = await setup(t)
  t.equal(await online(redis, 'a1', 'Ana', 'sub-1'), true, 'first lease: came online')
  t.same((await take()).agents, [changed('a1')], 'announced once')
  t.equal(await online(redis, 'a1', 'Ana', 'sub-1'), false, 'a renewal')
  t.equal(await online(redis, 'a1', 'Ana', 'sub-1'), false, 'another renewal')
  t.equal(await online(redis, 'a1', 'Ana', 'sub-2'), false, 'the same agent on a second instance is not new')
  t.same((await take()).agents, [], 'renewals announce nothing')
  t.same(
    (await redis.zrange(keys.agentSessions('a1'), 0, -1)).sort(),
    ['sub-1', 'sub-2'],
    'one lease per instance',
  )
  t.same(await listAgents(redis), [{ agentId: 'a1', name: 'Ana', status: 'online', activeChats: 0, anonymous: false }], 'listed once')
})

t.test('listAgents: online agents by name, then agentId, with status, seats, and anonymous ones flagged', async (t) => {
  const { redis } = await setup(t)
  t.same(await listAgents(redis), [], 'nobody yet')
  await online(redis, 'z9', 'Bea')
  await online(redis, 'b2', 'Bea')
  await online(redis, 'm5', 'Al')
  await online(redis, 'a0', 'Cy')
  await renewPresence(redis, { agentId: 'anon-1', name: 'Support', anonymous: true }, 'sub-1', LEASE)
  await setAgentStatus(redis, 'b2', 'away')
  await heldChat(redis, 'z9', 'Bea')
  await heldChat(redis, 'z9', 'Bea')
  await heldChat(redis, 'm5', 'Al')
  // Known, but never online: not listed.
  await setAgentStatus(redis, 'ghost', 'online')

  t.same(await listAgents(redis), [
    { agentId: 'm5', name: 'Al', status: 'online', activeChats: 1, anonymous: false },
    { agentId: 'b2', name: 'Bea', status: 'away', activeChats: 0, anonymous: false },
    { agentId: 'z9', name: 'Bea', status: 'online', activeChats: 2, anonymous: false },
    { agentId: 'a0', name: 'Cy', status: 'online', activeChats: 0, anonymous: false },
    { agentId: 'anon-1', name: 'Support', status: 'online', activeChats: 0, anonymous: true },
  ])
})

t.test('an agent whose leases all ran out is swept offline once, even by concurrent sweepers', async (t) => {
  const { redis, other, take } = await setup(t)
  await online(redis, 'a1', 'Ana', 'sub-1', 500)
  await online(redis, 'b1', 'Bo', 'sub-1', LEASE)
  await take()
  t.equal(await sweepPresence(redis), 0, 'nothing ran out yet')

  await leaseRunsOut(redis, 'a1')
  t.same(
    (await listAgents(redis)).map((a) => a.agentId),
    ['b1'],
    'a lease that ran out is not listed, even before a sweep',
  )
  const swept = await Promise.all([sweepPresence(redis), sweepPresence(other), sweepPresence(redis), sweepPresence(other)])
  t.equal(
    swept.reduce((a, b) => a + b, 0),
    1,
    'one sweeper took the agent offline',
    { swept },
  )
  t.same((await take()).agents, [changed('a1')], 'announced once')
  t.equal(await redis.zscore(keys.agentsOnline, 'a1'), null, 'gone from the online set')
  t.equal(await redis.exists(keys.agentSessions('a1')), 0, 'no lease left behind')
  t.equal(await sweepPresence(redis), 0, 'a later sweep finds nothing')
  t.same((await take()).agents, [], 'and says nothing')
  t.same(
    (await listAgents(redis)).map((a) => a.agentId),
    ['b1'],
    'the other agent stays',
  )
})

t.test('an agent stays online while any instance holds a lease', async (t) => {
  const { redis, take } = await setup(t)
  await online(redis, 'a1', 'Ana', 'sub-1', 150)
  await online(redis, 'a1', 'Ana', 'sub-2', LEASE)
  await take()
  await redisClockPast(redis, Number(await redis.zscore(keys.agentSessions('a1'), 'sub-1')))
  t.equal(await sweepPresence(redis), 0, "one instance's lease ran out, the other's holds")
  t.same((await take()).agents, [], 'nothing announced')
  t.same((await listAgents(redis)).map((a) => a.agentId), ['a1'], 'still listed')
})

t.test('status: away stays away within the lease; after going offline the agent comes back online', async (t) => {
  const { redis, take } = await setup(t)
  await online(redis, 'a1', 'Ana', 'sub-1', 1000)
  await take()

  t.equal(await setAgentStatus(redis, 'a1', 'away'), true, 'changed')
  t.same((await take()).agents, [changed('a1')], 'a status change is announced')
  t.equal(await setAgentStatus(redis, 'a1', 'away'), false, 'away already')
  t.same((await take()).agents, [], 'no change, no announcement')

  // A page reload: the same agent renews (another instance too) while the lease holds.
  t.equal(await online(redis, 'a1', 'Ana', 'sub-1', 1000), false, 'back within the lease')
  t.equal(await online(redis, 'a1', 'Ana', 'sub-2', 1000), false, 'on another instance too')
  t.equal((await listAgents(redis))[0]?.status, 'away', 'still away')
  t.same((await take()).agents, [], 'nothing announced')

  await leaseRunsOut(redis, 'a1')
  t.equal(await sweepPresence(redis), 1, 'offline')
  t.same((await take()).agents, [changed('a1')], 'going offline is announced')
  t.same(await listAgents(redis), [], 'not listed')

  t.equal(await online(redis, 'a1', 'Ana', 'sub-1'), true, 'came back')
  t.same((await take()).agents, [changed('a1')], 'coming online is announced')
  t.same(await listAgents(redis), [{ agentId: 'a1', name: 'Ana', status: 'online', activeChats: 0, anonymous: false }], 'online again')
  t.equal(await setAgentStatus(redis, 'a1', 'online'), false, 'online already')
})

t.test('an agent back after the lease ran out (not swept yet) starts online', async (t) => {
  const { redis, take } = await setup(t)
  await online(redis, 'a1', 'Ana', 'sub-1', 150)
  await setAgentStatus(redis, 'a1', 'away')
  await take()
  await leaseRunsOut(redis, 'a1')
  t.equal(await online(redis, 'a1', 'Ana', 'sub-1'), true, 'came online again')
  t.equal((await listAgents(redis))[0]?.status, 'online', 'starts online')
  t.same((await take()).agents, [changed('a1')], 'announced')
  t.equal(await sweepPresence(redis), 0, 'the new lease holds: nothing to sweep')
})

t.test("an anonymous agent's keys are deleted when they go offline; a known agent's name stays", async (t) => {
  const { redis, take } = await setup(t)
  await renewPresence(redis, { agentId: 'anon-1', name: 'Support', anonymous: true }, 'sub-1', 150)
  await online(redis, 'a1', 'Ana', 'sub-1', 150)
  // A seat an anonymous agent could only have by accident: it must not outlive them either.
  await redis.sadd(keys.agentChats('anon-1'), 'some-chat')
  await take()
  await leaseRunsOut(redis, 'anon-1')
  await leaseRunsOut(redis, 'a1')
  t.equal(await sweepPresence(redis), 2, 'both offline')
  const gone = (await take()).agents as { changed: string[] }[]
  t.equal(gone.length, 1, 'one announcement for the sweep')
  t.same([...(gone[0]?.changed ?? [])].sort(), ['a1', 'anon-1'], 'naming both')
  t.same(
    await Promise.all([keys.agent('anon-1'), keys.agentChats('anon-1'), keys.agentSessions('anon-1')].map((k) => redis.exists(k))),
    [0, 0, 0],
    'nothing of the anonymous agent is left',
  )
  t.equal(await redis.hget(keys.agent('a1'), 'name'), 'Ana', "a known agent's record stays")
})

t.test("a known agent's record lives forgetAfterMs past their latest lease, then is gone; coming back makes it again", async (t) => {
  const { redis } = await setup(t)
  const FORGET_MS = 300
  /** The record's TTL against what it should be: the latest lease end plus FORGET_MS, from now (one atomic read). */
  const lifetime = async (agentId: string) => {
    const [[, pttl], [, lease], [, time]] = (await redis.multi().pttl(keys.agent(agentId)).zscore(keys.agentsOnline, agentId).time().exec()) as [
      [null, number],
      [null, string],
      [null, string[]],
    ]
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
    return { pttl, expected: Number(lease) - now + FORGET_MS }
  }
  const near = (got: { pttl: number; expected: number }) => Math.abs(got.pttl - got.expected) <= 2

  await renewPresence(redis, { agentId: 'a1', name: 'Ana' }, 'sub-1', 200, FORGET_MS)
  let got = await lifetime('a1')
  t.ok(near(got), `online: the record lives to the lease's end plus forgetAfterMs (${JSON.stringify(got)})`)
  // Another instance's shorter lease does not cut the record's life short.
  await renewPresence(redis, { agentId: 'a1', name: 'Ana' }, 'sub-2', 50, FORGET_MS)
  got = await lifetime('a1')
  t.ok(near(got), `a shorter lease elsewhere: still the latest lease's end (${JSON.stringify(got)})`)
  t.equal(await setAgentStatus(redis, 'a1', 'away'), true)
  t.ok(near(await lifetime('a1')), 'a status change keeps the lifetime')

  await leaseRunsOut(redis, 'a1')
  const leaseEnd = Number(await redis.zscore(keys.agentsOnline, 'a1'))
  t.equal(await sweepPresence(redis), 1, 'offline')
  t.equal(await redis.hget(keys.agent('a1'), 'name'), 'Ana', 'the record stays a while after')
  await redisClockPast(redis, leaseEnd + FORGET_MS)
  t.equal(await redis.exists(keys.agent('a1')), 0, 'then it is gone')
  t.equal(await setAgentStatus(redis, 'a1', 'away', FORGET_MS), true, 'a status for a forgotten agent')
  const pttl = await redis.pttl(keys.agent('a1'))
  t.ok(pttl > 0 && pttl <= FORGET_MS, `writes a record with a lifetime too (${pttl} ms)`)

  t.equal(await renewPresence(redis, { agentId: 'a1', name: 'Ana' }, 'sub-1', LEASE, FORGET_MS), true, 'back: online again')
  t.same(await listAgents(redis), [{ agentId: 'a1', name: 'Ana', status: 'online', activeChats: 0, anonymous: false }], 'with name and status')
  t.ok(near(await lifetime('a1')), 'and a record with a lifetime')
})

// ---------------------------------------------------------------------------
// Seats.

t.test('claimVisitor refuses an agent at capacity or away, and the visitor stays queued', async (t) => {
  const { redis, take } = await setup(t)
  await online(redis, 'a1', 'Ana')
  const first = await waitingVisitor(redis, 'One')
  await claimVisitor(redis, first.chatId, first.userId, 'a1', 1)
  t.equal(await seatCount(redis, 'a1'), 1, 'the claim took a seat')
  const visitor = await waitingVisitor(redis, 'Two')
  await take()

  await rejectsWith(t, claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1), 'AGENT_AT_CAPACITY', 'one seat, taken')
  t.same(await queuedIds(redis), [visitor.chatId], 'still queued')
  t.equal((await getChat(redis, visitor.chatId))?.state, 'waiting', 'still waiting')
  t.equal(await seatCount(redis, 'a1'), 1, 'no seat taken')
  t.same(await take(), { chat: [], agents: [], queue: [] }, 'nothing announced')

  await setAgentStatus(redis, 'a1', 'away')
  await take()
  await rejectsWith(t, claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 5), 'AGENT_AWAY', 'away, with seats free')
  t.same(await queuedIds(redis), [visitor.chatId], 'still queued')
  t.equal((await getChat(redis, visitor.chatId))?.claimedBy, undefined, 'claimed by nobody')
  t.same(await take(), { chat: [], agents: [], queue: [] }, 'nothing announced')

  await setAgentStatus(redis, 'a1', 'online')
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 5)
  t.same(await seats(redis, 'a1'), [first.chatId, visitor.chatId].sort(), 'online with a free seat: claimed')
  t.same(await queuedIds(redis), [], 'off the queue')
})

t.test('a claim takes a seat and says so; the holder claiming again succeeds quietly', async (t) => {
  const { redis, take } = await setup(t)
  const visitor = await waitingVisitor(redis)
  await take()
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1)
  const claimed = await take()
  t.same(claimed.agents, [changed('a1')], "the agent's seats changed")
  t.same(claimed.queue.map((m) => JSON.parse(m)), [{ kind: 'removed', chatId: visitor.chatId, userId: visitor.userId }], 'off the queue')

  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1)
  t.equal(await seatCount(redis, 'a1'), 1, 'the same claim again: still one seat, though it is the last')
  t.same(await take(), { chat: [], agents: [], queue: [] }, 'nothing announced')
  await rejectsWith(t, claimVisitor(redis, visitor.chatId, visitor.userId, 'b1', 5), 'ALREADY_CLAIMED', 'someone else')
  t.equal(await seatCount(redis, 'b1'), 0, 'took no seat')
})

t.test('concurrent claims for the last seat: exactly one wins', async (t) => {
  const { redis, other } = await setup(t)
  await heldChat(redis, 'a1', 'Ana')
  await heldChat(redis, 'a1', 'Ana')
  const visitors: Visitor[] = []
  for (let i = 0; i < 12; i++) visitors.push(await waitingVisitor(redis, `V${i}`))

  const results = await Promise.allSettled(
    visitors.map((v, i) => claimVisitor(i % 2 === 0 ? redis : other, v.chatId, v.userId, 'a1', 3)),
  )
  const won = results.filter((r) => r.status === 'fulfilled')
  const codes = results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof ProtocolError ? r.reason.code : String(r.reason)] : []))
  t.equal(won.length, 1, 'one claim won the last seat')
  t.same(codes, Array(11).fill('AGENT_AT_CAPACITY'), 'the others were at capacity')
  t.equal(await seatCount(redis, 'a1'), 3, 'three seats, no more')
  t.equal((await listQueue(redis)).length, 11, 'the others are still queued')
})

t.test('joinSupport of a waiting visitor takes a seat the way a claim does', async (t) => {
  const { redis, other, take } = await setup(t)
  const held = await heldChat(redis, 'a1', 'Ana')
  const visitor = await waitingVisitor(redis)
  await take()

  await rejectsWith(t, joinSupport(redis, visitor, 'Ana', LONG, 'a1', 1), 'AGENT_AT_CAPACITY', 'direct join beyond the seats')
  t.same(await queuedIds(redis), [visitor.chatId], 'still queued')
  t.equal((await getChat(redis, visitor.chatId))?.supportId, undefined, 'nobody joined')
  await setAgentStatus(redis, 'a1', 'away')
  await rejectsWith(t, joinSupport(redis, visitor, 'Ana', LONG, 'a1', 5), 'AGENT_AWAY', 'direct join while away')
  t.same(await queuedIds(redis), [visitor.chatId], 'still queued')
  t.same(await seats(redis, 'a1'), [held.chatId], 'no seat taken')
  await setAgentStatus(redis, 'a1', 'online')
  await take()

  const joined = await joinSupport(redis, visitor, 'Ana', LONG, 'a1', 2)
  t.same(await seats(redis, 'a1'), [held.chatId, visitor.chatId].sort(), 'a seat taken')
  t.same(await queuedIds(redis), [], 'off the queue')
  t.match(await getChat(redis, visitor.chatId), { state: 'active', agentId: 'a1', supportId: joined.supportId })
  t.same((await take()).agents, [changed('a1')], 'announced')
  t.equal(await redis.zcard(keys.claims), 2, 'recorded as a claim for the wait estimate (with the earlier claim)')

  // Many direct joins, on two connections, for the last seat.
  const visitors: Visitor[] = []
  for (let i = 0; i < 8; i++) visitors.push(await waitingVisitor(redis, `V${i}`))
  const results = await Promise.allSettled(visitors.map((v, i) => joinSupport(i % 2 ? redis : other, v, 'Ana', LONG, 'a1', 3)))
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one direct join won the last seat')
  t.ok(
    results.every((r) => r.status === 'fulfilled' || (r.reason instanceof ProtocolError && r.reason.code === 'AGENT_AT_CAPACITY')),
    'the others were at capacity',
  )
  t.equal(await seatCount(redis, 'a1'), 3, 'three seats, no more')
  t.equal((await listQueue(redis)).length, 7, 'the others are still queued')
})

t.test('a claim then a join by the same agent takes one seat, not two', async (t) => {
  const { redis, take } = await setup(t)
  const visitor = await waitingVisitor(redis)
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1)
  await take()
  const joined = await joinSupport(redis, visitor, 'Ana', LONG, 'a1', 1)
  t.ok(joined.supportId, 'joined, though the only seat is taken (by this very chat)')
  t.same(await seats(redis, 'a1'), [visitor.chatId], 'one seat')
  t.same((await take()).agents, [], "the agent's seats did not change")
  const again = await joinSupport(redis, visitor, 'Ana', LONG, 'a1', 1)
  t.equal(again.rejoined, true, 'joining again gets the chat back')
  t.equal(again.supportId, joined.supportId, 'with the same supportId')
  t.equal(await seatCount(redis, 'a1'), 1, 'still one seat')
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1)
  t.equal(await seatCount(redis, 'a1'), 1, 'a claim of a chat the agent joined: still one seat')
  await rejectsWith(t, joinSupport(redis, visitor, 'Bo', LONG, 'b1', 5), 'ALREADY_CLAIMED', 'another agent')
  t.equal(await seatCount(redis, 'b1'), 0)
})

t.test('endChat frees the seat and says so', async (t) => {
  const { redis, take } = await setup(t)
  const claimed = await waitingVisitor(redis)
  await claimVisitor(redis, claimed.chatId, claimed.userId, 'a1', 2)
  const joined = await heldChat(redis, 'a1', 'Ana')
  await take()

  t.equal(await endChat(redis, claimed.chatId, 'Support', null), true)
  t.same((await take()).agents, [changed('a1')], 'a claimed chat ended: announced')
  t.same(await seats(redis, 'a1'), [joined.chatId], 'its seat freed')
  t.equal(await endChat(redis, joined.chatId, 'User', 'bye'), true)
  t.same((await take()).agents, [changed('a1')], 'a joined chat ended by the visitor: announced')
  t.equal(await seatCount(redis, 'a1'), 0, 'its seat freed')
  t.equal(await endChat(redis, joined.chatId, 'Support', null), false, 'ended already')
  t.same((await take()).agents, [], 'nothing more announced')

  // The seats freed are seats to use.
  const next = await waitingVisitor(redis)
  await claimVisitor(redis, next.chatId, next.userId, 'a1', 1)
  t.equal(await seatCount(redis, 'a1'), 1, 'with its chats ended, the agent claims again, one seat allowed')
})

t.test('sweepExpired frees the seat of an expired chat and says so', async (t) => {
  const { redis, take } = await setup(t)
  const SHORT = { chatTtlMs: 200 }
  const kept = await heldChat(redis, 'a1', 'Ana')
  const visitor = await waitingVisitor(redis, 'Nika', SHORT)
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 0)
  t.equal(await seatCount(redis, 'a1'), 2)
  await take()

  await redisClockPast(redis, Number(await redis.zscore(keys.deadlines, visitor.chatId)))
  t.equal(await sweepExpired(redis), 1, 'expired')
  t.same(await seats(redis, 'a1'), [kept.chatId], 'the seat freed')
  const published = await take()
  t.same(published.agents, [changed('a1')], 'announced')
  t.same(published.chat, [`${visitor.chatId} all|${encode.chatExpired(visitor.chatId)}`])
})

t.test('maxChats 0: no limit', async (t) => {
  const { redis } = await setup(t)
  for (let i = 0; i < 7; i++) {
    const v = await waitingVisitor(redis, `V${i}`)
    if (i % 2) await claimVisitor(redis, v.chatId, v.userId, 'a1', 0)
    else await joinSupport(redis, v, 'Ana', LONG, 'a1', 0)
  }
  t.equal(await seatCount(redis, 'a1'), 7, 'seven chats, by claim and by direct join')
  t.equal((await listQueue(redis)).length, 0)
})

// ---------------------------------------------------------------------------
// My chats.

t.test('listMyChats: claims of the same millisecond keep the order they were made in (assignedAt has microseconds)', async (t) => {
  const { redis } = await setup(t)
  const visitors: Visitor[] = []
  for (let i = 0; i < 12; i++) visitors.push(await waitingVisitor(redis, `V${i}`))
  // Against the chatId order, sent together: most land in the same millisecond.
  const order = [...visitors].sort((a, b) => (a.chatId < b.chatId ? 1 : -1))
  await Promise.all(order.map((v) => claimVisitor(redis, v.chatId, v.userId, 'a1', 0)))
  const stamps = await Promise.all(order.map((v) => redis.hget(keys.chat(v.chatId), 'assignedAt')))
  t.ok(stamps.every((s) => /^\d+\.\d{3}$/.test(s ?? '')), `assignedAt to the microsecond: ${stamps[0]}`)
  t.same(
    (await listMyChats(redis, 'a1')).map((c) => c.chatId),
    order.map((v) => v.chatId),
    'in the order claimed',
  )
})

t.test('listMyChats: held chats oldest first, with the visitor messages the agent has not read', async (t) => {
  const { redis } = await setup(t)
  t.same(await listMyChats(redis, 'a1'), [], 'none yet')
  const visitors: Visitor[] = []
  for (const name of ['Ann', 'Ben', 'Cid', 'Dot', 'Eve']) visitors.push(await waitingVisitor(redis, name))
  // Claimed against the chatId order, so oldest-first cannot pass by accident.
  const order = [...visitors].sort((a, b) => (a.chatId < b.chatId ? 1 : -1))
  const since: Record<string, number> = {}
  const supportIds: Record<string, string> = {}
  for (const v of order) {
    const before = await redisNow(redis)
    if (v.username === 'Ben') {
      // Held by claim alone: no supportId yet.
      await claimVisitor(redis, v.chatId, v.userId, 'a1', 0)
    } else {
      supportIds[v.chatId] = (await joinSupport(redis, v, 'Ana', LONG, 'a1', 0)).supportId
    }
    since[v.chatId] = Number(await redis.hget(keys.chat(v.chatId), 'assignedAt'))
    t.ok(since[v.chatId]! >= before, 'assignedAt on the Redis clock')
    // Distinct times: the next chat is got strictly later.
    await redisClockPast(redis, since[v.chatId]!)
  }
  // Someone else's chat is not mine.
  await heldChat(redis, 'b1', 'Bo')

  const byName = Object.fromEntries(visitors.map((v) => [v.username, v]))
  const say = (v: Visitor, from: Party, content: string) =>
    appendMessage(redis, { chatId: v.chatId, userId: v.userId, supportId: supportIds[v.chatId]!, content, from }, LONG)
  const ann = byName.Ann!
  await say(ann, 'User', 'u1')
  await say(ann, 'Support', 's1')
  await say(ann, 'User', 'u2')
  await say(ann, 'User', 'u3')
  t.equal(await markReceipt(redis, ann.chatId, 'support', 'read', 2), true)
  await say(byName.Cid!, 'Support', 'only the agent spoke')
  await say(byName.Dot!, 'User', 'd1')
  await markReceipt(redis, byName.Dot!.chatId, 'support', 'read', 1)
  await say(byName.Eve!, 'User', 'e1')
  await markReceipt(redis, byName.Eve!.chatId, 'user', 'read', 1)

  const unread: Record<string, number> = { Ann: 2, Ben: 0, Cid: 0, Dot: 0, Eve: 1 }
  const expected = order.map((v) => ({
    chatId: v.chatId,
    userId: v.userId,
    username: v.username,
    since: new Date(since[v.chatId]!).toISOString(),
    unread: unread[v.username]!,
  }))
  t.same(await listMyChats(redis, 'a1'), expected, 'oldest first, each with its unread count')

  // Ended and expired chats are not held.
  await endChat(redis, byName.Cid!.chatId, 'User', null)
  await redis.zadd(keys.deadlines, (await redisNow(redis)) - 1, byName.Dot!.chatId)
  t.same(
    (await listMyChats(redis, 'a1')).map((c) => c.username),
    order.map((v) => v.username).filter((n) => n !== 'Cid' && n !== 'Dot'),
    'an ended chat and an expired one (not swept yet) are left out',
  )
})

// ---------------------------------------------------------------------------
// Transfers.

/** A chat held (joined) by Ana (a1), with Bo (b1) online and free. */
async function transferSetup(t: Test) {
  const setupResult = await setup(t)
  const { redis } = setupResult
  await online(redis, 'a1', 'Ana')
  await online(redis, 'b1', 'Bo')
  const chat = await heldChat(redis, 'a1', 'Ana')
  await setupResult.take()
  return { ...setupResult, chat }
}

const TRANSFER = { ...LONG, maxChats: 2 }

t.test('transferChat to an online agent: the chat, its seat and its supportId move on', async (t) => {
  const { redis, take, chat } = await transferSetup(t)
  const { chatId, userId } = chat
  const oldSupportId = chat.supportId
  const first = await appendMessage(redis, { chatId, userId, supportId: oldSupportId, content: 'before', from: 'User' }, LONG)
  await take()

  await transferChat(redis, chatId, 'a1', 'b1', TRANSFER)
  const now = await getChat(redis, chatId)
  t.match(now, { state: 'active', agentId: 'b1', claimedBy: 'b1', supportUserName: 'Bo' }, "Bo's chat now")
  const newSupportId = now?.supportId ?? ''
  t.match(newSupportId, /^[0-9a-f]{32}$/, 'a new supportId')
  t.not(newSupportId, oldSupportId)
  t.same(now?.pastSupportIds, [oldSupportId], 'the old supportId remembered')
  t.same(await seats(redis, 'a1'), [], "Ana's seat freed")
  t.same(await seats(redis, 'b1'), [chatId], "Bo's seat taken")
  t.same((await listMyChats(redis, 'b1')).map((c) => [c.chatId, c.unread]), [[chatId, 1]], "in Bo's chats, with the unread message")
  t.same(await listMyChats(redis, 'a1'), [], "not in Ana's")

  const published = await take()
  const visitor = { username: chat.username, userId, chatId }
  t.same(
    published.chat,
    [
      `${chatId} support|${encodeV2.chatUnassigned(chatId, 'b1')}`,
      `${chatId} all|${encode.supportJoinedUser({ supportId: newSupportId, supportUserName: 'Bo', ...visitor })}`,
    ],
    "the old agent's sockets learn first, then the visitor meets the new agent",
  )
  const agentEvents = published.agents
  t.same(
    agentEvents.filter((e) => !('changed' in (e as object))),
    [
      { to: 'b1', frame: encodeV2.chatAssigned({ chatId, userId, username: chat.username, fromAgentId: 'a1' }) },
      { to: 'a1', frame: encodeV2.chatUnassigned(chatId, 'b1') },
    ],
    'ChatAssigned to Bo, ChatUnassigned to Ana',
  )
  const changes = agentEvents.filter((e) => 'changed' in (e as object)) as { changed: string[] }[]
  t.same(changes.flatMap((e) => e.changed).sort(), ['a1', 'b1'], 'both agents changed, announced once each')
  t.same(published.queue, [], 'the queue is not involved')

  // A message in flight from the visitor, under the old supportId, is stored under the new one.
  const late = await appendMessage(redis, { chatId, userId, supportId: oldSupportId, content: 'in flight', from: 'User' }, LONG)
  t.equal(late.message.supportId, newSupportId, 'stored under the new supportId')
  t.equal(late.message.seq, 2)
  t.same((await readHistory(redis, chatId)).map((m) => JSON.parse(m).supportId), [oldSupportId, newSupportId], 'history as stored')
  t.equal(first.message.seq, 1)

  await rejectsWith(
    t,
    appendMessage(redis, { chatId, userId, supportId: oldSupportId, content: 'still mine?', from: 'Support', agentId: 'a1' }, LONG),
    'IDENTITY_MISMATCH',
    'the old agent, with the old supportId',
  )
  await rejectsWith(
    t,
    appendMessage(redis, { chatId, userId, supportId: oldSupportId, content: 'still mine?', from: 'Support' }, LONG),
    'IDENTITY_MISMATCH',
    'Support with the old supportId, no agentId',
  )
  await rejectsWith(
    t,
    appendMessage(redis, { chatId, userId, supportId: newSupportId, content: 'let me', from: 'Support', agentId: 'a1' }, LONG),
    'IDENTITY_MISMATCH',
    'the new supportId from another agent',
  )
  const fromBo = await appendMessage(redis, { chatId, userId, supportId: newSupportId, content: 'hi, Bo here', from: 'Support', agentId: 'b1' }, LONG)
  t.equal(fromBo.message.seq, 3, 'the new agent writes')
  await rejectsWith(
    t,
    appendMessage(redis, { chatId, userId, supportId: 'f'.repeat(32), content: 'x', from: 'User' }, LONG),
    'IDENTITY_MISMATCH',
    'a supportId the chat never had',
  )

  // And on: Bo hands it to Ana again; both earlier supportIds stay good for the visitor.
  await transferChat(redis, chatId, 'b1', 'a1', TRANSFER)
  const third = await getChat(redis, chatId)
  t.same(third?.pastSupportIds, [oldSupportId, newSupportId], 'both past supportIds')
  t.same([await seats(redis, 'a1'), await seats(redis, 'b1')], [[chatId], []], 'the seat moved back')
  const oldest = await appendMessage(redis, { chatId, userId, supportId: oldSupportId, content: 'late', from: 'User' }, LONG)
  t.equal(oldest.message.supportId, third?.supportId, 'the first supportId still reaches the current one')
})

t.test('transferChat to null: the visitor is back at the head of the queue', async (t) => {
  const { redis, take, chat } = await transferSetup(t)
  const { chatId, userId } = chat
  const ahead = await waitingVisitor(redis, 'First')
  const behind = await waitingVisitor(redis, 'Second')
  await take()

  await transferChat(redis, chatId, 'a1', null, TRANSFER)
  const queue = await listQueue(redis)
  t.same(queue.map((v) => v.chatId), [chatId, ahead.chatId, behind.chatId], 'first in line')
  t.ok(queue[0]!.order < Math.min(...queue.slice(1).map((v) => v.order)), 'with the smallest order')
  const now = await getChat(redis, chatId)
  t.equal(now?.state, 'waiting')
  t.equal(now?.supportId, undefined, 'no supportId')
  t.equal(now?.supportUserName, undefined)
  t.equal(now?.agentId, undefined, 'no agent')
  t.equal(now?.claimedBy, undefined, 'claimed by nobody')
  t.same(now?.pastSupportIds, [chat.supportId])
  t.same(await seats(redis, 'a1'), [], 'the seat freed')
  t.same(await listMyChats(redis, 'a1'), [])

  const published = await take()
  const visitor = { username: chat.username, userId, chatId }
  t.same(
    published.chat,
    [`${chatId} support|${encodeV2.chatUnassigned(chatId, null)}`, `${chatId} user|${encode.userJoined(visitor)}`],
    "ChatUnassigned to the agent's sockets, then UserJoined to the visitor",
  )
  const joined = published.queue.map(parseQueueEvent)
  t.match(joined, [{ kind: 'joined', visitor, order: queue[0]!.order }], 'the queue hears of the visitor, with their place')
  t.same(
    published.agents.filter((e) => !('changed' in (e as object))),
    [{ to: 'a1', frame: encodeV2.chatUnassigned(chatId, null) }],
    'ChatUnassigned to Ana',
  )
  t.same(
    (published.agents.filter((e) => 'changed' in (e as object)) as { changed: string[] }[]).flatMap((e) => e.changed),
    ['a1'],
    "Ana's seats changed",
  )
  t.same((await queuePositions(redis, [chatId])).get(chatId)?.position, 1, 'position 1')

  await rejectsWith(
    t,
    appendMessage(redis, { chatId, userId, supportId: chat.supportId, content: 'hello?', from: 'User' }, LONG),
    'NO_AGENT_YET',
    'waiting again: nobody to write to',
  )

  // A second chat put back goes ahead of the first.
  const another = await heldChat(redis, 'b1', 'Bo')
  await transferChat(redis, another.chatId, 'b1', null, TRANSFER)
  t.same((await queuedIds(redis)).slice(0, 2), [another.chatId, chatId], 'the latest put back is first')

  // Anyone may claim the visitor again, Ana included.
  await claimVisitor(redis, chatId, userId, 'a1', 1)
  t.same(await seats(redis, 'a1'), [chatId], 'claimed again')
})

t.test('transferChat refusals leave the chat as it was', async (t) => {
  const { redis, take, chat } = await transferSetup(t)
  const { chatId } = chat
  await online(redis, 'c1', 'Cy')
  await online(redis, 'd1', 'Di')
  await setAgentStatus(redis, 'd1', 'away')
  await online(redis, 'e1', 'Ed', 'sub-1', 150)
  // Bo at capacity: one chat, one seat.
  await heldChat(redis, 'b1', 'Bo')
  await leaseRunsOut(redis, 'e1')
  await take()

  const snapshot = async () => ({
    chat: await redis.hgetall(keys.chat(chatId)),
    deadline: await redis.zscore(keys.deadlines, chatId),
    seats: { a1: await seats(redis, 'a1'), b1: await seats(redis, 'b1'), c1: await seats(redis, 'c1') },
    queue: await queuedIds(redis),
  })
  const before = await snapshot()
  const refusals: { from: string; to: string; maxChats: number; code: string; what: string }[] = [
    { from: 'c1', to: 'b1', maxChats: 5, code: 'NOT_ASSIGNED', what: 'not the holder' },
    { from: 'b1', to: 'c1', maxChats: 5, code: 'NOT_ASSIGNED', what: 'not the holder (though busy elsewhere)' },
    { from: 'a1', to: 'nobody', maxChats: 5, code: 'AGENT_UNAVAILABLE', what: 'to an unknown, never online agent' },
    { from: 'a1', to: 'e1', maxChats: 5, code: 'AGENT_UNAVAILABLE', what: 'to an agent whose lease ran out (not swept yet)' },
    { from: 'a1', to: 'd1', maxChats: 5, code: 'AGENT_UNAVAILABLE', what: 'to an away agent' },
    { from: 'a1', to: 'a1', maxChats: 5, code: 'AGENT_UNAVAILABLE', what: 'to oneself' },
    { from: 'a1', to: 'b1', maxChats: 1, code: 'AGENT_AT_CAPACITY', what: 'to an agent with no free seat' },
  ]
  for (const { from, to, maxChats, code, what } of refusals) {
    await rejectsWith(t, transferChat(redis, chatId, from, to, { ...LONG, maxChats }), code, what)
    t.same(await snapshot(), before, `${what}: the chat unchanged`)
    t.same(await take(), { chat: [], agents: [], queue: [] }, `${what}: nothing announced`)
  }
  await rejectsWith(t, transferChat(redis, chatId, 'c1', null, TRANSFER), 'NOT_ASSIGNED', 'not the holder, to the queue')
  t.same(await snapshot(), before, 'unchanged')

  // A waiting visitor is nobody's to transfer.
  const waiting = await waitingVisitor(redis)
  await take()
  await rejectsWith(t, transferChat(redis, waiting.chatId, 'a1', 'c1', TRANSFER), 'NOT_ASSIGNED', 'a waiting visitor')
  t.same(await queuedIds(redis), [waiting.chatId], 'still queued')

  // An ended chat.
  await endChat(redis, chatId, 'User', null)
  const ended = await snapshot()
  await take()
  await rejectsWith(t, transferChat(redis, chatId, 'a1', 'c1', TRANSFER), 'CHAT_ENDED', 'an ended chat')
  await rejectsWith(t, transferChat(redis, chatId, 'a1', null, TRANSFER), 'CHAT_ENDED', 'an ended chat, to the queue')
  t.same(await snapshot(), ended, 'the ended chat unchanged')
  t.same(await take(), { chat: [], agents: [], queue: [] }, 'nothing announced')
})

t.test('transferChat of a chat claimed but not joined yet', async (t) => {
  const { redis, take } = await setup(t)
  await online(redis, 'b1', 'Bo')
  const visitor = await waitingVisitor(redis)
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 1)
  await take()
  await transferChat(redis, visitor.chatId, 'a1', 'b1', TRANSFER)
  const now = await getChat(redis, visitor.chatId)
  t.match(now, { state: 'active', agentId: 'b1', supportUserName: 'Bo' }, 'Bo has it, joined')
  t.equal(now?.pastSupportIds, undefined, 'no supportId to remember')
  t.same([await seats(redis, 'a1'), await seats(redis, 'b1')], [[], [visitor.chatId]], 'the seat moved')
  const joined = await joinSupport(redis, visitor, 'Bo', LONG, 'b1', 1)
  t.equal(joined.rejoined, true, 'Bo joining gets the chat as it is')
  t.equal(joined.supportId, now?.supportId)
})

// ---------------------------------------------------------------------------
// Queue positions and the service status.

t.test('queuePositions: place, waiting, and the estimate from recorded claims', async (t) => {
  const { redis } = await setup(t)
  const [a, b, c] = [await waitingVisitor(redis, 'A'), await waitingVisitor(redis, 'B'), await waitingVisitor(redis, 'C')]
  const fresh = await createChat(redis, 'not queued', LONG)

  const first = await queuePositions(redis, [c.chatId, a.chatId, fresh.chatId, b.chatId])
  t.same(
    Object.fromEntries(first),
    {
      [a.chatId]: { chatId: a.chatId, position: 1, waiting: 3, estimatedWaitSeconds: null },
      [b.chatId]: { chatId: b.chatId, position: 2, waiting: 3, estimatedWaitSeconds: null },
      [c.chatId]: { chatId: c.chatId, position: 3, waiting: 3, estimatedWaitSeconds: null },
    },
    'no claim yet: positions, and nothing to estimate from; a chat not queued left out',
  )
  t.same((await queuePositions(redis, [])).size, 0, 'asked about nobody')

  // A claim that happened a minute ago (by the Redis clock), and one now.
  await redis.zadd(keys.claims, (await redisNow(redis)) - MIN, 'an-earlier-chat')
  await claimVisitor(redis, a.chatId, a.userId, 'a1', 0)
  const claimedAt = Number(await redis.zscore(keys.claims, a.chatId))
  const times = (await redis.zrange(keys.claims, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number)
  t.equal(times.length, 2, 'the claim was recorded')
  t.ok(claimedAt > times[0]!, 'at the time of the claim')

  const lo = await redisNow(redis)
  const after = await queuePositions(redis, [a.chatId, b.chatId, c.chatId])
  const hi = await redisNow(redis)
  t.notOk(after.has(a.chatId), 'a claimed chat is left out')
  t.match(Object.fromEntries(after), {
    [b.chatId]: { position: 1, waiting: 2 },
    [c.chatId]: { position: 2, waiting: 2 },
  }, 'those behind move up')
  for (const [chatId, p] of [[b.chatId, 1], [c.chatId, 2]] as const) {
    const got = after.get(chatId)!.estimatedWaitSeconds
    const [min, max] = [estimateWaitSeconds(p, claimGapMs(times, lo))!, estimateWaitSeconds(p, claimGapMs(times, hi))!]
    t.ok(got !== null && got >= min && got <= max, `position ${p}: ceil(p × (now − oldest) / 2) seconds`, { got, min, max })
  }
  t.ok(after.get(c.chatId)!.estimatedWaitSeconds! >= 60, 'two claims in a minute and more: position 2 waits a minute or more')
})

t.test('serviceStatus: agents online and away (anonymous ones counted), visitors waiting, the next one’s wait', async (t) => {
  const { redis } = await setup(t)
  t.same(await serviceStatus(redis), { agentsOnline: 0, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'nobody')

  await online(redis, 'a1', 'Ana')
  await online(redis, 'b1', 'Bo')
  await online(redis, 'c1', 'Cy')
  await setAgentStatus(redis, 'c1', 'away')
  await renewPresence(redis, { agentId: 'anon-1', name: 'Support', anonymous: true }, 'sub-1', LEASE)
  await online(redis, 'gone', 'Gus', 'sub-1', 150)
  await setAgentStatus(redis, 'gone', 'away')
  await leaseRunsOut(redis, 'gone')
  await waitingVisitor(redis, 'One')
  await waitingVisitor(redis, 'Two')
  t.same(
    await serviceStatus(redis),
    { agentsOnline: 3, agentsAway: 1, visitorsWaiting: 2, estimatedWaitSeconds: null },
    'an agent whose lease ran out is not counted; no claim, no estimate',
  )

  // 25 claims, one a second, the last one 10 s ago: only the last 20 count.
  const base = await redisNow(redis)
  for (let i = 0; i < 25; i++) await redis.zadd(keys.claims, base - 10_000 - i * 1000, `old-${i}`)
  const lo = await redisNow(redis)
  const status = await serviceStatus(redis)
  const hi = await redisNow(redis)
  // The next visitor is third: (now − (base − 29 s)) / 20 per place.
  const [min, max] = [3 * (lo - base + 29_000) / 20 / 1000, 3 * (hi - base + 29_000) / 20 / 1000].map(Math.ceil)
  t.ok(
    status.estimatedWaitSeconds !== null && status.estimatedWaitSeconds >= min! && status.estimatedWaitSeconds <= max!,
    'the next visitor (third) waits 3 × the gap of the last 20 claims',
    { got: status.estimatedWaitSeconds, min, max },
  )
  t.match(status, { agentsOnline: 3, agentsAway: 1, visitorsWaiting: 2 })
})
