/**
 * The encoders built on the registry write exactly the bytes the hand-written
 * encoders wrote before it: fixtures/encoders-before-registry.json was made by
 * running these calls against libs/protocol as of 5fa8ff9 (field order,
 * escaping, null and dropped extra fields included).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import * as P from '@switchboard/protocol'

const before = JSON.parse(readFileSync(new URL('./fixtures/encoders-before-registry.json', import.meta.url), 'utf8')) as Record<string, string>
/** A value with a field the frame does not have: encoders leave it out. */
const withExtra = <T extends object>(value: T): T => ({ ...value, extra: 1 })

const v = { username: 'Nika "N"', userId: '9d6d2db0cdb84d8ba67105670d94d641', chatId: 'd2464b5386044daf9e36ffd414260f67' }
const stored = '{"userId":"9d6d2db0cdb84d8ba67105670d94d641","supportId":"7c270542e64a4dfbb2bc1c7793746674","content":"a,\\"seq\\":1","timestamp":"2026-11-25T10:49:53.123Z","from":"User","seq":3,"messageId":"5f0c8a3e9b7d4c21a6e0f3b8d2c1a907","clientMessageId":"c-17"}'
const out: [string, string][] = [
  ['encode.visitor', P.encode.visitor(withExtra({ chatId: v.chatId, userId: v.userId, username: v.username }))],
  ['encode.userJoined', P.encode.userJoined(withExtra(v))],
  ['encode.supportJoinedUser', P.encode.supportJoinedUser({ chatId: v.chatId, userId: v.userId, username: 'N', supportUserName: 'Vika', supportId: '7c270542e64a4dfbb2bc1c7793746674' })],
  ['encode.chatMessageArgs', P.encode.chatMessageArgs({ from: 'Support', timestamp: '2026-11-25T10:49:53.123Z', content: 'ü "q"', supportId: 's', userId: 'u' })],
  ['encode.chatMessageFromStored', P.encode.chatMessageFromStored(stored)],
  ['encode.chatHistoryFromStored', P.encode.chatHistoryFromStored(v, [stored, stored])],
  ['encode.chatExpired', P.encode.chatExpired(v.chatId)],
  ['encode.removeUser', P.encode.removeUser(v.userId)],
  ['encode.error', P.encode.error('ALREADY_CLAIMED', 'This visitor has already been claimed by an agent')],
  ['encodeV2.chatMessageFromStored', P.encodeV2.chatMessageFromStored(stored)],
  ['encodeV2.chatHistory', P.encodeV2.chatHistory(v, [stored], 3, true)],
  ['encodeV2.chatHistoryPage', P.encodeV2.chatHistoryPage([stored], false)],
  ['encodeV2.receipt', P.encodeV2.receipt(v.chatId, 3, 'delivered', 'Support')],
  ['encodeV2.unreadCount', P.encodeV2.unreadCount(v.chatId, 0)],
  ['encodeV2.chatExpiring', P.encodeV2.chatExpiring(v.chatId, 30)],
  ['encodeV2.ack', P.encodeV2.ack({ timestamp: 't', seq: 3, messageId: 'm', clientMessageId: 'c-17' })],
  ['encodeV2.typing', P.encodeV2.typing(v.chatId, 'Support', 'stop')],
  ['encodeV2.chatEnded', P.encodeV2.chatEnded(v.chatId, 'User', 'Solved "it"')],
  ['encodeV2.chatEnded null', P.encodeV2.chatEnded(v.chatId, 'Support', null)],
  ['encodeV2.errorFor', P.encodeV2.errorFor('MESSAGE_TOO_LONG', 'too long', 'c-17')],
  ['encodeV2.agentsOnline', P.encodeV2.agentsOnline([withExtra({ status: 'away' as const, activeChats: 0, name: 'Ana', agentId: 'agent-3' }), { activeChats: 2, status: 'online', agentId: 'agent-7', name: 'Vika' }])],
  ['encodeV2.agentsOnline empty', P.encodeV2.agentsOnline([])],
  ['encodeV2.myChats', P.encodeV2.myChats([withExtra({ unread: 2, since: 's', username: 'u', userId: 'i', chatId: 'c' })])],
  ['encodeV2.chatAssigned', P.encodeV2.chatAssigned({ fromAgentId: 'agent-3', username: 'u', userId: 'i', chatId: 'c' })],
  ['encodeV2.chatUnassigned', P.encodeV2.chatUnassigned(v.chatId, 'agent-7')],
  ['encodeV2.chatUnassigned null', P.encodeV2.chatUnassigned(v.chatId, null)],
  ['encodeV2.queuePosition', P.encodeV2.queuePosition({ waiting: 3, estimatedWaitSeconds: 95, position: 2, chatId: v.chatId })],
  ['encodeV2.queuePosition null', P.encodeV2.queuePosition({ waiting: 1, estimatedWaitSeconds: null, position: 1, chatId: v.chatId })],
  ['encodeV2.queuedVisitor', P.encodeV2.queuedVisitor({ order: -1, since: 's', ...v })],
  ['encodeV2.userJoinedQueued', P.encodeV2.userJoinedQueued({ order: 17, since: 's', ...v })],
  ['encodeClient.join', P.encodeClient.join({ userId: v.userId, supportId: 's', username: 'Nika', supportUserName: 'Vika', from: 'Support' })],
  ['encodeClient.chatMessage', P.encodeClient.chatMessage({ userId: v.userId, supportId: 's', content: 'Hello', from: 'User' })],
  ['encodeClient.load', P.encodeClient.load()],
  ['encodeClient.joinUser', P.encodeClient.joinUser({ userId: v.userId, chatId: v.chatId, username: 'Nika' })],
]

t.test('every encoder writes the bytes it wrote before the registry', async (t) => {
  t.same(out.map(([name]) => name), Object.keys(before), 'the same calls as the fixture')
  for (const [name, text] of out) t.equal(text, before[name], name)
})
