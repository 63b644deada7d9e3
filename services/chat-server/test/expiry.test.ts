import t from 'tap'
import { Redis } from 'ioredis'
import { WebSocket } from 'ws'
import { startStack, type Stack, type TestSocket } from '@switchboard/testing'
import { keys } from '@switchboard/domain'

const TTL_MS = 1000
// Generous: the chat expires at TTL; the sweeper runs every 50 ms.
const EXPIRY_WAIT_MS = TTL_MS + 4000

type Visitor = { userId: string; username: string; chatId: string }

/** A visitor and an agent in an active chat. */
async function activeChat(stack: Stack, name = 'Nika') {
  const visitor: Visitor = await stack.joinVisitor(name)
  const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url)
  user.send({ type: 'Join', args: { userId: visitor.userId, username: name, from: 'User' } })
  await user.nextOfType('UserJoined')
  const support = await stack.socket(url, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitor.userId, username: name, supportUserName: 'Vika', from: 'Support' } })
  const joined = await support.nextOfType('SupportJoinedUser')
  await user.nextOfType('SupportJoinedUser')
  return { visitor, url, user, support, supportId: joined.json.args.supportId as string, joinedAt: Date.now() }
}

async function redisClient(t: { teardown(fn: () => unknown): void }, url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  t.teardown(() => redis.quit())
  return redis
}

