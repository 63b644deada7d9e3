import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { redisNow, startStack, type Stack, type TestSocket } from '@switchboard/testing'
import { keys } from '@switchboard/domain'

const TTL_MS = 1000
const ENV = { env: { CHAT_TTL_SECONDS: String(TTL_MS / 1000) }, sweepIntervalMs: 50 }


function agent(stack: Stack): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
}

const bare = (v: { username: string; userId: string; chatId: string }) =>
  `{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}`
const removeUser = (userId: string) => `{"type":"RemoveUser","args":{"userId":"${userId}"}}`

/** Sends Load, then a frame answered with an Error; returns what Load sent (everything before that answer). */
async function load(socket: TestSocket): Promise<string[]> {
  const before = socket.received.length
  socket.send({ type: 'Load' })
  socket.send({ type: 'Marker' })
  const marker = await socket.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
  const end = socket.received.indexOf(marker)
  const listed = socket.received.slice(before, end)
  return listed.filter((m) => m.json?.type === undefined).map((m) => m.text)
}

function redisClient(t: Test, url: string): Redis {
  const redis = new Redis(url)
  t.teardown(() => redis.quit())
  return redis
}

/**
 * A visitor joins the queue and closes their socket; resolves once the agent
 * got their RemoveUser. Each round proves expiry sweeps ran and that a TTL
 * passed since the visitor's last keep-alive.
 */
async function leaverRound(t: Test, stack: Stack, watcher: TestSocket, name: string): Promise<void> {
  const leaver = await stack.waitingVisitor(name)
  await leaver.socket.close()
  const removed = await watcher.next((m) => m.json?.type === 'RemoveUser' && m.json.args.userId === leaver.userId, 10_000)
  t.equal(removed.text, removeUser(leaver.userId), `${name} left the queue`)
}

// Each test has its own Redis and apps, and most of their time is waiting for TTLs: run them side by side.
t.jobs = 3

t.test('a waiting visitor who leaves and does not come back within CHAT_TTL_SECONDS leaves the queue', async (t) => {
  const stack = await startStack(t, ENV)
  const redis = redisClient(t, stack.redis.url)
  const a = await agent(stack)
  t.same(await load(a), [])

  const stays = await stack.waitingVisitor('Stays')
  const leaves = await stack.waitingVisitor('Leaves')
  t.equal((await a.nextOfType('UserJoined')).json.args.userId, stays.userId)
  t.equal((await a.nextOfType('UserJoined')).json.args.userId, leaves.userId)

  await leaves.socket.close()
  const closedAt = await redisNow(redis)
  const removed = await a.nextOfType('RemoveUser', 10_000)
  const removedAt = await redisNow(redis)
  t.equal(removed.text, removeUser(leaves.userId), 'loaded agents get RemoveUser, exact bytes')
  // The keep-alive runs every TTL/4 while the socket is open, so the deadline is at least 3/4 TTL after the close.
  t.ok(removedAt - closedAt >= (TTL_MS * 3) / 4 - 50, `removed only after the TTL ran out (${removedAt - closedAt} ms)`)
  t.notOk(a.received.some((m) => m.text === removeUser(stays.userId)), 'the visitor who stayed was not removed')

  const b = await agent(stack)
  t.same(await load(b), [bare(stays)], 'a later Load does not list the visitor who left')
  t.same(await load(a), [bare(stays)], 'nor does Load again on the first agent')
})

t.test('a waiting visitor whose socket stays open stays queued past several TTLs', async (t) => {
  const stack = await startStack(t, ENV)
  const redis = redisClient(t, stack.redis.url)
  const a = await agent(stack)
  t.same(await load(a), [])

  const stays = await stack.waitingVisitor('Stays')
  const queuedAt = Number(await redis.hget(keys.chat(stays.chatId), 'queuedAt'))
  t.ok(queuedAt > 0, 'the chat records when it was queued')

  // Visitors who leave, one after the other, until three TTLs have passed
  // since Stays joined (bounded: each round takes about one TTL).
  let rounds = 0
  while ((await redisNow(redis)) < queuedAt + 3 * TTL_MS) {
    if (++rounds > 8) throw new Error('three TTLs did not pass in 8 rounds')
    await leaverRound(t, stack, a, `Leaves${rounds}`)
  }
  t.ok(rounds >= 2, `${rounds} visitors came and expired meanwhile`)

  t.notOk(a.received.some((m) => m.text === removeUser(stays.userId)), 'no RemoveUser for the visitor who stayed')
  t.notOk(stays.socket.received.some((m) => m.json?.type === 'ChatExpired'), 'their chat did not expire')
  t.equal(stays.socket.ws.readyState, stays.socket.ws.OPEN)
  const b = await agent(stack)
  t.same(await load(b), [bare(stays)], 'Load still lists them')
})

t.test('a visitor who closes their socket and comes back within the TTL keeps their place', async (t) => {
  const stack = await startStack(t, ENV)
  const redis = redisClient(t, stack.redis.url)
  const a = await agent(stack)
  t.same(await load(a), [])

  const first = await stack.waitingVisitor('First')
  const second = await stack.waitingVisitor('Second')
  await a.nextOfType('UserJoined')
  await a.nextOfType('UserJoined')

  // A browser refresh: the old socket closes, a new one joins right away.
  await first.socket.close()
  const closedAt = await redisNow(redis)
  const back = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${first.chatId}`, 'pong:user')
  back.send({ type: 'Join', args: { userId: first.userId, username: 'First', from: 'User' } })
  t.equal((await back.nextOfType('UserJoined')).json.args.chatId, first.chatId)

  // Visitors who leave expire one after the other until well over a TTL has
  // passed since First closed their old socket (bounded: each round takes about one TTL).
  let rounds = 0
  while ((await redisNow(redis)) < closedAt + TTL_MS * 1.5) {
    if (++rounds > 6) throw new Error('1.5 TTLs did not pass in 6 rounds')
    await leaverRound(t, stack, a, `Leaves${rounds}`)
  }
  t.notOk(a.received.some((m) => m.text === removeUser(first.userId)), 'no RemoveUser for the visitor who came back')
  const b = await agent(stack)
  t.same(await load(b), [bare(first), bare(second)], 'still first in line')
})
