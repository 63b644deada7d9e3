import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { ChatClient, registerVisitor, type PendingMessage, type SocketFactory } from '@switchboard/client'
import { channel, redisReady, startRedis, startStack } from '@switchboard/testing'

const createSocket: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>

t.test('Redis down then back: a message typed after the refused one is stored after it, in the order typed', async (t) => {
  const file = t
  const dir = await mkdtemp(join(tmpdir(), 'sb-client-order-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const stack = await startStack(t, { redis: { aof: true, dir } })
  const chatServer = stack.chatServers[0]!
  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const events = channel<string>()
  const pendingSeen: { contents: string[]; held: boolean }[] = []
  // A long, fixed retry delay: the message typed after Redis is back is sent (or held) well before the retry.
  const RETRY_MS = 4000
  const user = new ChatClient({
    chatServer: chatServer.http,
    identity: { ...visitor, from: 'User' },
    createSocket,
    backoff: { initialMs: RETRY_MS, maxMs: RETRY_MS, jitter: 0 },
    handlers: {
      waiting: () => events.push('waiting'),
      agentJoined: () => events.push('agentJoined'),
      acked: (a) => events.push(`ack:${a.seq}`),
      error: (e) => events.push(`error:${e.code}`),
      pending: (list: readonly PendingMessage[], held: boolean) => pendingSeen.push({ contents: list.map((m) => m.content), held }),
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await events.next(), 'waiting')
  const agent = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  t.equal(await events.next(), 'agentJoined')

  await stack.redis.stop()
  user.send('typed first, during the outage')
  t.equal(await events.next(), 'error:STORE_UNAVAILABLE', 'refused: Redis is down')
  t.same(pendingSeen.at(-1), { contents: ['typed first, during the outage'], held: true }, 'the client says it is held, to be sent later')

  const again = await startRedis({ port: stack.redis.port, aof: true, dir })
  file.teardown(() => again.stop())
  await redisReady(chatServer.app)
  const retryNotYet = user.pendingCount
  user.send('typed second, after recovery')
  t.equal(retryNotYet, 1, 'the retry has not happened yet when the second message is typed')
  t.same(pendingSeen.at(-1), { contents: ['typed first, during the outage', 'typed second, after recovery'], held: true }, 'both shown pending, in the order typed')

  t.equal(await events.next(), 'ack:1', 'the first typed is stored first')
  t.equal(await events.next(), 'ack:2', 'then the second')
  t.equal(user.pendingCount, 0)
  t.same(pendingSeen.at(-1), { contents: [], held: false }, 'nothing pending or held any more')

  const check = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  check.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support', supportId } })
  t.same(
    (await check.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content),
    ['typed first, during the outage', 'typed second, after recovery'],
    'stored once each, in the order typed',
  )
})

t.test('retryNow sends the held messages at once instead of after the backoff', async (t) => {
  const file = t
  const dir = await mkdtemp(join(tmpdir(), 'sb-client-retry-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const stack = await startStack(t, { redis: { aof: true, dir } })
  const chatServer = stack.chatServers[0]!
  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const events = channel<string>()
  const user = new ChatClient({
    chatServer: chatServer.http,
    identity: { ...visitor, from: 'User' },
    createSocket,
    // Far longer than the test may take: only retryNow can send it again in time.
    backoff: { initialMs: 600_000, maxMs: 600_000, jitter: 0 },
    handlers: {
      waiting: () => events.push('waiting'),
      agentJoined: () => events.push('agentJoined'),
      acked: (a) => events.push(`ack:${a.seq}`),
      error: (e) => events.push(`error:${e.code}`),
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await events.next(), 'waiting')
  const agent = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  await agent.nextOfType('SupportJoinedUser')
  t.equal(await events.next(), 'agentJoined')
  t.notOk(user.retryNow(), 'nothing held: nothing to retry')

  await stack.redis.stop()
  user.send('during the outage')
  t.equal(await events.next(), 'error:STORE_UNAVAILABLE')
  const again = await startRedis({ port: stack.redis.port, aof: true, dir })
  file.teardown(() => again.stop())
  await redisReady(chatServer.app)
  t.ok(user.retryNow(), 'sent again now')
  t.equal(await events.next(), 'ack:1', 'and stored')
})
