import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { encodeV2, encode } from '@switchboard/protocol'
import { envelope, keys, messageEnvelope } from '@switchboard/domain'
import { startRedis } from '@switchboard/testing'
import { Delivery, controlFrameType, type ControlFrameType, type DeliveryHost } from '../src/chat/delivery.js'

/*
 * A socket's Delivery against a real Redis (the store catch-up reads): held
 * frames during a Join, copies dropped by seq, a gap filled from the store
 * before anything after it, in order.
 */

let redis: Redis
t.before(async () => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  redis = new Redis(server.url, { lazyConnect: true })
  await redis.connect()
  t.teardown(() => redis.quit())
})

let chats = 0
/** A stored message of `chatId`, as the store writes it. */
const stored = (chatId: string, seq: number) =>
  `{"userId":"${'1'.repeat(32)}","supportId":"${'2'.repeat(32)}","content":"m${seq}","timestamp":"2026-01-01T00:00:00.000Z","from":"User","seq":${seq},"messageId":"${chatId.slice(0, 24)}${String(seq).padStart(8, '0')}"}`

interface Fake extends DeliveryHost {
  sent: string[]
  controls: [ControlFrameType, string][]
  warnings: string[]
  /** Resolves once `n` frames have been sent. */
  sentCount(n: number): Promise<void>
}

function host(version: 1 | 2 = 2): Fake {
  const chatId = (++chats).toString(16).padStart(32, 'c')
  let waiter: { n: number; resolve: () => void } | undefined
  const fake: Fake = {
    redis,
    chatId,
    version,
    closed: false,
    sent: [],
    controls: [],
    warnings: [],
    log: { warn: (_o: unknown, msg: string) => fake.warnings.push(msg), info() {}, debug() {}, error() {} } as unknown as FastifyBaseLogger,
    send(frame) {
      fake.sent.push(frame)
      if (waiter !== undefined && fake.sent.length >= waiter.n) waiter.resolve()
    },
    onControlFrame(type, frame) {
      fake.controls.push([type, frame])
    },
    sentCount(n) {
      if (fake.sent.length >= n) return Promise.resolve()
      return new Promise((resolve) => (waiter = { n, resolve }))
    },
  }
  return fake
}

/** Stores messages 1..n of the chat, as the store would. */
async function store(chatId: string, n: number): Promise<string[]> {
  const messages = Array.from({ length: n }, (_, i) => stored(chatId, i + 1))
  if (n > 0) await redis.rpush(keys.messages(chatId), ...messages)
  return messages
}

const v2 = (message: string) => encodeV2.chatMessageFromStored(message)
const typing = (chatId: string) => encodeV2.typing(chatId, 'Support', 'start')

t.test('controlFrameType names the frames that change a socket, and nothing else', async (t) => {
  t.equal(controlFrameType(encode.chatExpired('c'.repeat(32))), 'ChatExpired')
  t.equal(controlFrameType('{"type":"ChatUnassigned","args":{"chatId":"x","toAgentId":null}}'), 'ChatUnassigned')
  t.equal(controlFrameType('{"type":"SupportJoinedUser","args":{}}'), 'SupportJoinedUser')
  t.equal(controlFrameType('{"type":"UserJoined","args":{}}'), 'UserJoined')
  t.equal(controlFrameType(typing('c'.repeat(32))), undefined)
  t.equal(controlFrameType('{"type":"UserJoinedLater","args":{}}'), undefined, 'the whole type name, not a prefix of it')
})

t.test('frames published while a Join is answered are held, then sent in order after it; copies of the history are dropped', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 3)
  const d = new Delivery(h)
  d.hold('User')
  d.onPublication(envelope('all', messages[1]!))
  d.onPublication(envelope('all', typing(h.chatId)))
  d.onPublication(envelope('all', messages[2]!))
  t.same(h.sent, [], 'nothing goes out while the Join is answered')
  // The history had messages 1 and 2.
  d.startAfter(2)
  await d.settleStart()
  t.equal(d.lastDelivered, 2, 'a history sent: its last seq stands')
  t.same(h.sent, [], 'still held until the Join is answered')
  d.joined()
  t.same(h.sent, [typing(h.chatId), v2(messages[2]!)], "message 2's live copy dropped; the rest in arrival order")
  d.onPublication(envelope('all', messages[2]!))
  t.same(h.sent.length, 2, 'a copy after the Join is dropped too')
})

t.test('no history sent: delivery starts at the first held message, or after what was stored', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 3)
  const d = new Delivery(h)
  d.hold('User')
  // Message 3 was stored after the subscription and published: held, and this socket's to get.
  d.onPublication(envelope('all', messages[2]!))
  await d.settleStart()
  t.equal(d.lastDelivered, 2, 'starts just before the first held message')
  d.joined()
  t.same(h.sent, [v2(messages[2]!)])

  const quiet = host()
  await store(quiet.chatId, 2)
  const e = new Delivery(quiet)
  e.hold('Support')
  await e.settleStart()
  t.equal(e.lastDelivered, 2, 'nothing held: what was stored before is not delivered')
  e.joined()
  t.same(quiet.sent, [])
})

