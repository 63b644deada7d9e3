import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { ProtocolError } from '@switchboard/protocol'
import {
  markReceipt,
  appendMessage,
  claimVisitor,
  connectRedis,
  createChat,
  enqueueVisitor,
  getChat,
  joinSupport,
  keys,
  listQueue,
  newId,
  readHistory,
  type RedisConnections,
} from '@switchboard/domain'

/** The seed's fields of each queued visitor (since and order are checked where they matter). */
const visitorsOf = (list: { username: string; userId: string; chatId: string }[]) =>
  list.map(({ username, userId, chatId }) => ({ username, userId, chatId }))
import { connectedRedis, startRedis } from '@switchboard/testing'

const HEX32 = /^[0-9a-f]{32}$/
const OPTS = { chatTtlMs: 60_000 }
const quiet = { warn() {}, info() {} }

async function connect(t: Test): Promise<{ conn: RedisConnections; redis: Redis }> {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const conn = await connectedRedis(t, server.url)
  return { conn, redis: conn.commands }
}

/** Rejects with a ProtocolError of this code, or fails the test. */
async function rejectsWith(t: Test, promise: Promise<unknown>, code: string, what: string) {
  try {
    await promise
    t.fail(`${what}: resolved, expected ${code}`)
  } catch (err) {
    t.ok(err instanceof ProtocolError, `${what}: a ProtocolError`)
    t.equal((err as ProtocolError).code, code, what)
  }
}

t.test('a chat moves new → waiting → claimed → active', async (t) => {
  const { redis } = await connect(t)
  const visitor = await createChat(redis, 'Nika', OPTS)
  t.same(Object.keys(visitor).sort(), ['chatId', 'userId', 'username'])
  t.match(visitor, { username: 'Nika', userId: HEX32, chatId: HEX32 })
  t.not(visitor.userId, visitor.chatId)

  const created = await getChat(redis, visitor.chatId)
  t.match(created, { ...visitor, state: 'new' })
  t.type(created?.createdAt, 'number')
  t.equal(created?.supportId, undefined)
  t.same(visitorsOf(await listQueue(redis)), [], 'a new chat is not in the queue')

  t.equal(await enqueueVisitor(redis, visitor, OPTS), 'queued')
  t.equal((await getChat(redis, visitor.chatId))?.state, 'waiting')
  t.same(visitorsOf(await listQueue(redis)), [visitor])
  t.equal(await enqueueVisitor(redis, visitor, OPTS), 'waiting', 'joining again reports the state and queues nobody twice')
  t.same(visitorsOf(await listQueue(redis)), [visitor])

  await claimVisitor(redis, visitor.chatId, visitor.userId)
  t.equal((await getChat(redis, visitor.chatId))?.state, 'claimed')
  t.same(visitorsOf(await listQueue(redis)), [], 'claimed visitors leave the queue')
  t.equal(await enqueueVisitor(redis, visitor, OPTS), 'claimed', 'and do not come back by joining again')
  t.same(visitorsOf(await listQueue(redis)), [])

  const joined = await joinSupport(redis, visitor, 'Vika', OPTS)
  t.match(joined, { supportId: HEX32, supportUserName: 'Vika', username: 'Nika', userId: visitor.userId, chatId: visitor.chatId })
  const active = await getChat(redis, visitor.chatId)
  t.match(active, { state: 'active', supportId: joined.supportId, supportUserName: 'Vika' })
  t.equal(await enqueueVisitor(redis, visitor, OPTS), 'active')
  await rejectsWith(t, joinSupport(redis, visitor, 'Kiku', OPTS), 'ALREADY_CLAIMED', 'a second agent joining')
  t.equal((await getChat(redis, visitor.chatId))?.supportId, joined.supportId, 'the first agent keeps the chat')
})

t.test('getChat of an unknown chat is null', async (t) => {
  const { redis } = await connect(t)
  t.equal(await getChat(redis, newId()), null)
})

t.test('the queue is first come first served', async (t) => {
  const { redis } = await connect(t)
  const a = await createChat(redis, 'A', OPTS)
  const b = await createChat(redis, 'B', OPTS)
  const c = await createChat(redis, 'C', OPTS)
  // Queued in a different order than created.
  for (const v of [b, c, a]) t.equal(await enqueueVisitor(redis, v, OPTS), 'queued')
  const queue = await listQueue(redis)
  t.same(visitorsOf(queue), [b, c, a])
  t.same(queue.map((v) => v.order), [1, 2, 3], 'each carries its place')
  const since = queue.map((v) => Date.parse(v.since))
  t.ok(since.every((s, i) => Number.isFinite(s) && (i === 0 || s >= since[i - 1]!)), 'and when it was queued, ISO-8601, in order')
  // Joining again does not move anyone.
  t.equal(await enqueueVisitor(redis, b, OPTS), 'waiting')
  t.same(await listQueue(redis), queue, 'a visitor who joins again keeps their place')
})

t.test('enqueueVisitor with someone else\'s userId → IDENTITY_MISMATCH', async (t) => {
  const { redis } = await connect(t)
  const visitor = await createChat(redis, 'Nika', OPTS)
  await rejectsWith(t, enqueueVisitor(redis, { ...visitor, userId: newId() }, OPTS), 'IDENTITY_MISMATCH', 'wrong userId')
  t.same(visitorsOf(await listQueue(redis)), [])
  await rejectsWith(t, enqueueVisitor(redis, { ...visitor, chatId: newId() }, OPTS), 'CHAT_EXPIRED', 'unknown chat')
})

