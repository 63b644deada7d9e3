import t from 'tap'
import { startStack, type TestSocket } from '@switchboard/testing'

const CHAT_MESSAGE_PREFIX = '{"type":"ChatMessage","args":'

/** The next `n` ChatMessage frames of a socket, in arrival order. */
async function chatMessages(socket: TestSocket, n: number): Promise<string[]> {
  const texts: string[] = []
  for (let i = 0; i < n; i++) texts.push((await socket.nextOfType('ChatMessage')).text)
  return texts
}

t.test('a visitor on one ChatServer and an agent on another', async (t) => {
  const stack = await startStack(t, { chatServers: 2 })
  const [a, b] = stack.chatServers
  t.not(a!.ws, b!.ws, 'two instances on two ports')

  const visitor = await stack.joinVisitor('Nika', a)
  const user = await stack.socket(`${a!.ws}/chat/${visitor.chatId}`)
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')

  const support = await stack.socket(`${b!.ws}/chat/${visitor.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const joinedB = await support.nextOfType('SupportJoinedUser')
  const joinedA = await user.nextOfType('SupportJoinedUser')
  t.equal(joinedA.text, joinedB.text, 'SupportJoinedUser reaches the visitor on instance A')
  const supportId: string = joinedB.json.args.supportId
  t.match(supportId, /^[0-9a-f]{32}$/)

  const send = (from: 'User' | 'Support', content: string) =>
    (from === 'User' ? user : support).send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content, from } })

  const sent: string[] = []
  await t.test('one message each way reaches both, in order', async (t) => {
    send('User', 'hello from A')
    const [u1] = await chatMessages(user, 1)
    const [s1] = await chatMessages(support, 1)
    t.equal(u1, s1)
    t.match(JSON.parse(u1!).args, { content: 'hello from A', from: 'User' })
    send('Support', 'hello from B')
    const [u2] = await chatMessages(user, 1)
    const [s2] = await chatMessages(support, 1)
    t.equal(u2, s2)
    t.match(JSON.parse(u2!).args, { content: 'hello from B', from: 'Support' })
    sent.push(u1!, u2!)
  })

  await t.test('20 messages sent alternately, without waiting, arrive at both in one order', async (t) => {
    const contents = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')} from ${i % 2 === 0 ? 'A' : 'B'}`)
    contents.forEach((content, i) => send(i % 2 === 0 ? 'User' : 'Support', content))
    const [atUser, atSupport] = await Promise.all([chatMessages(user, 20), chatMessages(support, 20)])
    t.same(atUser, atSupport, 'the same frames in the same order on both instances')
    const received = atUser.map((text) => JSON.parse(text).args as { content: string; from: string })
    t.same(received.map((m) => m.content).sort(), [...contents].sort(), 'every message once')
    // each side's own messages keep the order it sent them in
    t.same(
      received.filter((m) => m.from === 'User').map((m) => m.content),
      contents.filter((_, i) => i % 2 === 0),
    )
    t.same(
      received.filter((m) => m.from === 'Support').map((m) => m.content),
      contents.filter((_, i) => i % 2 === 1),
    )
    // timestamps never go backwards in the agreed order
    const stamps = received.map((m) => Date.parse((m as unknown as { timestamp: string }).timestamp))
    t.ok(
      stamps.every((s, i) => i === 0 || s >= stamps[i - 1]! - 50),
      'timestamps follow the order (within clock jitter)',
    )
    sent.push(...atUser)
  })

  await t.test('the history on a re-join, on either instance, is that same order', async (t) => {
    const expected = sent.map((text) => text.slice(CHAT_MESSAGE_PREFIX.length, -1))
    t.equal(expected.length, 22)
    for (const [name, instance, from] of [
      ['A', a!, 'User'],
      ['B', b!, 'Support'],
    ] as const) {
      const again = await stack.socket(`${instance.ws}/chat/${visitor.chatId}`, from === 'User' ? 'pong:user' : 'pong:support')
      again.send({
        type: 'Join',
        args: { userId: visitor.userId, supportId, username: 'Nika', from, ...(from === 'Support' ? { supportUserName: 'Vika' } : {}) },
      })
      const history = await again.nextOfType('ChatHistory')
      t.equal(
        history.text,
        `{"type":"ChatHistory","args":{"user":{"username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"},"messages":[${expected.join(',')}]}}`,
        `re-join on ${name}`,
      )
      await again.close()
    }
  })

  await t.test('a refreshed visitor, now on instance B, keeps talking to the agent', async (t) => {
    await user.close()
    const moved = await stack.socket(`${b!.ws}/chat/${visitor.chatId}`)
    moved.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', from: 'User' } })
    await moved.nextOfType('ChatHistory')
    moved.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'back', from: 'User' } })
    const [m] = await chatMessages(moved, 1)
    t.equal((await support.nextOfType('ChatMessage')).text, m)
  })
})

t.test('two agents on two instances race for one visitor: exactly one wins', async (t) => {
  const stack = await startStack(t, { chatServers: 2 })
  const [a, b] = stack.chatServers
  const visitor = await stack.joinVisitor('Nika', b)
  const user = await stack.socket(`${a!.ws}/chat/${visitor.chatId}`)
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const agents = await Promise.all([a!, b!].map((instance) => stack.socket(`${instance.ws}/chat/${visitor.chatId}`, 'pong:support')))
  agents.forEach((agent, i) =>
    agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: `Agent${i}`, from: 'Support' } }),
  )
  const answers = await Promise.all(agents.map((agent) => agent.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')))
  const winners = answers.filter((m) => m.json.type === 'SupportJoinedUser')
  const losers = answers.filter((m) => m.json.type === 'Error')
  t.equal(winners.length, 1, 'one SupportJoinedUser')
  t.equal(losers.length, 1, 'one Error')
  t.equal(losers[0]?.json.args.code, 'ALREADY_CLAIMED')
  const toUser = await user.nextOfType('SupportJoinedUser')
  t.equal(toUser.text, winners[0]?.text, 'the visitor learns who won')
  // ordering marker: a message from the visitor comes after any other SupportJoinedUser would have
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId: toUser.json.args.supportId, content: 'hi', from: 'User' } })
  await user.nextOfType('ChatMessage')
  t.equal(user.received.filter((m) => m.json?.type === 'SupportJoinedUser').length, 1, 'the visitor got one SupportJoinedUser')
})
