import t from 'tap'
import { startStack } from '@switchboard/testing'

const HEX32 = /^[0-9a-f]{32}$/
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$/

t.test('the whole seed-004 flow, frame by frame', async (t) => {
  const stack = await startStack(t)
  const [chat] = stack.chatServers
  const [sub] = stack.subscribers

  // 1. register
  const res = await fetch(`${chat!.http}/user/join/Nika`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = await res.text()
  const visitor = JSON.parse(body)
  t.same(Object.keys(visitor), ['userId', 'username', 'chatId'])
  t.match(visitor.userId, HEX32)
  t.match(visitor.chatId, HEX32)
  t.equal(visitor.username, 'Nika')

  // 3. an agent loads the (empty) queue first, so it sees the visitor arrive live
  const agent = await stack.socket(`${sub!.ws}/users`, 'pong:support')
  agent.send({ type: 'Load' })

  // 2. the visitor's socket and Join
  const user = await stack.socket(`${chat!.ws}/chat/${visitor.chatId}`, 'pong:user')
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  const userJoined = await user.nextOfType('UserJoined')
  t.equal(userJoined.text, `{"type":"UserJoined","args":{"username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"}}`)

  const live = await agent.nextOfType('UserJoined')
  t.equal(live.text, userJoined.text, 'agents get the same UserJoined frame')

  // 3. claim
  agent.send({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: 'Nika' } })
  const removed = await agent.nextOfType('RemoveUser')
  t.equal(removed.text, `{"type":"RemoveUser","args":{"userId":"${visitor.userId}"}}`)

  // 4. the agent joins the chat
  const support = await stack.socket(`${chat!.ws}/chat/${visitor.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitor.userId, supportUserName: 'Vika', username: 'Nika', from: 'Support' } })
  const supportJoined = await support.nextOfType('SupportJoinedUser')
  const { supportId } = supportJoined.json.args
  t.match(supportId, HEX32)
  t.equal(
    supportJoined.text,
    `{"type":"SupportJoinedUser","args":{"supportId":"${supportId}","supportUserName":"Vika","username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"}}`,
  )
  t.equal((await user.nextOfType('SupportJoinedUser')).text, supportJoined.text, 'the visitor learns the supportId too')

  // 5. visitor → agent
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'Hey, how do I transfer money?', from: 'User' } })
  const m1u = await user.nextOfType('ChatMessage')
  const m1s = await support.nextOfType('ChatMessage')
  t.equal(m1u.text, m1s.text, 'both participants get the same frame')
  t.same(Object.keys(m1u.json.args), ['userId', 'supportId', 'content', 'timestamp', 'from'], 'seed-004 field order')
  t.match(m1u.json.args, { content: 'Hey, how do I transfer money?', from: 'User', userId: visitor.userId, supportId })
  t.match(m1u.json.args.timestamp, ISO_UTC)

  // 6. agent → visitor, with supportUserName riding along
  support.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, supportUserName: 'Vika', content: 'Go to Transfer :)', from: 'Support' } })
  const m2u = await user.nextOfType('ChatMessage')
  const m2s = await support.nextOfType('ChatMessage')
  t.equal(m2u.text, m2s.text)
  t.equal(m2u.json.args.from, 'Support')

  // 7. the visitor refreshes: a new socket, Join with supportId → history
  await user.close()
  const again = await stack.socket(`${chat!.ws}/chat/${visitor.chatId}`, 'pong:user')
  again.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', from: 'User' } })
  const history = await again.nextOfType('ChatHistory')
  t.equal(
    history.text,
    `{"type":"ChatHistory","args":{"user":{"username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"},"messages":[${JSON.stringify(m1u.json.args)},${JSON.stringify(m2u.json.args)}]}}`,
  )

  // 8. the agent refreshes too
  await support.close()
  const agentAgain = await stack.socket(`${chat!.ws}/chat/${visitor.chatId}`, 'pong:support')
  agentAgain.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  t.equal((await agentAgain.nextOfType('ChatHistory')).text, history.text)

  // and the conversation goes on between the new sockets
  agentAgain.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'Still there?', from: 'Support' } })
  t.equal((await again.nextOfType('ChatMessage')).json.args.content, 'Still there?')
})
