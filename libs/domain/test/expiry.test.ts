import t, { type Test } from 'tap'
import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { ProtocolError } from '@switchboard/protocol'
import {
  appendMessage,
  channels,
  claimVisitor,
  createChat,
  enqueueVisitor,
  getChat,
  joinSupport,
  keys,
  listQueue,
  markReceipt,
  readHistory,
  sweepExpired,
  touchWaiting,
  transferChat,
  type RedisConnections,
} from '@switchboard/domain'

/** The seed's fields of each queued visitor (since and order are checked where they matter). */
const visitorsOf = (list: { username: string; userId: string; chatId: string }[]) =>
  list.map(({ username, userId, chatId }) => ({ username, userId, chatId }))
import { startRedis, type TestRedis, connectedRedis, redisNow, redisClockPast } from '@switchboard/testing'

const SHORT = { chatTtlMs: 200 }
const LONG = { chatTtlMs: 60_000 }

async function server(t: Test): Promise<TestRedis> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  return redis
}

async function deadlineOf(redis: Redis, chatId: string): Promise<number | null> {
  const score = await redis.zscore(keys.deadlines, chatId)
  return score === null ? null : Number(score)
}

/**
 * Everything published on the chat channels and the queue channel, collected
 * on a subscriber connection. `drain()` publishes a marker and resolves once it
 * came back, so everything published before has arrived.
 */
async function listen(conn: RedisConnections) {
  const chat: { channel: string; message: string }[] = []
  const queue: string[] = []
  let marker: (() => void) | undefined
  conn.subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    if (message === 'marker') marker?.()
    else chat.push({ channel, message })
  })
  conn.subscriber.on('message', (_channel: string, message: string) => queue.push(message))
  await conn.subscriber.psubscribe(channels.chat('*'))
  await conn.subscriber.subscribe(channels.queue)
  return {
    chat,
    queue,
    async drain() {
      const arrived = new Promise<void>((resolve) => (marker = resolve))
      await conn.commands.publish(channels.chat('marker'), 'marker')
      await arrived
    },
  }
}

t.test('sweepExpired removes an expired chat: keys, queue entry, deadline entry; and says so once', async (t) => {
  const { url } = await server(t)
  const conn = await connectedRedis(t, url)
  const redis = conn.commands
  const events = await listen(await connectedRedis(t, url))

  const fresh = await createChat(redis, 'New', SHORT)
  const waiting = await createChat(redis, 'Waiting', SHORT)
  await enqueueVisitor(redis, waiting, SHORT)
  const active = await createChat(redis, 'Active', SHORT)
  await enqueueVisitor(redis, active, SHORT)
  const { supportId } = await joinSupport(redis, active, 'Vika', SHORT)
  await appendMessage(redis, { chatId: active.chatId, userId: active.userId, supportId, content: 'hi', from: 'User' }, SHORT)
  const lives = await createChat(redis, 'Lives', LONG)
  await enqueueVisitor(redis, lives, LONG)
  const short = [fresh, waiting, active]
  // Forget what the set-up itself announced.
  await events.drain()
  events.chat.length = 0
  events.queue.length = 0

  const latest = Math.max(...(await Promise.all(short.map((c) => deadlineOf(redis, c.chatId)))).map(Number))
  await redisClockPast(redis, latest)

  // Past the deadline but not swept: already gone for readers, keys still there (grace).
  for (const c of short) t.equal(await getChat(redis, c.chatId), null, `${c.username}: getChat is null past the deadline`)
  t.same(visitorsOf(await listQueue(redis)), [lives], 'listQueue leaves out expired chats')
  t.equal(await redis.exists(keys.chat(waiting.chatId)), 1, 'keys outlive the deadline until swept')

  t.equal(await sweepExpired(redis), 3, 'returns how many chats it expired')

  for (const c of short) {
    t.equal(await redis.exists(keys.chat(c.chatId), keys.messages(c.chatId)), 0, `${c.username}: keys deleted`)
    t.equal(await deadlineOf(redis, c.chatId), null, `${c.username}: deadline entry removed`)
    t.equal(await redis.zscore(keys.queue, c.chatId), null, `${c.username}: not in the queue`)
  }
  t.same(visitorsOf(await listQueue(redis)), [lives], 'the chat with a later deadline is untouched')
  t.ok(await getChat(redis, lives.chatId))
  t.equal(await redis.zcard(keys.queue), 1)
  t.equal(await redis.zcard(keys.deadlines), 1)

  t.equal(await sweepExpired(redis), 0, 'a second sweep finds nothing')

  await events.drain()
  t.same(
    events.chat.sort((a, b) => a.channel.localeCompare(b.channel)),
    short
      .map((c) => ({ channel: channels.chat(c.chatId), message: `all|{"type":"ChatExpired","args":{"chatId":"${c.chatId}"}}` }))
      .sort((a, b) => a.channel.localeCompare(b.channel)),
    'each chat is told ChatExpired once, on its own channel',
  )
  t.same(
    events.queue,
    [`{"kind":"removed","chatId":"${waiting.chatId}","userId":"${waiting.userId}"}`],
    'the only queue event: agents are told to remove the visitor who was still queued',
  )
})

