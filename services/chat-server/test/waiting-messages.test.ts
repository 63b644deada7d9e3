import t from 'tap'
import { startStack, type Received, type TestSocket } from '@switchboard/testing'

/*
 * A v2 visitor writes while waiting in the queue (issue 15, item 14): the
 * message is stored (Ack, seq) with no supportId yet, comes back after a
 * reload, and the agent who joins gets it in ChatHistory right after
 * SupportJoinedUser, as a seed-004 agent gets the history of a re-join.
 * A seed-004 visitor still gets NO_AGENT_YET (errors.test.ts).
 */

const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const contents = (m: Received) => (m.json.args.messages as { content: string }[]).map((x) => x.content)

/** The frame types a socket receives up to and including the first of `last`, minus pings. */
async function typesUntil(socket: TestSocket, last: string): Promise<string[]> {
  const types: string[] = []
  for (;;) {
    const m = await socket.next((x) => x.json !== null)
    types.push(m.json.type)
    if (m.json.type === last) return types
  }
}

t.test('messages written while waiting reach the agent who joins, and survive a reload', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const url = `${chat.ws}/chat/${visitor.chatId}`
  const join = { type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } }
  const message = (content: string, clientMessageId: string) => ({ type: 'ChatMessage', args: { userId: visitor.userId, content, from: 'User', clientMessageId } })

  const user = await stack.socket(url, 'pong:user', { v2: true })
  user.send(join)
  await user.nextOfType('UserJoined')
  user.send(message('Hello, is anyone there?', 'w-1'))
  t.match((await user.next(isAck('w-1'))).json.args, { seq: 1 }, 'stored while waiting: Ack with seq 1')
  const echo = await user.nextOfType('ChatMessage')
  t.match(echo.json.args, { content: 'Hello, is anyone there?', seq: 1, from: 'User', supportId: '' }, 'echoed, with no agent yet')
  user.send(message('Hello, is anyone there?', 'w-1'))
  t.match((await user.next(isAck('w-1'))).json.args, { seq: 1 }, 'a retry stores nothing new')
  user.send(message('My card is blocked', 'w-2'))
  t.match((await user.next(isAck('w-2'))).json.args, { seq: 2 })

  // A reload while waiting: the visitor is still waiting, and sees what they wrote.
  await user.close()
  const reloaded = await stack.socket(url, 'pong:user', { v2: true })
  reloaded.send(join)
  t.same((await typesUntil(reloaded, 'ChatHistory')).slice(0, 2), ['UserJoined', 'ChatHistory'], 'UserJoined, then the history so far')
  t.same(contents(reloaded.received.find((m) => m.json?.type === 'ChatHistory')!), ['Hello, is anyone there?', 'My card is blocked'])

  // The queue still lists the visitor; the agent who joins gets the messages.
  const agent = await stack.socket(url, 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const agentFrames = await typesUntil(agent, 'ChatHistory')
  t.same(agentFrames.slice(0, 2), ['SupportJoinedUser', 'ChatHistory'], 'SupportJoinedUser, then the history')
  const history = agent.received.find((m) => m.json?.type === 'ChatHistory')!
  t.same(contents(history), ['Hello, is anyone there?', 'My card is blocked'], 'the agent reads what the visitor wrote while waiting')
  t.equal((await agent.nextOfType('UnreadCount')).json.args.count, 2, 'both are unread for the agent')
  const { supportId } = (await reloaded.nextOfType('SupportJoinedUser')).json.args
  t.equal(reloaded.received.filter((m) => m.json?.type === 'SupportJoinedUser').length, 1, 'the visitor is told once')

  // Written before the visitor heard of the agent (no supportId), it is stored under the agent's.
  reloaded.send(message('Sent as the agent joined', 'w-3'))
  t.match((await reloaded.next(isAck('w-3'))).json.args, { seq: 3 })
  const live = await agent.next((m) => m.json?.type === 'ChatMessage' && m.json.args.seq === 3)
  t.equal(live.json.args.supportId, supportId, 'under the current supportId')
  t.equal(agent.received.filter((m) => m.json?.type === 'SupportJoinedUser').length, 1, 'the agent got SupportJoinedUser once')
})

t.test('a seed-004 agent gets the waiting messages as a ChatHistory after SupportJoinedUser', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Dodo')
  const url = `${chat.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url, 'pong:user', { v2: true })
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', from: 'User' } })
  await user.nextOfType('UserJoined')
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, content: 'first', from: 'User', clientMessageId: 's-1' } })
  await user.next(isAck('s-1'))

  const seedAgent = await stack.socket(url, 'pong:support')
  seedAgent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Dodo', supportUserName: 'Kiku', from: 'Support' } })
  const joined = await seedAgent.next()
  t.equal(joined.json.type, 'SupportJoinedUser')
  const history = await seedAgent.next()
  t.equal(history.json.type, 'ChatHistory')
  t.same(Object.keys(history.json.args), ['user', 'messages'], 'seed-004 fields only')
  t.same(Object.keys(history.json.args.messages[0]), ['userId', 'supportId', 'content', 'timestamp', 'from'], 'each message in seed-004 form')
  t.equal(history.json.args.messages[0].content, 'first')
})

t.test('an agent must name the supportId; a seed-004 visitor still cannot write before an agent', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Zaza')
  const url = `${chat.ws}/chat/${visitor.chatId}`
  const seedUser = await stack.socket(url, 'pong:user')
  seedUser.send({ type: 'Join', args: { userId: visitor.userId, username: 'Zaza', from: 'User' } })
  await seedUser.nextOfType('UserJoined')
  seedUser.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId: '0'.repeat(32), content: 'anyone?', from: 'User' } })
  t.equal((await seedUser.nextOfType('Error')).json.args.code, 'NO_AGENT_YET')

  const agent = await stack.socket(url, 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
  await agent.nextOfType('SupportJoinedUser')
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, content: 'no supportId', from: 'Support', clientMessageId: 'a-1' } })
  const refused = await agent.nextOfType('Error')
  t.match(refused.json.args, { code: 'INVALID_FRAME', clientMessageId: 'a-1' })
})
