import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { ProtocolError, encode, isStoredMessage, storedToV1, type Party } from '@switchboard/protocol'
import {
  appendMessage,
  channels,
  claimVisitor,
  createChat,
  endChat,
  enqueueVisitor,
  getChat,
  joinSupport,
  keys,
  lastSeq,
  listQueue,
  markReceipt,
  messageEnvelope,
  openEnvelope,
  readHistory,
  readMessages,
  readState,
  sweepExpired,
  touchWaiting,
  warnExpiring,
  type RedisConnections,
} from '@switchboard/domain'

/** The seed's fields of each queued visitor (since and order are checked where they matter). */
const visitorsOf = (list: { username: string; userId: string; chatId: string }[]) =>
  list.map(({ username, userId, chatId }) => ({ username, userId, chatId }))
import { startRedis, connectedRedis, redisNow, redisClockPast } from '@switchboard/testing'

/*
 * Protocol v2 in the store: seq and messageId on every message, clientMessageId
 * deduplication, the stored format and its seed-004 cut, receipts and unread
 * counts, ending a chat, the expiry warning. Over a real redis-server.
 */

const HEX32 = /^[0-9a-f]{32}$/
const LONG = { chatTtlMs: 60_000 }
const SHORT = { chatTtlMs: 150 }

/**
 * A publication as `<audience>|<frame>`: a script's data publication (a
 * receipt, an unread count, an expiry warning) as the frame openEnvelope
 * makes of it for the sockets; anything else as published.
 */
function asFrame(message: string): string {
  if (!/^(receipt|unread|expiring):/.test(message)) return message
  const opened = openEnvelope(message)
  return opened === null ? message : `${opened.to}${opened.v2Only ? ':v2' : ''}|${opened.frame}`
}

/**
 * A private redis-server, a command connection, and everything published on
 * the chat channels and the queue channel. `take()` publishes a marker, waits
 * for it (so everything published before has arrived), and returns and
 * forgets what came: chat frames as `channel → message`, queue events as text.
 */
async function setup(t: Test) {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const conn = await connectedRedis(t, server.url)
  const listener = await connectedRedis(t, server.url)
  let chat: string[] = []
  let queue: string[] = []
  let marker: (() => void) | undefined
  listener.subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    if (message === 'marker') marker?.()
    else chat.push(`${channel.slice(channels.chat('').length)} ${asFrame(message)}`)
  })
  listener.subscriber.on('message', (_channel: string, message: string) => queue.push(message))
  await listener.subscriber.psubscribe(channels.chat('*'))
  await listener.subscriber.subscribe(channels.queue)
  return {
    redis: conn.commands,
    async take(): Promise<{ chat: string[]; queue: string[] }> {
      const arrived = new Promise<void>((resolve) => (marker = resolve))
      await conn.commands.publish(channels.chat('marker'), 'marker')
      await arrived
      const taken = { chat, queue }
      chat = []
      queue = []
      return taken
    },
  }
}

/** A chat whose agent has joined, and a way to add messages to it. */
async function activeChat(redis: Redis, opts = LONG) {
  const visitor = await createChat(redis, 'Nika', opts)
  await enqueueVisitor(redis, visitor, opts)
  const { supportId } = await joinSupport(redis, visitor, 'Vika', opts)
  const { chatId, userId } = visitor
  return {
    chatId,
    userId,
    supportId,
    append: (from: Party, content: string, clientMessageId?: string) =>
      appendMessage(redis, { chatId, userId, supportId, content, from, ...(clientMessageId === undefined ? {} : { clientMessageId }) }, opts),
  }
}

/** Rejects with a ProtocolError of this code, or fails the test. */
async function rejectsWith(t: Test, promise: Promise<unknown>, code: string, what: string, extra: object = {}) {
  try {
    await promise
    t.fail(`${what}: resolved, expected ${code}`, extra)
  } catch (err) {
    t.equal(err instanceof ProtocolError ? err.code : String(err), code, what, extra)
  }
}