t.test('sweeps from several connections at once expire each chat exactly once', async (t) => {
  const { url } = await server(t)
  const setup = (await connectedRedis(t, url)).commands
  const events = await listen(await connectedRedis(t, url))
  const sweepers = await Promise.all([connectedRedis(t, url), connectedRedis(t, url), connectedRedis(t, url)])

  const chats = []
  for (let i = 0; i < 40; i++) {
    const chat = await createChat(setup, `V${i}`, SHORT)
    if (i % 2 === 0) await enqueueVisitor(setup, chat, SHORT)
    chats.push(chat)
  }
  const latest = Math.max(...(await Promise.all(chats.map((c) => deadlineOf(setup, c.chatId)))).map(Number))
  await redisClockPast(setup, latest)

  const counts = await Promise.all(sweepers.map((s) => sweepExpired(s.commands)))
  t.equal(counts.reduce((a, b) => a + b, 0), chats.length, `the sweeps expired ${counts.join(' + ')} = ${chats.length} chats`)
  t.equal(await setup.zcard(keys.deadlines), 0)
  t.equal(await setup.zcard(keys.queue), 0)

  await events.drain()
  const expiredIds = events.chat.map((e) => JSON.parse(e.message.slice('all|'.length)).args.chatId).sort()
  t.same(expiredIds, chats.map((c) => c.chatId).sort(), 'one ChatExpired per chat, none twice')
  const removed = events.queue.filter((m) => m.includes('"removed"')).map((m) => JSON.parse(m).chatId).sort()
  t.same(removed, chats.filter((_, i) => i % 2 === 0).map((c) => c.chatId).sort(), 'one RemoveUser event per queued visitor')
})

t.test('touchWaiting keeps a chat nobody joined alive, but not one an agent joined', async (t) => {
  const { url } = await server(t)
  const redis = (await connectedRedis(t, url)).commands

  const waiting = await createChat(redis, 'Waiting', SHORT)
  await enqueueVisitor(redis, waiting, SHORT)
  const claimed = await createChat(redis, 'Claimed', SHORT)
  await enqueueVisitor(redis, claimed, SHORT)
  await claimVisitor(redis, claimed.chatId, claimed.userId)
  const active = await createChat(redis, 'Active', SHORT)
  await enqueueVisitor(redis, active, SHORT)
  await joinSupport(redis, active, 'Vika', SHORT)

  const ids = [waiting.chatId, claimed.chatId, active.chatId]
  const before = await Promise.all(ids.map((id) => deadlineOf(redis, id)))
  // Let the Redis clock move, so a touch gives a later deadline.
  await redisClockPast(redis, Math.max(...before.map(Number)) - SHORT.chatTtlMs + 20)

  await touchWaiting(redis, ids, SHORT)
  const after = await Promise.all(ids.map((id) => deadlineOf(redis, id)))
  t.ok(after[0]! > before[0]!, 'the waiting chat got a later deadline')
  t.ok(after[1]! > before[1]!, 'so did the claimed one (no agent joined yet)')
  t.equal(after[2], before[2], 'the chat an agent joined keeps its deadline')

  // The keep-alive, as ChatServer runs it: touch until the active chat's deadline passed.
  for (let i = 0; (await redisNow(redis)) <= after[2]!; i++) {
    if (i > 200) throw new Error('the deadline did not pass')
    await touchWaiting(redis, ids, SHORT)
    await delay(5)
  }
  await touchWaiting(redis, ids, SHORT)
  t.equal(await sweepExpired(redis), 1, 'only the active chat expired')
  t.equal(await getChat(redis, active.chatId), null)
  t.equal((await getChat(redis, waiting.chatId))?.state, 'waiting', 'the touched waiting chat lives on')
  t.same(visitorsOf(await listQueue(redis)), [waiting], 'and stays queued')
  t.ok(await redis.pttl(keys.chat(waiting.chatId)) > 0)

  // Touching an expired chat does not bring it back.
  await touchWaiting(redis, [active.chatId], SHORT)
  t.equal(await deadlineOf(redis, active.chatId), null, 'no deadline for a swept chat')
  t.equal(await redis.exists(keys.chat(active.chatId)), 0, 'no key recreated')

  // Nor one past its deadline that no sweep has reached yet.
  const late = await createChat(redis, 'Late', SHORT)
  const lateDeadline = (await deadlineOf(redis, late.chatId))!
  await redisClockPast(redis, lateDeadline)
  await touchWaiting(redis, [late.chatId], SHORT)
  t.equal(await deadlineOf(redis, late.chatId), lateDeadline, 'a chat past its deadline is not extended')
  t.equal(await getChat(redis, late.chatId), null)
})

