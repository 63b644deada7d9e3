import t from 'tap'
import { openChat, startStack } from '@switchboard/testing'


t.test('a seed-004 visitor and a v2 agent in the same chat: each gets its own protocol', async (t) => {
  const stack = await startStack(t)
  const { visitor, user, agent, supportId, url } = await openChat(stack, { agent: 2, user: 1 })
  t.equal(agent.ws.protocol, 'switchboard.v2', 'the server selected v2 for the agent')
  t.equal(user.ws.protocol, '', 'and nothing for the seed client')

  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'hello', from: 'User' } })
  const seen = await user.nextOfType('ChatMessage')
  t.same(Object.keys(seen.json.args), ['userId', 'supportId', 'content', 'timestamp', 'from'], 'the seed client sees seed-004 bytes')
  const v2 = await agent.nextOfType('ChatMessage')
  t.same(Object.keys(v2.json.args), ['userId', 'supportId', 'content', 'timestamp', 'from', 'seq', 'messageId'], 'the v2 agent sees seq and messageId')
  t.equal(v2.json.args.seq, 1)
  t.equal(v2.text, seen.text.replace(/}}$/, `,"seq":1,"messageId":"${v2.json.args.messageId}"}}`), 'the same message, extended')
  t.match((await agent.nextOfType('UnreadCount')).json.args, { chatId: visitor.chatId, count: 1 }, 'the agent has one unread')

  // The agent acks its own message with a clientMessageId; retrying stores nothing new.
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'hi!', from: 'Support', clientMessageId: 'c-1' } })
  const ack = (await agent.nextOfType('Ack')).json.args
  t.match(ack, { clientMessageId: 'c-1', seq: 2, messageId: /^[0-9a-f]{32}$/ })
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'hi!', from: 'Support', clientMessageId: 'c-1' } })
  t.same((await agent.nextOfType('Ack')).json.args, ack, 'the same Ack again')
  t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'hi!')

  // v2-only frames never reach the seed client; v1 answers v2 types as unknown.
  agent.send({ type: 'Typing', args: { state: 'start' } })
  agent.send({ type: 'Read', args: { seq: 1 } })
  t.match((await agent.nextOfType('UnreadCount')).json.args, { count: 0 }, 'reading clears the unread count')
  user.send({ type: 'Typing', args: { state: 'start' } })
  t.equal((await user.nextOfType('Error')).json.args.code, 'UNKNOWN_TYPE', 'a seed socket cannot send v2 frames')
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'marker', from: 'User' } })
  await user.next((m) => m.json?.args?.content === 'marker')
  t.same(
    user.received.map((m) => m.json?.type).filter((x) => ['Typing', 'Receipt', 'UnreadCount', 'Ack'].includes(x)),
    [],
    'the seed client never saw a v2 frame',
  )

  // A v2 re-join resumes after lastSeq, with the read state.
  const again = await stack.socket(url, 'pong:support', { v2: true })
  again.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', supportId, from: 'Support', lastSeq: 1 } })
  const history = (await again.nextOfType('ChatHistory')).json.args
  t.equal(history.fromSeq, 2)
  t.same(history.messages.map((m: { seq: number }) => m.seq), [2, 3], 'only the messages after lastSeq')
  t.match((await again.nextOfType('UnreadCount')).json.args, { count: 1 }, 'the unread count after a refresh')

  // EndChat: read-only afterwards.
  again.send({ type: 'EndChat', args: { reason: 'resolved' } })
  t.match((await again.nextOfType('ChatEnded')).json.args, { chatId: visitor.chatId, by: 'Support', reason: 'resolved' })
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'more?', from: 'User' } })
  t.equal((await user.nextOfType('Error')).json.args.code, 'CHAT_ENDED')
})

t.test('v2 Typing reaches the other side and stops by itself', async (t) => {
  const stack = await startStack(t, { env: { TYPING_TIMEOUT_MS: '100' } })
  const { user, agent } = await openChat(stack)
  user.send({ type: 'Typing', args: { state: 'start' } })
  t.match((await agent.nextOfType('Typing')).json.args, { from: 'User', state: 'start' })
  t.match((await agent.nextOfType('Typing')).json.args, { from: 'User', state: 'stop' }, 'a start without a stop ends by itself')
})

t.test('v2 UnreadCount is sent only when it changes: reading one\'s own messages sends none', async (t) => {
  const stack = await startStack(t)
  const { visitor, user, agent, supportId } = await openChat(stack)
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'mine', from: 'Support', clientMessageId: 'a-1' } })
  t.equal((await agent.nextOfType('Ack')).json.args.seq, 1)
  agent.send({ type: 'Read', args: { seq: 1 } })
  t.match((await user.nextOfType('Receipt')).json.args, { seq: 1, status: 'read', from: 'Support' }, 'the visitor is told')
  // A marker: the visitor's message gives the agent one unread; nothing may come before it.
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'theirs', from: 'User' } })
  const first = await agent.nextOfType('UnreadCount')
  t.equal(first.json.args.count, 1, "the agent's first UnreadCount is the one the visitor's message caused, not one for reading its own")
})
