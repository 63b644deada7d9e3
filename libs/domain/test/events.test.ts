import t from 'tap'
import { encode } from '@switchboard/protocol'
import { agentFrameEvent, envelope, newId, openEnvelope, parseAgentEvent, parseQueueEvent, type Audience, type QueueEvent } from '@switchboard/domain'

const visitor = { username: 'Nika', userId: newId(), chatId: newId() }

t.test('envelope / openEnvelope round trip for every audience', async (t) => {
  const frames = [
    encode.chatExpired(visitor.chatId),
    encode.chatMessageArgs({ content: 'a|b||c', from: 'User', userId: visitor.userId, supportId: newId(), timestamp: '2023-10-22T18:18:59.360Z' }),
    '|leading bar',
    '',
  ]
  for (const to of ['all', 'user', 'support', 'all:v2', 'user:v2', 'support:v2'] as Audience[]) {
    for (const frame of frames) {
      const wrapped = envelope(to, frame)
      t.equal(wrapped, `${to}|${frame}`, 'the wire form is <audience>|<frame>')
      const v2Only = to.endsWith(':v2')
      t.same(
        openEnvelope(wrapped),
        { to: v2Only ? to.slice(0, -3) : to, v2Only, frame },
        `${to}: ${JSON.stringify(frame.slice(0, 30))} survives, bars included`,
      )
    }
  }
})

t.test('openEnvelope rejects what is not an envelope', async (t) => {
  for (const message of [
    '',
    'all',
    '{"type":"ChatExpired","args":{"chatId":"x"}}',
    'everyone|{}',
    'All|{}',
    ' all|{}',
    '|{}',
    'agent|{}',
    'v2|{}',
    'all:v3|{}',
    'msg:|{}',
    'msg:all:1|{}',
    'msg:user:-1|{}',
    'msg:user:x|{}',
    'msg:user|{}',
  ]) {
    t.equal(openEnvelope(message), null, JSON.stringify(message))
  }
})

t.test('parseQueueEvent round trips both kinds', async (t) => {
  const joined: QueueEvent = { kind: 'joined', visitor, order: 3, since: 1764000000000 }
  t.same(parseQueueEvent(JSON.stringify(joined)), joined)
  // Exactly what the Lua scripts publish for a removal.
  const removedText = `{"kind":"removed","chatId":"${visitor.chatId}","userId":"${visitor.userId}"}`
  t.same(parseQueueEvent(removedText), { kind: 'removed', chatId: visitor.chatId, userId: visitor.userId })
  // And what sbEnqueue publishes for a join (order may be negative: a visitor put back at the head).
  const joinedText = `{"kind":"joined","order":-2,"since":1764000000000,"visitor":${JSON.stringify(visitor)}}`
  t.same(parseQueueEvent(joinedText), { kind: 'joined', order: -2, since: 1764000000000, visitor })
  t.equal(parseQueueEvent(JSON.stringify({ kind: 'joined', visitor })), null, 'a joined event without its place is refused')
})

t.test('parseAgentEvent reads both kinds and refuses anything else', async (t) => {
  t.same(parseAgentEvent('{"changed":["a","b"]}'), { kind: 'changed', agentIds: ['a', 'b'] })
  t.same(parseAgentEvent(agentFrameEvent('a"b', '{"type":"X"}')), { kind: 'frame', to: 'a"b', frame: '{"type":"X"}' })
  for (const text of ['', 'null', '{}', '{"changed":[1]}', '{"changed":"a"}', '{"to":"a"}', '{"to":1,"frame":"x"}', '[']) {
    t.equal(parseAgentEvent(text), null, JSON.stringify(text))
  }
})

t.test('parseQueueEvent rejects anything else with null, never throwing', async (t) => {
  const rejected: [string, string][] = [
    ['not JSON', '{"kind":'],
    ['empty', ''],
    ['JSON null', 'null'],
    ['a string', '"joined"'],
    ['a number', '42'],
    ['an array', '[{"kind":"joined"}]'],
    ['no kind', JSON.stringify({ visitor })],
    ['unknown kind', JSON.stringify({ kind: 'left', chatId: visitor.chatId, userId: visitor.userId })],
    ['joined without visitor', JSON.stringify({ kind: 'joined' })],
    ['joined with a null visitor', JSON.stringify({ kind: 'joined', visitor: null })],
    ['joined with a non-string chatId', JSON.stringify({ kind: 'joined', visitor: { ...visitor, chatId: 7 } })],
    ['removed without userId', JSON.stringify({ kind: 'removed', chatId: visitor.chatId })],
    ['removed without chatId', JSON.stringify({ kind: 'removed', userId: visitor.userId })],
    ['removed with a non-string userId', JSON.stringify({ kind: 'removed', chatId: visitor.chatId, userId: 1 })],
  ]
  for (const [what, text] of rejected) {
    let result: unknown = 'threw'
    try {
      result = parseQueueEvent(text)
    } catch {
      // reported below
    }
    t.equal(result, null, what)
  }
})

t.test('parseQueueEvent rejects a joined event whose visitor lacks userId or username', async (t) => {
  t.equal(parseQueueEvent(JSON.stringify({ kind: 'joined', visitor: { chatId: visitor.chatId } })), null, 'only chatId')
  t.equal(
    parseQueueEvent(JSON.stringify({ kind: 'joined', visitor: { chatId: visitor.chatId, username: 'Nika' } })),
    null,
    'no userId',
  )
  t.equal(
    parseQueueEvent(JSON.stringify({ kind: 'joined', visitor: { chatId: visitor.chatId, userId: visitor.userId } })),
    null,
    'no username',
  )
})