/** The seed-004 args of a message, as seed 004 wrote them. */
const seedArgs = (m: { userId: string; supportId: string; content: string; timestamp: string; from: string }) =>
  JSON.stringify({ userId: m.userId, supportId: m.supportId, content: m.content, timestamp: m.timestamp, from: m.from })
const unread = (chatId: string, count: number) => `{"type":"UnreadCount","args":{"chatId":"${chatId}","count":${count}}}`
const receipt = (chatId: string, seq: number, status: string, from: Party) =>
  `{"type":"Receipt","args":{"chatId":"${chatId}","seq":${seq},"status":"${status}","from":"${from}"}}`

t.test('appendMessage: seq 1, 2, 3 …; the stored format; the message and the recipient\'s unread count announced', async (t) => {
  const { redis, take } = await setup(t)
  const chat = await activeChat(redis)
  await take()

  const tricky = 'say "hi" \\ ,"seq":9,"messageId":"x"} é 🙂'
  const first = await chat.append('User', tricky)
  t.notOk(first.duplicate)
  t.match(first.message, { userId: chat.userId, supportId: chat.supportId, content: tricky, from: 'User', seq: 1, messageId: HEX32 })
  t.equal(first.stored, `${seedArgs(first.message).slice(0, -1)},"seq":1,"messageId":"${first.message.messageId}"}`, 'seed args in seed order, then seq and messageId')
  t.same(JSON.parse(first.stored), first.message)
  t.same((await take()).chat, [`${chat.chatId} ${messageEnvelope(first.stored, 'support', 1)}`], 'one publication: the message to all, the unread count to the agent')
  t.same(openEnvelope(messageEnvelope(first.stored, 'support', 1)), { to: 'all', v2Only: false, frame: first.stored, unread: { reader: 'support', count: 1 } })

  const second = await chat.append('Support', 'hello', 'c-1')
  t.equal(
    second.stored,
    `${seedArgs(second.message).slice(0, -1)},"seq":2,"messageId":"${second.message.messageId}","clientMessageId":"c-1"}`,
    'the clientMessageId last',
  )
  t.same((await take()).chat, [`${chat.chatId} ${messageEnvelope(second.stored, 'user', 1)}`])
  const third = await chat.append('User', 'again')
  t.equal(third.message.seq, 3)
  t.same((await take()).chat, [`${chat.chatId} ${messageEnvelope(third.stored, 'support', 2)}`], 'the count adds up')

  t.same(await readHistory(redis, chat.chatId), [first.stored, second.stored, third.stored])
  t.equal(await lastSeq(redis, chat.chatId), 3)
  t.same(await readMessages(redis, chat.chatId, 2), [second.stored, third.stored], 'from a seq to the end')
  t.same(await readMessages(redis, chat.chatId, 1, 2), [first.stored, second.stored], 'a range, inclusive')
  t.same(await readMessages(redis, chat.chatId, 4), [], 'past the end')
  t.same(await readMessages(redis, chat.chatId, 3, 2), [], 'an empty range')
  t.equal(new Set([first, second, third].map((m) => m.message.messageId)).size, 3)

  const other = await activeChat(redis)
  t.equal((await other.append('Support', 'elsewhere')).message.seq, 1, 'seq is per chat')
})

