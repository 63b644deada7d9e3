import t from 'tap'
import type {} from '@fastify/websocket'
import { setTimeout as delay } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { ChatClient, type SocketFactory } from '@switchboard/client'
import { channels } from '@switchboard/domain'
import { connectedRedis, startStack } from '@switchboard/testing'

/*
 * 200 clients (100 chats, a visitor and an agent each) each lose their
 * connection 10 times and come back: afterwards nothing is left behind —
 * sockets, channel subscriptions (ours and Redis's), listeners, timers.
 */

const CHATS = 100
const RECONNECTS = 10

/** Polls (bounded: nothing announces "everything is cleaned up") until `read` returns `want`. */
async function settlesTo<T>(read: () => T | Promise<T>, want: T, ms = 5000): Promise<T> {
  const until = Date.now() + ms
  let got = await read()
  while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < until) {
    await delay(20)
    got = await read()
  }
  return got
}

t.test(`${CHATS * 2} clients reconnecting ${RECONNECTS} times each leave nothing behind`, async (t) => {
  const stack = await startStack(t, { subscribers: 0 })
  const server = stack.chatServers[0]!
  const app = server.app
  const redis = (await connectedRedis(t, stack.redis.url)).commands
  const subscriber = app.redis.subscriber

  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const tcp = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
  const redisChannels = async () => ((await redis.pubsub('CHANNELS', channels.chat('*'))) as string[]).length
  const listeners = () => Object.fromEntries(['message', 'ready', 'close', 'error', 'end', 'reconnecting'].map((e) => [e, subscriber.listenerCount(e)]))
  const snapshot = async () => ({
    sockets: app.websocketServer.clients.size,
    channels: app.pubsub.channelCount,
    redisChannels: await redisChannels(),
    listeners: listeners(),
    timers: timers(),
    tcp: tcp(),
  })
  // Registered first: fetch keeps its connections open for a while, and they are not the clients'.
  const visitors = await Promise.all(Array.from({ length: CHATS }, (_, i) => stack.joinVisitor(`Visitor ${i}`)))
  const baseline = await snapshot()

  /** The socket each client is on now, so the test can cut it. */
  const current = new Map<ChatClient, WebSocket>()
  const histories = new Map<ChatClient, number>()
  const waiters = new Map<ChatClient, () => void>()
  const clients: ChatClient[] = []
  const started = Date.now()

  const joined = (client: ChatClient) => new Promise<void>((resolve) => waiters.set(client, resolve))
  const open = (identity: ConstructorParameters<typeof ChatClient>[0]['identity'], waiting?: () => void) => {
    let client!: ChatClient
    const createSocket: SocketFactory = (url, protocols) => {
      const ws = new WebSocket(url, protocols)
      current.set(client, ws)
      return ws as unknown as ReturnType<SocketFactory>
    }
    const settled = () => waiters.get(client)?.()
    client = new ChatClient({
      chatServer: server.ws,
      identity,
      createSocket,
      backoff: { initialMs: 5, maxMs: 50 },
      handlers: {
        ...(waiting ? { waiting } : {}),
        agentJoined: settled,
        history: () => {
          histories.set(client, (histories.get(client) ?? 0) + 1)
          settled()
        },
      },
    })
    clients.push(client)
    return client
  }
  // Each visitor waits, then their agent joins: both know the supportId from then on.
  await Promise.all(
    visitors.map(async (visitor) => {
      let queued!: () => void
      const inQueue = new Promise<void>((resolve) => (queued = resolve))
      const user = open({ ...visitor, from: 'User' }, () => queued())
      const agent = open({ ...visitor, from: 'Support', supportUserName: 'Vika' })
      const userReady = joined(user)
      user.connect()
      await inQueue
      const agentReady = joined(agent)
      agent.connect()
      await Promise.all([userReady, agentReady])
    }),
  )
  t.equal(app.websocketServer.clients.size, CHATS * 2, 'all clients connected')
  const connectedAt = Date.now()

  // Each round: every client's connection is cut; it reconnects, re-joins (ChatHistory), and says something.
  for (let round = 1; round <= RECONNECTS; round++) {
    await Promise.all(
      clients.map(async (client) => {
        const rejoined = joined(client)
        current.get(client)!.terminate()
        await rejoined
        client.send(`round ${round}`)
      }),
    )
  }
  const stormMs = Date.now() - connectedAt
  t.ok(
    clients.every((c) => histories.get(c) === RECONNECTS),
    `every client re-joined ${RECONNECTS} times (each got a ChatHistory)`,
  )

  const during = await settlesTo(async () => ({ sockets: app.websocketServer.clients.size, channels: app.pubsub.channelCount, redisChannels: await redisChannels() }), {
    sockets: CHATS * 2,
    channels: baseline.channels + CHATS,
    redisChannels: CHATS,
  })
  t.same(during, { sockets: CHATS * 2, channels: baseline.channels + CHATS, redisChannels: CHATS }, 'while connected: one socket per client, one subscription per chat')
  const numsub = (await redis.pubsub('NUMSUB', ...visitors.map((v) => channels.chat(v.chatId)))) as (string | number)[]
  t.ok(
    numsub.filter((_, i) => i % 2 === 1).every((n) => Number(n) === 1),
    'Redis has exactly one subscriber per chat channel (this instance, once)',
  )
  t.same(listeners(), baseline.listeners, 'no listener added to the Redis subscriber per socket')
  await settlesTo(() => clients.every((c) => c.pendingCount === 0), true)
  t.ok(clients.every((c) => c.pendingCount === 0), 'every message sent was acknowledged')

  for (const client of clients) client.close()
  const after = await settlesTo(snapshot, baseline)
  t.same(after, baseline, 'sockets, subscriptions, listeners, timers and TCP handles are back to where they started')
  t.comment(`${clients.length} clients x ${RECONNECTS} reconnects in ${stormMs} ms (${Date.now() - started} ms in all); baseline ${JSON.stringify(baseline)}`)
})