t.test('after expiry, messages and joins are refused with CHAT_EXPIRED', async (t) => {
  const { url } = await server(t)
  const redis = (await connectedRedis(t, url)).commands
  const chat = await createChat(redis, 'Nika', SHORT)
  await enqueueVisitor(redis, chat, SHORT)
  const { supportId } = await joinSupport(redis, chat, 'Vika', SHORT)
  const message = { chatId: chat.chatId, userId: chat.userId, supportId, content: 'hi', from: 'User' as const }
  await appendMessage(redis, message, SHORT)

  // A message pushes the deadline forward.
  const d1 = (await deadlineOf(redis, chat.chatId))!
  await redisClockPast(redis, d1 - SHORT.chatTtlMs + 20)
  await appendMessage(redis, message, SHORT)
  const d2 = (await deadlineOf(redis, chat.chatId))!
  t.ok(d2 > d1, 'a message extends the chat')

  await redisClockPast(redis, d2)
  const expect = async (promise: Promise<unknown>, code: string, what: string) => {
    const err = await promise.then(
      () => null,
      (e: unknown) => e,
    )
    t.ok(err instanceof ProtocolError, `${what}: rejects with a ProtocolError`)
    t.equal((err as ProtocolError | null)?.code, code, what)
  }
  await expect(appendMessage(redis, message, SHORT), 'CHAT_EXPIRED', 'a message past the deadline, before any sweep')
  t.equal((await readHistory(redis, chat.chatId)).length, 2, 'it was not stored')
  t.equal(await deadlineOf(redis, chat.chatId), d2, 'nor did it revive the chat')

  t.equal(await sweepExpired(redis), 1)
  await expect(appendMessage(redis, message, SHORT), 'CHAT_EXPIRED', 'a message after the sweep')
  await expect(joinSupport(redis, chat, 'Kiku', SHORT), 'CHAT_EXPIRED', 'an agent joining after expiry')
  await expect(enqueueVisitor(redis, chat, SHORT), 'CHAT_EXPIRED', 'the visitor joining again after expiry')
  await expect(claimVisitor(redis, chat.chatId, chat.userId), 'VISITOR_NOT_FOUND', 'a claim after expiry')
  t.same(await readHistory(redis, chat.chatId), [], 'the history is gone')
  t.equal(await redis.exists(keys.chat(chat.chatId)), 0, 'no key was recreated')
})

t.test('every key of a live chat outlives its deadline, whatever moved the deadline (a chat put back in the queue too)', async (t) => {
  const { url } = await server(t)
  const redis = (await connectedRedis(t, url)).commands
  // A grace much shorter than the time between the steps: a key renewed one step late is caught.
  const opts = { chatTtlMs: 1000, keyGraceMs: 100 }
  const chat = await createChat(redis, 'Nika', opts)
  const chatKeys = { chat: keys.chat(chat.chatId), messages: keys.messages(chat.chatId), clientIds: keys.clientIds(chat.chatId), receipts: keys.receipts(chat.chatId) }

  /** Each key there is, with how much longer it lives than the deadline (negative: it dies first), in one atomic read. */
  async function outlives(): Promise<Record<string, number>> {
    const multi = redis.multi()
    for (const key of Object.values(chatKeys)) multi.pttl(key)
    const results = (await multi.zscore(keys.deadlines, chat.chatId).time().exec())!.map(([, v]) => v)
    const now = Number((results.at(-1) as string[])[0]) * 1000 + Math.floor(Number((results.at(-1) as string[])[1]) / 1000)
    const left = Number(results.at(-2)) - now
    const margins: Record<string, number> = {}
    Object.keys(chatKeys).forEach((name, i) => {
      const pttl = results[i] as number
      if (pttl !== -2) margins[name] = pttl === -1 ? Infinity : pttl - left
    })
    return margins
  }
  async function check(what: string, present: number) {
    const margins = await outlives()
    t.equal(Object.keys(margins).length, present, `${what}: ${present} keys`)
    t.same(Object.entries(margins).filter(([, m]) => m < 0 || m === Infinity), [], `${what}: every key outlives the deadline (${JSON.stringify(margins)})`)
  }
  const later = async () => redisClockPast(redis, (await redisNow(redis)) + 400)

  await enqueueVisitor(redis, chat, opts)
  const { supportId } = await joinSupport(redis, chat, 'Vika', opts, 'a1')
  await appendMessage(redis, { chatId: chat.chatId, userId: chat.userId, supportId, content: 'one', from: 'User', clientMessageId: 'c-1' }, opts)
  await markReceipt(redis, chat.chatId, 'support', 'read', 1)
  await check('a message with a clientMessageId, and a receipt', 4)

  await later()
  await transferChat(redis, chat.chatId, 'a1', null, { ...opts, maxChats: 0 })
  await check('put back in the queue', 4)

  await later()
  await touchWaiting(redis, [chat.chatId], opts)
  await check('kept alive while the visitor waits', 4)

  await later()
  const again = await joinSupport(redis, chat, 'Dora', opts, 'b1')
  await check('the next agent joins', 4)

  await later()
  await appendMessage(redis, { chatId: chat.chatId, userId: chat.userId, supportId: again.supportId, content: 'two', from: 'Support' }, opts)
  await check('a message without a clientMessageId', 4)
  t.same(
    (await readHistory(redis, chat.chatId)).map((m) => [JSON.parse(m).seq, JSON.parse(m).content]),
    [[1, 'one'], [2, 'two']],
    'the history is whole, the seqs continue',
  )
})