t.test('a gap in seqs is filled from the store first, then what came after it, in order', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 5)
  const d = new Delivery(h)
  d.hold('User')
  d.startAfter(1)
  d.joined()
  // Publications of 2 and 3 were lost: 4 arrives, then a typing frame, then 5.
  d.onPublication(envelope('all', messages[3]!))
  d.onPublication(envelope('all', typing(h.chatId)))
  d.onPublication(envelope('all', messages[4]!))
  t.same(h.sent, [], 'held while the store is read')
  await h.sentCount(5)
  // The read brings 2 to 5 (all the store has): the held copies of 4 and 5 are dropped, the typing frame follows.
  t.same(h.sent, [v2(messages[1]!), v2(messages[2]!), v2(messages[3]!), v2(messages[4]!), typing(h.chatId)], 'in seq order, each once')
  t.same(h.warnings, ['missed messages on the chat channel; reading them from the store'], 'the gap is logged once')
  t.equal(d.lastDelivered, 5)
})

t.test('a gap the store cannot fill is not read for again: the message is sent as is', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 1)
  const d = new Delivery(h)
  d.hold('User')
  d.startAfter(1)
  d.joined()
  // Seq 4 of a chat whose store has only message 1 (it is gone, or being rewritten).
  const late = stored(h.chatId, 4)
  d.onPublication(envelope('all', late))
  d.onPublication(envelope('all', typing(h.chatId)))
  await h.sentCount(2)
  t.same(h.sent, [v2(late), typing(h.chatId)])
  t.equal(h.warnings.length, 1, 'one read, not a loop')
  t.ok(messages)
})

t.test('a gap the read only partly filled is read for once more before the message goes out as is', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 3)
  const d = new Delivery(h)
  d.hold('User')
  d.startAfter(1)
  d.joined()
  const five = stored(h.chatId, 5)
  d.onPublication(envelope('all', five))
  await h.sentCount(3)
  t.same(h.sent, [v2(messages[1]!), v2(messages[2]!), v2(five)], 'what the store has, then the message after the gap')
  t.equal(h.warnings.length, 2, 'the first read brought messages, so the gap left is read for again; the second brought none')
})

t.test('catchUp after the Redis subscriber was back: reads what was missed, then the frames held meanwhile', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 3)
  const d = new Delivery(h)
  d.hold('Support')
  d.startAfter(1)
  d.joined()
  d.catchUp()
  d.catchUp() // asked again while reading: one more read, no duplicate
  d.onPublication(envelope('all', typing(h.chatId)))
  await h.sentCount(3)
  t.same(h.sent, [v2(messages[1]!), v2(messages[2]!), typing(h.chatId)])
})

t.test('catchUp during a Join, before its history: caught up once the Join is answered', async (t) => {
  const h = host()
  const messages = await store(h.chatId, 2)
  const d = new Delivery(h)
  d.hold('User')
  d.catchUp()
  t.same(h.sent, [])
  d.startAfter(1)
  d.joined()
  await h.sentCount(1)
  t.same(h.sent, [v2(messages[1]!)], 'read after the Join, from its history on')
})

t.test('a failed Join delivers nothing, held or caught up', async (t) => {
  const h = host()
  await store(h.chatId, 2)
  const d = new Delivery(h)
  d.hold('User')
  d.onPublication(envelope('all', typing(h.chatId)))
  d.catchUp()
  d.joinFailed()
  t.equal(d.lastDelivered, undefined)
  // A new Join that succeeds starts clean.
  d.hold('User')
  await d.settleStart()
  d.joined()
  d.onPublication(envelope('all', typing(h.chatId)))
  t.same(h.sent, [typing(h.chatId)], 'only what came after the successful Join')
})

t.test('publications are picked by audience and protocol; control frames go to the session', async (t) => {
  const h = host(1)
  const messages = await store(h.chatId, 1)
  const d = new Delivery(h)
  d.hold('User')
  await d.settleStart()
  d.joined()
  d.onPublication(envelope('support', '{"type":"Other","args":{}}'))
  d.onPublication(envelope('all:v2', typing(h.chatId)))
  d.onPublication(envelope('user', encode.chatExpired(h.chatId)))
  d.onPublication('no bar here')
  const next = stored(h.chatId, 2)
  d.onPublication(messageEnvelope(next, 'user', 1))
  t.same(h.controls, [['ChatExpired', encode.chatExpired(h.chatId)]], "the visitor's control frame, to the session")
  t.same(h.sent, [encode.chatMessageFromStored(next)], 'a seed-004 socket: the message as v1, no UnreadCount, no v2-only frames')
  t.ok(messages)

  const agent = host(2)
  const e = new Delivery(agent)
  e.hold('Support')
  await e.settleStart()
  e.joined()
  const m = stored(agent.chatId, 1)
  e.onPublication(messageEnvelope(m, 'support', 3))
  t.same(agent.sent, [v2(m), encodeV2.unreadCount(agent.chatId, 3)], "the recipient's v2 socket gets its unread count right after the message")
})

t.test('skipOnce: a frame sent directly is not sent again from the channel, once', async (t) => {
  const h = host()
  const d = new Delivery(h)
  d.hold('Support')
  const frame = '{"type":"Hello","args":{}}'
  d.skipOnce(frame)
  d.onPublication(envelope('all', frame))
  await d.settleStart()
  d.joined()
  d.onPublication(envelope('all', frame))
  t.same(h.sent, [frame], 'the first copy skipped, the next one sent')
})