t.test('a clientMessageId seen before stores nothing, announces nothing, and returns the first message', async (t) => {
  const { redis, take } = await setup(t)
  const chat = await activeChat(redis)
  const original = await chat.append('User', 'original', 'dup-1')
  await take()

  const retry = await chat.append('User', 'original', 'dup-1')
  t.ok(retry.duplicate, 'marked duplicate')
  t.equal(retry.stored, original.stored, 'the stored text of the first, byte for byte')
  t.same(retry.message, original.message)
  const edited = await chat.append('User', 'edited', 'dup-1')
  t.equal(edited.stored, original.stored, 'other content with the same id: still the first')
  t.same(await take(), { chat: [], queue: [] }, 'nothing announced')
  t.equal(await lastSeq(redis, chat.chatId), 1, 'nothing stored')
  t.same(await readState(redis, chat.chatId), { delivered: { user: 0, support: 0 }, read: { user: 0, support: 0 }, unread: { user: 0, support: 1 } }, 'nor counted')
  t.equal((await chat.append('User', 'next', 'dup-2')).message.seq, 2, 'a new id is a new message')
  t.ok((await redis.pttl(keys.clientIds(chat.chatId))) > LONG.chatTtlMs, 'the ids live as long as the chat')
  const theirs = await chat.append('Support', 'from the agent', 'dup-1')
  t.notOk(theirs.duplicate, "the agent's own message with the same id is not the visitor's")
  t.equal(theirs.message.content, 'from the agent', 'and it is stored')

  // A refused message does not take its id.
  const waiting = await createChat(redis, 'Dodo', LONG)
  await enqueueVisitor(redis, waiting, LONG)
  const early = { chatId: waiting.chatId, userId: waiting.userId, supportId: '0'.repeat(32), content: 'hello?', from: 'User' as const, clientMessageId: 'n-1' }
  await rejectsWith(t, appendMessage(redis, early, LONG), 'NO_AGENT_YET', 'before an agent')
  const { supportId } = await joinSupport(redis, waiting, 'Vika', LONG)
  const stored = await appendMessage(redis, { ...early, supportId }, LONG)
  t.match([stored.duplicate, stored.message.seq], [false, 1], 'the id stores once the message can be')
})

t.test('storedToV1 cuts a stored message back to the seed-004 args, byte for byte', async (t) => {
  const { redis } = await setup(t)
  const chat = await activeChat(redis)
  const contents = ['plain', 'a "quoted" ,"seq":1} tail', 'back\\slash ,\\"seq\\":2 \n newline', '"}', ',"seq":', 'ünïcødé 🙂 \u2028']
  for (const [i, content] of contents.entries()) {
    const { stored, message } = await chat.append(i % 2 ? 'Support' : 'User', content, i % 3 ? `id-${i}` : undefined)
    const v1 = seedArgs(message)
    t.equal(storedToV1(stored), v1, `content ${i}: the seed args`)
    t.ok(isStoredMessage(stored), 'recognised as a stored message')
    t.equal(encode.chatMessageFromStored(stored), `{"type":"ChatMessage","args":${v1}}`, 'the seed-004 ChatMessage frame')
  }
  const history = await readHistory(redis, chat.chatId)
  const user = { username: 'Nika', userId: chat.userId, chatId: chat.chatId }
  t.equal(
    encode.chatHistoryFromStored(user, history),
    JSON.stringify({ type: 'ChatHistory', args: { user, messages: history.map((s) => JSON.parse(storedToV1(s))) } }),
    'the seed-004 ChatHistory frame',
  )
  const v1Only = '{"userId":"a","supportId":"b","content":"c","timestamp":"t","from":"User"}'
  t.equal(storedToV1(v1Only), v1Only, 'text without seq is left alone')
})

