import t, { type Test } from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import { keys } from '@switchboard/domain'
import { redisNow, startStack, type Received, type RunningApp, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * A waiting visitor who closed the tab leaves the queue QUEUE_LEAVE_GRACE_SECONDS
 * after their last socket (on any instance) closed, not CHAT_TTL_SECONDS
 * later (issue 15, item 16): their chat expires, agents get RemoveUser, and
 * everyone behind moves up. A reload within the grace keeps the place.
 */

const GRACE_SECONDS = 1
// Far longer than the grace: without it, a visitor who left would stay queued this long.
const CHAT_TTL_SECONDS = 120

interface Visitor {
  userId: string
  username: string
  chatId: string
  socket: TestSocket
}

const isType = (type: string) => (m: Received) => m.json?.type === type
const removed = (v: { userId: string }) => (m: Received) => m.json?.type === 'RemoveUser' && m.json.args.userId === v.userId

async function openVisitorSocket(stack: Stack, v: { userId: string; username: string; chatId: string }, on: RunningApp): Promise<TestSocket> {
  const socket = await stack.socket(`${on.ws}/chat/${v.chatId}`, 'pong:user', { v2: true })
  socket.send({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User' } })
  await socket.nextOfType('UserJoined')
  return socket
}

async function enterQueue(stack: Stack, name: string, on: RunningApp): Promise<Visitor> {
  const visitor = await stack.joinVisitor(name, on)
  return { ...visitor, socket: await openVisitorSocket(stack, visitor, on) }
}

/** The next QueuePosition's place. */
async function nextPlace(socket: TestSocket, timeoutMs?: number): Promise<number> {
  return (await socket.nextOfType('QueuePosition', timeoutMs)).json.args.position
}

/** An agent's /users socket that sent Load (on an empty queue): it hears of every visitor joining and leaving. */
async function queueWatcher(stack: Stack): Promise<TestSocket> {
  const agent = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
  agent.send({ type: 'Load' })
  // Marker: the Load was answered (nothing: the queue is empty) once an unknown frame is.
  agent.send({ type: 'Marker' })
  await agent.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
  return agent
}

function start(t: Test, chatServers = 1): Promise<Stack> {
  return startStack(t, {
    chatServers,
    env: { QUEUE_LEAVE_GRACE_SECONDS: String(GRACE_SECONDS), CHAT_TTL_SECONDS: String(CHAT_TTL_SECONDS), QUEUE_POSITION_INTERVAL_MS: '50' },
    sweepIntervalMs: 50,
  })
}

t.test('a visitor who closed the tab leaves the queue after the grace: RemoveUser to agents, the chat expired, everyone behind moves up', async (t) => {
  const stack = await start(t)
  const cs = stack.chatServers[0]!
  const agent = await queueWatcher(stack)
  const ana = await enterQueue(stack, 'Ana', cs)
  const bea = await enterQueue(stack, 'Bea', cs)
  const cai = await enterQueue(stack, 'Cai', cs)
  t.equal(await nextPlace(bea.socket), 2, 'Bea is second')
  t.equal(await nextPlace(cai.socket), 3, 'Cai is third')

  const closedAt = Date.now()
  await ana.socket.close()
  await agent.next(removed(ana), 10_000)
  const leftAfter = Date.now() - closedAt
  t.ok(leftAfter >= GRACE_SECONDS * 1000 - 100, `agents got RemoveUser after the grace, not at once (${leftAfter} ms)`)
  t.ok(leftAfter < CHAT_TTL_SECONDS * 1000, 'long before the chat TTL')
  t.equal(await nextPlace(bea.socket), 1, 'Bea moved up to first')
  t.equal(await nextPlace(cai.socket), 2, 'Cai moved up to second')

  const redis = cs.app.redis.commands
  t.equal(await redis.zscore(keys.queue, ana.chatId), null, 'Ana is out of the queue')
  t.equal(await redis.exists(keys.chat(ana.chatId)), 0, "Ana's chat expired: its keys are gone")
  // Coming back later is coming back to an expired chat.
  const late = await stack.socket(`${cs.ws}/chat/${ana.chatId}`, 'pong:user', { v2: true })
  t.equal((await late.nextOfType('ChatExpired')).json.args.chatId, ana.chatId, 'a socket opened after the grace gets ChatExpired')
  t.equal((await late.closed).code, 4410, 'and a 4410 close')
  t.notOk(agent.received.some(removed(bea)) || agent.received.some(removed(cai)), 'nobody else left')
})

t.test('a reload within the grace keeps the place, on the same or another instance; one tab of two closing is not leaving', async (t) => {
  const stack = await start(t, 2)
  const [cs0, cs1] = stack.chatServers as [RunningApp, RunningApp]
  const agent = await queueWatcher(stack)
  const ana = await enterQueue(stack, 'Ana', cs0)
  const bea = await enterQueue(stack, 'Bea', cs1)
  t.equal(await nextPlace(bea.socket), 2, 'Bea is second')
  const redis = cs0.app.redis.commands

  // A reload onto the other instance, then one on the same instance.
  for (const on of [cs1, cs1]) {
    await ana.socket.close()
    ana.socket = await openVisitorSocket(stack, ana, on)
    t.equal(await nextPlace(ana.socket), 1, 'Ana, reloaded, is still first')
  }
  // A second tab on the other instance; the first one closes.
  const secondTab = await openVisitorSocket(stack, ana, cs0)
  t.equal(await nextPlace(secondTab), 1, "Ana's second tab: first")
  await ana.socket.close()

  // The behaviour is time-based: well past the grace, she is still queued.
  await delay(GRACE_SECONDS * 1000 * 2.5)
  t.notOk(agent.received.some(removed(ana)), 'no RemoveUser for Ana')
  t.equal(await redis.zrank(keys.queue, ana.chatId), 0, 'Ana is still first in the queue')
  const deadline = Number(await redis.zscore(keys.deadlines, ana.chatId))
  t.ok(deadline - (await redisNow(redis)) > GRACE_SECONDS * 1000, 'her chat lives on by the chat TTL, not the grace')
  t.notOk(bea.socket.received.filter(isType('QueuePosition')).some((m) => m.json.args.position !== 2), 'Bea stayed second throughout')

  // Her last tab closes: now she leaves.
  await secondTab.close()
  await agent.next(removed(ana), 10_000)
  t.equal(await nextPlace(bea.socket), 1, 'Bea moved up')
})
