import t from 'tap'
import { encode, encodeV2, storedToV1, type ChatMessageV2, type Visitor } from '@switchboard/protocol'
import {
  expiringPublication,
  encodeStoredMessage,
  loadLua,
  openEnvelope,
  queueJoinedEvent,
  queueJoinedParts,
  queueRemovedEvent,
  receiptPublication,
  storedMessageParts,
  unreadPublication,
  newId,
  scriptFiles,
} from '@switchboard/domain'
import { startRedis, connectedRedis } from '@switchboard/testing'

/*
 * What the scripts write is every byte TypeScript's: the stored message and
 * the 'joined' queue event are cut by TypeScript around the values only the
 * script knows, and the script's joining of the pieces is run here with EVAL
 * over a real redis-server and compared with the TypeScript encoders, byte
 * for byte. The scripts' data publications open into the encoders' frames.
 */

/** The very concatenation append-message.lua and enqueue.lua / transfer.lua do, run by Redis. */
const JOIN3 = `return ARGV[1] .. ARGV[4] .. ARGV[2] .. ARGV[5] .. ARGV[3]`

const base = {
  userId: newId(),
  timestamp: '2026-12-04T22:00:00.123Z',
  messageId: newId(),
}

const messages: [string, Omit<ChatMessageV2, 'supportId' | 'seq'>][] = [
  ['a visitor, no clientMessageId', { ...base, content: 'hello', from: 'User' }],
  ['an agent, with a clientMessageId', { ...base, content: 'hi there', from: 'Support', clientMessageId: 'c-1.2:3_x' }],
  ['quotes, backslashes, control characters', { ...base, content: 'say "hi" \\ back\nslash\t\u0000\u001f </script>', from: 'User', clientMessageId: 'q' }],
  ['unicode', { ...base, content: 'Ĺudmila 😀 日本語 \u2028\u2029 é', from: 'Support' }],
  ['empty content', { ...base, content: '', from: 'User' }],
]

t.test('the stored message: what the script stores is byte for byte what the encoder makes (v1 cut and v2)', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const { commands: redis } = await connectedRedis(t, server.url)
  t.match(loadLua('append-message.lua'), /stored_before_support_id \.\. \(f\[1\] or ''\) \.\. stored_before_seq \.\. seq \.\. stored_after_seq/, 'the script joins the pieces so')
  for (const [what, m] of messages) {
    for (const [supportId, seq] of [[newId(), 1], ['', 12345], [newId(), 9007199254740]] as const) {
      const stored = (await redis.eval(JOIN3, 0, ...storedMessageParts(m), supportId, seq)) as string
      const full: ChatMessageV2 = { ...m, supportId, seq }
      t.equal(stored, encodeStoredMessage(full), `${what}, seq ${seq}: as encodeStoredMessage`)
      // The v2 form: the ChatMessageV2 args in order, as JSON writes them.
      const v2 = JSON.stringify({
        userId: m.userId,
        supportId,
        content: m.content,
        timestamp: m.timestamp,
        from: m.from,
        seq,
        messageId: m.messageId,
        ...(m.clientMessageId === undefined ? {} : { clientMessageId: m.clientMessageId }),
      })
      t.equal(stored, v2, `${what}: the v2 args`)
      t.equal(encodeV2.chatMessageFromStored(stored), `{"type":"ChatMessage","args":${v2}}`, `${what}: the v2 frame`)
      // The seed-004 form: the stored message cut before seq is the seed's args.
      t.equal(storedToV1(stored), encode.chatMessageArgs({ userId: m.userId, supportId, content: m.content, timestamp: m.timestamp, from: m.from }), `${what}: the v1 cut`)
      t.same(JSON.parse(stored), JSON.parse(v2), `${what}: parses back`)
    }
  }
})

t.test("the 'joined' queue event: the script's joining of the pieces is queueJoinedEvent, byte for byte", async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const { commands: redis } = await connectedRedis(t, server.url)
  const visitors: Visitor[] = [
    { username: 'Nika', userId: newId(), chatId: newId() },
    { username: 'O"Brien \\ 😀 \u0000', userId: newId(), chatId: newId() },
  ]
  for (const visitor of visitors) {
    for (const [order, since] of [[1, 1764000000000], [-2, 1764000000001], [0, 0]] as const) {
      const [a, b, c] = queueJoinedParts(visitor)
      const text = (await redis.eval(`return ARGV[1] .. ARGV[4] .. ARGV[2] .. ARGV[5] .. ARGV[3]`, 0, a, b, c, order, since)) as string
      t.equal(text, queueJoinedEvent(visitor, order, since), `order ${order}`)
      t.same(JSON.parse(text), { kind: 'joined', order, since, visitor: { username: visitor.username, userId: visitor.userId, chatId: visitor.chatId } })
    }
  }
  const v = visitors[0]!
  t.equal(queueRemovedEvent(v.chatId, v.userId), `{"kind":"removed","chatId":"${v.chatId}","userId":"${v.userId}"}`, "'removed' as it always was")
})

t.test("the scripts' data publications open into the encoders' frames, for the same audiences as before", async (t) => {
  const chatId = newId()
  t.same(openEnvelope(receiptPublication(chatId, 'user', 3, 'read', 'Support')), {
    to: 'user',
    v2Only: true,
    frame: encodeV2.receipt(chatId, 3, 'read', 'Support'),
  })
  t.equal(encodeV2.receipt(chatId, 3, 'read', 'Support'), `{"type":"Receipt","args":{"chatId":"${chatId}","seq":3,"status":"read","from":"Support"}}`)
  t.same(openEnvelope(receiptPublication(chatId, 'support', 12, 'delivered', 'User')), {
    to: 'support',
    v2Only: true,
    frame: encodeV2.receipt(chatId, 12, 'delivered', 'User'),
  })
  t.same(openEnvelope(unreadPublication(chatId, 'support', 0)), { to: 'support', v2Only: true, frame: encodeV2.unreadCount(chatId, 0) })
  t.same(openEnvelope(expiringPublication(chatId, 59)), { to: 'all', v2Only: true, frame: encodeV2.chatExpiring(chatId, 59) })
  t.equal(encodeV2.chatExpiring(chatId, 59), `{"type":"ChatExpiring","args":{"chatId":"${chatId}","secondsLeft":59}}`)
  // What the scripts write, as they write it.
  t.match(loadLua('receipt.lua'), `'receipt:' .. other .. ':' .. seq .. ':' .. kind .. ':' .. reader_name .. '|' .. chat_id`)
  t.match(loadLua('receipt.lua'), `'unread:' .. reader .. ':' .. (sent - readn) .. '|' .. chat_id`)
  t.match(loadLua('warn-expiring.lua'), `'expiring:' .. math.ceil((d - now) / 1000) .. '|' .. chat_id`)
  for (const bad of ['receipt:all:1:read:User|x', 'receipt:user:x:read:User|x', 'receipt:user:1:seen:User|x', 'unread:all:1|x', 'expiring:|x', 'expiring:1:2|x']) {
    t.equal(openEnvelope(bad), null, bad)
  }
})

t.test('no script builds a frame: no "type": in any Lua source', async (t) => {
  t.equal(Object.keys(scriptFiles).length, 15)
  for (const { file } of Object.values(scriptFiles)) {
    const lua = loadLua(file)
    t.notMatch(lua, /"type"|"kind"|\{"/, `${file}.lua writes no JSON of its own`)
    t.notMatch(lua, /\{sb\}/, `${file}.lua names no key`)
    t.match(lua, /^local \w+ = KEYS\[1\]$/m, `${file}.lua names its KEYS`)
  }
})