t.test('markReceipt: monotonic per participant and kind, announced to the other side; a read moves the reader\'s unread count', async (t) => {
  const { redis, take } = await setup(t)
  const chat = await activeChat(redis)
  const { chatId } = chat
  t.same(await readState(redis, chatId), { delivered: { user: 0, support: 0 }, read: { user: 0, support: 0 }, unread: { user: 0, support: 0 } }, 'nothing yet')
  for (const [from, content] of [['User', 'u1'], ['User', 'u2'], ['Support', 's3'], ['User', 'u4']] as const) await chat.append(from, content)
  await take()

  t.equal(await markReceipt(redis, chatId, 'support', 'delivered', 2), true)
  t.same((await take()).chat, [`${chatId} user:v2|${receipt(chatId, 2, 'delivered', 'Support')}`], 'to the visitor only; no count for a delivery')
  t.equal(await markReceipt(redis, chatId, 'support', 'delivered', 2), false, 'the same seq again')
  t.equal(await markReceipt(redis, chatId, 'support', 'delivered', 1), false, 'an older seq')
  t.same((await take()).chat, [], 'announce nothing')

  t.equal(await markReceipt(redis, chatId, 'support', 'read', 3), true, 'read has its own mark')
  t.same((await take()).chat, [`${chatId} user:v2|${receipt(chatId, 3, 'read', 'Support')}`, `${chatId} support:v2|${unread(chatId, 1)}`], 'the agent read u1 and u2: u4 is left')
  await rejectsWith(t, markReceipt(redis, chatId, 'support', 'read', 5), 'INVALID_SEQ', 'one beyond the last message')
  await rejectsWith(t, markReceipt(redis, chatId, 'user', 'delivered', 5), 'INVALID_SEQ', 'delivered too')
  t.same((await take()).chat, [])

  t.equal(await markReceipt(redis, chatId, 'user', 'read', 4), true)
  t.same((await take()).chat, [`${chatId} support:v2|${receipt(chatId, 4, 'read', 'User')}`, `${chatId} user:v2|${unread(chatId, 0)}`])
  t.same(await readState(redis, chatId), { delivered: { user: 0, support: 2 }, read: { user: 4, support: 3 }, unread: { user: 0, support: 1 } })

  await chat.append('Support', 's5')
  t.equal(await markReceipt(redis, chatId, 'support', 'read', 5), true)
  t.same(await readState(redis, chatId), { delivered: { user: 0, support: 2 }, read: { user: 4, support: 5 }, unread: { user: 1, support: 0 } }, 'only the other side\'s messages count')

  await rejectsWith(t, markReceipt(redis, '0'.repeat(32), 'user', 'read', 1), 'CHAT_EXPIRED', 'an unknown chat')
})

t.test('endChat: read-only until it expires, announced to v2 sockets; a waiting visitor leaves the queue', async (t) => {
  const { redis, take } = await setup(t)
  const chat = await activeChat(redis)
  await chat.append('User', 'thanks')
  const history = await readHistory(redis, chat.chatId)
  const deadline = await redis.zscore(keys.deadlines, chat.chatId)
  await take()

  t.equal(await endChat(redis, chat.chatId, 'Support', 'resolved'), true)
  t.same(await take(), {
    chat: [`${chat.chatId} all:v2|{"type":"ChatEnded","args":{"chatId":"${chat.chatId}","by":"Support","reason":"resolved"}}`],
    queue: [],
  })
  t.match(await getChat(redis, chat.chatId), { state: 'ended', endedBy: 'Support', endReason: 'resolved', supportId: chat.supportId })
  t.equal(await redis.zscore(keys.deadlines, chat.chatId), deadline, 'the deadline stands: it expires as it would have')
  await rejectsWith(t, chat.append('User', 'one more'), 'CHAT_ENDED', 'a message')
  await rejectsWith(t, chat.append('Support', 'one more', 'e-1'), 'CHAT_ENDED', 'a message with a clientMessageId')
  t.same(await readHistory(redis, chat.chatId), history, 'the history stays')
  t.equal(await endChat(redis, chat.chatId, 'User', 'again'), false, 'ending twice')
  t.same(await take(), { chat: [], queue: [] }, 'announces nothing')
  t.match(await getChat(redis, chat.chatId), { endedBy: 'Support', endReason: 'resolved' }, 'the first end stands')

  const visitor = await createChat(redis, 'Dodo', LONG)
  await enqueueVisitor(redis, visitor, LONG)
  const waitingDeadline = await redis.zscore(keys.deadlines, visitor.chatId)
  await take()
  t.equal(await endChat(redis, visitor.chatId, 'User', null), true)
  t.same(await take(), {
    chat: [`${visitor.chatId} all:v2|{"type":"ChatEnded","args":{"chatId":"${visitor.chatId}","by":"User","reason":null}}`],
    queue: [`{"kind":"removed","chatId":"${visitor.chatId}","userId":"${visitor.userId}"}`],
  })
  const ended = await getChat(redis, visitor.chatId)
  t.match(ended, { state: 'ended', endedBy: 'User' })
  t.equal(ended?.endReason, undefined, 'no reason')
  t.same(visitorsOf(await listQueue(redis)), [], 'off the queue')
  await redisClockPast(redis, Number(waitingDeadline) - LONG.chatTtlMs) // so that a touch would move the deadline
  await touchWaiting(redis, [visitor.chatId], LONG)
  t.equal(await redis.zscore(keys.deadlines, visitor.chatId), waitingDeadline, 'no longer kept alive as waiting')
  await rejectsWith(t, claimVisitor(redis, visitor.chatId, visitor.userId), 'ALREADY_CLAIMED', 'a claim from a stale console')
  const msg = { chatId: visitor.chatId, userId: visitor.userId, supportId: '0'.repeat(32), content: 'hi', from: 'User' as const }
  await rejectsWith(t, appendMessage(redis, msg, LONG), 'CHAT_ENDED', 'a message')
  await rejectsWith(t, joinSupport(redis, visitor, 'Vika', LONG), 'CHAT_ENDED', 'an agent joining the ended chat')
  t.equal((await getChat(redis, visitor.chatId))?.state, 'ended', 'still ended')

  await rejectsWith(t, endChat(redis, '0'.repeat(32), 'User', null), 'CHAT_EXPIRED', 'an unknown chat')
})