t.test('claimVisitor refusals', async (t) => {
  const { redis } = await connect(t)
  const visitor = await createChat(redis, 'Nika', OPTS)
  await rejectsWith(t, claimVisitor(redis, visitor.chatId, visitor.userId), 'NOT_IN_QUEUE', 'before Join')
  await enqueueVisitor(redis, visitor, OPTS)
  await rejectsWith(t, claimVisitor(redis, visitor.chatId, newId()), 'VISITOR_NOT_FOUND', 'wrong userId')
  await rejectsWith(t, claimVisitor(redis, newId(), visitor.userId), 'VISITOR_NOT_FOUND', 'unknown chat')
  t.same(visitorsOf(await listQueue(redis)), [visitor], 'refused claims leave the visitor queued')
})

t.test('50 concurrent claims from separate connections: exactly one wins', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const setup = connectRedis(server.url, quiet)
  t.teardown(() => setup.close())
  await new Promise((resolve) => setup.commands.once('ready', resolve))
  const visitor = await createChat(setup.commands, 'Nika', OPTS)
  await enqueueVisitor(setup.commands, visitor, OPTS)

  const connections = Array.from({ length: 10 }, () => connectRedis(server.url, quiet))
  t.teardown(() => Promise.all(connections.map((c) => c.close())))
  await Promise.all(
    connections.map((c) => (c.commands.status === 'ready' ? null : new Promise((r) => c.commands.once('ready', r)))),
  )

  const results = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) => claimVisitor(connections[i % 10]!.commands, visitor.chatId, visitor.userId)),
  )
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(won.length, 1, 'exactly one claim resolves')
  t.equal(lost.length, 49)
  t.ok(
    lost.every((r) => r.reason instanceof ProtocolError && r.reason.code === 'ALREADY_CLAIMED'),
    'the other 49 reject with ALREADY_CLAIMED',
  )
  t.equal((await getChat(setup.commands, visitor.chatId))?.state, 'claimed')
})

t.test('appendMessage and readHistory', async (t) => {
  const { redis } = await connect(t)
  const visitor = await createChat(redis, 'Nika', OPTS)
  await enqueueVisitor(redis, visitor, OPTS)
  const msg = (content: string, from: 'User' | 'Support', supportId: string) => ({
    chatId: visitor.chatId,
    userId: visitor.userId,
    supportId,
    content,
    from,
  })

  await rejectsWith(t, appendMessage(redis, msg('hello?', 'User', newId()), OPTS), 'NO_AGENT_YET', 'before an agent joined')
  t.same(await readHistory(redis, visitor.chatId), [], 'nothing stored')

  const { supportId } = await joinSupport(redis, visitor, 'Vika', OPTS)
  await rejectsWith(t, appendMessage(redis, msg('hi', 'User', newId()), OPTS), 'IDENTITY_MISMATCH', 'wrong supportId')
  await rejectsWith(
    t,
    appendMessage(redis, { ...msg('hi', 'User', supportId), chatId: newId() }, OPTS),
    'CHAT_EXPIRED',
    'unknown chat',
  )
  t.same(await readHistory(redis, visitor.chatId), [], 'refused messages are not stored')

  const sent = []
  for (const [i, from] of (['User', 'Support', 'User', 'User', 'Support'] as const).entries()) {
    sent.push(await appendMessage(redis, msg(`message ${i} "quoted" \u00e9`, from, supportId), OPTS))
  }
  for (const [i, { message, duplicate }] of sent.entries()) {
    t.same(Object.keys(message), ['userId', 'supportId', 'content', 'timestamp', 'from', 'seq', 'messageId'], 'seed-004 field order, then seq and messageId')
    t.match(message.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    t.equal(message.seq, i + 1, 'seq counts 1, 2, 3 … with no gaps')
    t.notOk(duplicate)
  }
  const history = await readHistory(redis, visitor.chatId)
  t.same(history, sent.map((m) => m.stored), 'history is the stored text, in storage order')
  t.same(history.map((h) => JSON.parse(h).content), sent.map((m) => m.message.content))
})

t.test('every key of a chat carries a TTL, at every step', async (t) => {
  const { redis } = await connect(t)
  const visitor = await createChat(redis, 'Nika', OPTS)

  async function checkTtls(step: string, expected: number) {
    const found = await redis.keys(`*${visitor.chatId}*`)
    t.equal(found.length, expected, `${step}: ${expected} key(s) of the chat`)
    for (const key of found) {
      const ttl = await redis.pttl(key)
      t.ok(ttl > 0, `${step}: ${key} has a TTL (${ttl} ms)`)
    }
  }

  await checkTtls('created', 1)
  await enqueueVisitor(redis, visitor, OPTS)
  await checkTtls('waiting', 1)
  await claimVisitor(redis, visitor.chatId, visitor.userId)
  await checkTtls('claimed', 1)
  const { supportId } = await joinSupport(redis, visitor, 'Vika', OPTS)
  await checkTtls('active', 1)
  await appendMessage(redis, { chatId: visitor.chatId, userId: visitor.userId, supportId, content: 'hi', from: 'User' }, OPTS)
  await checkTtls('with messages', 3)
  t.ok(await redis.exists(keys.messages(visitor.chatId)), 'the history is one of them')
  t.ok(await redis.exists(keys.receipts(visitor.chatId)), 'and the read state')
  await appendMessage(redis, { chatId: visitor.chatId, userId: visitor.userId, supportId, content: 'hi', from: 'User', clientMessageId: 'c1' }, OPTS)
  await checkTtls('with a clientMessageId', 4)
  await markReceipt(redis, visitor.chatId, 'support', 'read', 2)
  await checkTtls('after a receipt', 4)
  const ttl = await redis.pttl(keys.chat(visitor.chatId))
  t.ok(ttl > OPTS.chatTtlMs && ttl <= OPTS.chatTtlMs + 60_000, `the keys outlive the deadline by the default grace (${ttl} ms)`)
})