t.test('chat expiry', async (t) => {
  const stack = await startStack(t, { env: { CHAT_TTL_SECONDS: String(TTL_MS / 1000), HEARTBEAT_INTERVAL_MS: '100' }, sweepIntervalMs: 50 })
  const redis = await redisClient(t, stack.redis.url)
  // the scenarios use separate chats and mostly wait for time to pass: run them side by side
  t.jobs = 5

  t.test('an active chat with no message for CHAT_TTL expires: ChatExpired to both, close 4410, keys gone', async (t) => {
    const { visitor, url, user, support, joinedAt } = await activeChat(stack)
    const keysBefore = await redis.keys(`*${visitor.chatId}*`)
    t.same(keysBefore.sort(), [keys.chat(visitor.chatId)], 'the chat hash exists while the chat is alive')
    t.ok(await redis.zscore(keys.deadlines, visitor.chatId), 'and has a deadline')

    const expected = `{"type":"ChatExpired","args":{"chatId":"${visitor.chatId}"}}`
    const [u, s] = await Promise.all([user.nextOfType('ChatExpired', EXPIRY_WAIT_MS), support.nextOfType('ChatExpired', EXPIRY_WAIT_MS)])
    const after = Date.now() - joinedAt
    t.equal(u.text, expected, 'the visitor gets ChatExpired, exact bytes')
    t.equal(s.text, expected, 'the agent gets ChatExpired, exact bytes')
    t.ok(after >= TTL_MS - 50, `not before the TTL (${after} ms after the agent joined)`)
    t.equal((await user.closed).code, 4410)
    t.equal((await support.closed).code, 4410)
    t.equal(user.received.at(-1), u, 'ChatExpired is the last frame the visitor got')
    t.equal(support.received.at(-1), s, 'ChatExpired is the last frame the agent got')

    const left = await redis.keys('*')
    t.same(left.filter((k) => k.includes(visitor.chatId)), [], `no key holds the chat id (keys: ${left.join(', ')})`)
    t.equal(await redis.zscore(keys.deadlines, visitor.chatId), null, 'no deadline left')
    t.equal(await redis.zscore(keys.queue, visitor.chatId), null, 'not in the queue')

    // a re-join on a new socket finds the chat gone
    const again = await stack.socket(url)
    again.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
    t.equal((await again.closed).code, 4410, 're-join: close 4410')
    t.notOk(again.received.some((m) => m.json?.type === 'UserJoined' || m.json?.type === 'ChatHistory'), 'no UserJoined or ChatHistory')
    t.same(again.received.map((m) => m.text), [expected], `re-join: ChatExpired (got ${again.received.map((m) => m.text).join(' | ')})`)
  })

  t.test('a socket already open on the chat that re-joins after expiry gets ChatExpired too', async (t) => {
    const { visitor, url, user, supportId } = await activeChat(stack, 'Gela')
    // a refreshed page: opened while the chat is alive, joins only after it expired
    const late = await stack.socket(url)
    await user.nextOfType('ChatExpired', EXPIRY_WAIT_MS)
    t.equal((await user.closed).code, 4410)
    // it had not joined, so the live ChatExpired was not for it: its Join must find out
    t.equal(late.ws.readyState, WebSocket.OPEN)
    late.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Gela', from: 'User' } })
    t.equal((await late.closed).code, 4410)
    t.same(late.received.map((m) => m.text), [`{"type":"ChatExpired","args":{"chatId":"${visitor.chatId}"}}`])
  })

  t.test('messages keep a chat alive past the TTL', async (t) => {
    const { visitor, user, support, supportId, joinedAt } = await activeChat(stack, 'Dodo')
    const contents: string[] = []
    // one message about every 0.4 TTL, 4 times: 1.6 TTLs in all. The pace is
    // set by the server's pings (every 100 ms); what is tested is that every
    // message is echoed and no ChatExpired comes.
    for (let i = 0; i < 4; i++) {
      for (let p = 0; p < 4; p++) await support.nextPing()
      const from = i % 2 === 0 ? 'User' : 'Support'
      const content = `message ${i}`
      ;(from === 'User' ? user : support).send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content, from } })
      t.equal((await user.nextOfType('ChatMessage')).json.args.content, content)
      t.equal((await support.nextOfType('ChatMessage')).json.args.content, content)
      contents.push(content)
    }
    const alive = Date.now() - joinedAt
    t.ok(alive > 1.5 * TTL_MS, `alive ${alive} ms after the agent joined, more than one TTL`)
    t.notOk([...user.received, ...support.received].some((m) => m.json?.type === 'ChatExpired'), 'no ChatExpired so far')

    // still alive: a re-join gets the whole history
    const again = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`)
    again.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Dodo', from: 'User' } })
    t.same((await again.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content), contents)

    // and once the messages stop, it expires
    await user.nextOfType('ChatExpired', EXPIRY_WAIT_MS)
    await support.nextOfType('ChatExpired', EXPIRY_WAIT_MS)
    await again.nextOfType('ChatExpired', EXPIRY_WAIT_MS)
    t.equal((await again.closed).code, 4410, 'every socket on the chat is closed')
    t.same(await redis.keys(`*${visitor.chatId}*`), [], 'messages and chat keys are gone')
  })

  t.test('a visitor waiting for an agent is kept alive while connected', async (t) => {
    const visitor = await stack.joinVisitor('Zaza')
    const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
    const user: TestSocket = await stack.socket(url)
    user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Zaza', from: 'User' } })
    await user.nextOfType('UserJoined')
    const joined = Date.now()
    // wait out 1.5 TTLs by the server's pings
    while (Date.now() - joined < 1.5 * TTL_MS) await user.nextPing()
    t.notOk(user.received.some((m) => m.json?.type === 'ChatExpired'), 'no ChatExpired while waiting')
    // an agent can still pick the visitor up
    const support = await stack.socket(url, 'pong:support')
    support.send({ type: 'Join', args: { userId: visitor.userId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
    t.equal((await support.nextOfType('SupportJoinedUser')).json.args.userId, visitor.userId)
    t.equal((await user.nextOfType('SupportJoinedUser')).json.args.userId, visitor.userId)
  })

  t.test('a waiting visitor who leaves expires: the agents get RemoveUser', async (t) => {
    const agent = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
    agent.send({ type: 'Load' })
    const visitor = await stack.joinVisitor('Lela')
    const user = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`)
    user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Lela', from: 'User' } })
    await user.nextOfType('UserJoined')
    await agent.next((m) => m.json?.type === 'UserJoined' && m.json.args.chatId === visitor.chatId)
    await user.close()
    const left = Date.now()
    const removed = await agent.next((m) => m.json?.type === 'RemoveUser' && m.json.args.userId === visitor.userId, EXPIRY_WAIT_MS)
    t.equal(removed.text, `{"type":"RemoveUser","args":{"userId":"${visitor.userId}"}}`)
    t.ok(Date.now() - left >= TTL_MS / 2, 'not at once: after the deadline the visitor had when leaving')
    t.same(await redis.keys(`*${visitor.chatId}*`), [], 'the chat keys are gone')
  })
})