t.test('warnExpiring: chats with an agent whose deadline is within the window, once per deadline', async (t) => {
  const { redis, take } = await setup(t)
  const chat = await activeChat(redis)
  const waiting = await createChat(redis, 'Dodo', LONG)
  await enqueueVisitor(redis, waiting, LONG)
  const ended = await activeChat(redis)
  await endChat(redis, ended.chatId, 'User', null)
  await take()

  t.equal(await warnExpiring(redis, 30_000), 0, 'a deadline 60 s away is outside a 30 s window')
  t.equal(await warnExpiring(redis, 0), 0, 'a window of 0 never warns')
  t.equal(await warnExpiring(redis, 120_000), 1, 'only the chat with an agent, not the waiting one nor the ended one')
  const [warning, ...rest] = (await take()).chat
  t.same(rest, [])
  t.match(warning, new RegExp(`^${chat.chatId} all:v2\\|\\{"type":"ChatExpiring","args":\\{"chatId":"${chat.chatId}","secondsLeft":(59|60)\\}\\}$`), 'to v2 sockets, seconds left rounded up')
  t.equal(await warnExpiring(redis, 120_000), 0, 'not twice for one deadline')
  t.same((await take()).chat, [])

  await redisClockPast(redis, Number(await redis.zscore(keys.deadlines, chat.chatId)) - LONG.chatTtlMs) // so the message moves the deadline
  await chat.append('User', 'still here')
  await take()
  t.equal(await warnExpiring(redis, 120_000), 1, 'a new deadline earns a new warning')
  t.match((await take()).chat, [new RegExp(`^${chat.chatId} all:v2\\|\\{"type":"ChatExpiring"`)])
})

t.test('an expired chat takes its client ids and read state with it', async (t) => {
  const { redis } = await setup(t)
  const chat = await activeChat(redis, SHORT)
  await chat.append('User', 'hi', 'c-1')
  await markReceipt(redis, chat.chatId, 'support', 'read', 1)
  t.equal(await redis.exists(keys.clientIds(chat.chatId), keys.receipts(chat.chatId)), 2)
  await redisClockPast(redis, Number(await redis.zscore(keys.deadlines, chat.chatId)))
  t.equal(await warnExpiring(redis, 120_000), 0, 'a chat past its deadline is not warned')
  t.equal(await sweepExpired(redis), 1)
  t.same(await redis.keys(`*${chat.chatId}*`), [], 'no key of the chat is left')
  await rejectsWith(t, markReceipt(redis, chat.chatId, 'user', 'read', 1), 'CHAT_EXPIRED', 'a receipt after expiry')
})
