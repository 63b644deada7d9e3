import t from 'tap'
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { ChatClient, QueueClient, registerVisitor, type ConnectionState, type SocketFactory } from '@switchboard/client'
import { readMessages } from '@switchboard/domain'
import { connectedRedis, spawnService, startBalancer, startRedis } from '@switchboard/testing'

/*
 * A server that stops dead (SIGSTOP: the kernel keeps the TCP connections
 * open and answers nothing, as in a silent network partition) sends no more
 * `ping`: the clients take the silence for a dead connection, reconnect
 * through the same URL, and what was not acknowledged goes to the instance
 * they reach. Runs the built services (`npx tsc -b` first).
 */

const HEARTBEAT_INTERVAL_MS = 250
const createSocket: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
const fast = { initialMs: 20, maxMs: 200 }

/** A callback, and a promise of the time of its first call that `check` accepts; rejected after `ms`. */
function waitFor<A extends unknown[]>(check: (...args: A) => boolean, what: string, ms: number) {
  let resolve!: (at: number) => void
  let reject!: (err: Error) => void
  const promise = new Promise<number>((res, rej) => {
    resolve = res
    reject = rej
  })
  const timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms)
  const callback = (...args: A) => {
    if (check(...args)) {
      clearTimeout(timer)
      resolve(Date.now())
    }
  }
  return { promise, callback }
}

t.test('a frozen ChatServer: visitor and agent reconnect within 3 heartbeats, and the unacknowledged message is stored once on the other instance', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { REDIS_URL: redis.url, HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS) }
  const [a, b] = await Promise.all([spawnService(t, 'chat-server', env), spawnService(t, 'chat-server', env)])
  const balancer = await startBalancer(t, [a.port])
  t.teardown(() => a.kill('SIGCONT'))

  const visitor = await registerVisitor(balancer.http, 'Nika')
  const states = { User: [] as ConnectionState[], Support: [] as ConnectionState[] }
  const listeners = { User: [] as ((s: ConnectionState) => void)[], Support: [] as ((s: ConnectionState) => void)[] }
  const joined = { User: waitFor(() => true, 'the visitor hears of the agent', 10_000), Support: waitFor(() => true, 'the agent joins', 10_000) }
  const agentGot = waitFor((content: string) => content === 'while frozen', 'the agent receives the message sent while frozen', 15_000)
  const acked = waitFor(() => true, 'the Ack of the message sent while frozen', 15_000)
  const connect = (from: 'User' | 'Support') => {
    const client = new ChatClient({
      chatServer: balancer.ws,
      identity: { ...visitor, from, ...(from === 'Support' ? { supportUserName: 'Vika' } : {}) },
      createSocket,
      backoff: fast,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      handlers: {
        agentJoined: () => joined[from].callback(),
        message: (m) => from === 'Support' && agentGot.callback(m.content),
        history: (messages) => from === 'Support' && messages.forEach((m) => agentGot.callback(m.content)),
        acked: () => from === 'User' && acked.callback(),
        state: (s) => {
          states[from].push(s)
          for (const l of listeners[from]) l(s)
        },
      },
    }).connect()
    t.teardown(() => client.close())
    return client
  }
  const user = connect('User')
  const agent = connect('Support')
  await Promise.all([joined.User.promise, joined.Support.promise])
  t.equal(user.protocol, 'v2')

  // A health check takes the frozen instance out of the balancer: new connections go to B.
  const lost = { User: waitFor((s: ConnectionState) => s === 'reconnecting', 'the visitor client notices', 5_000), Support: waitFor((s: ConnectionState) => s === 'reconnecting', 'the agent client notices', 5_000) }
  listeners.User.push(lost.User.callback)
  listeners.Support.push(lost.Support.callback)
  a.kill('SIGSTOP')
  const stoppedAt = Date.now()
  balancer.backends = [b.port]
  const id = user.send('while frozen')
  t.type(id, 'string')
  t.equal(user.pendingCount, 1, 'not acknowledged: the server is frozen')

  for (const from of ['User', 'Support'] as const) {
    const after = (await lost[from].promise) - stoppedAt
    // The last frame came at most one interval before the stop; then 3 intervals of silence (plus timer slack on a busy machine).
    t.ok(after <= 4 * HEARTBEAT_INTERVAL_MS + 1000, `${from}: reconnecting ${after} ms after the server froze`)
    t.ok(after >= HEARTBEAT_INTERVAL_MS, `${from}: not before the heartbeats were missed (${after} ms)`)
  }
  await acked.promise
  await agentGot.promise
  t.equal(user.pendingCount, 0, 'acknowledged by the other instance')
  t.ok((balancer.connections.get(b.port) ?? 0) >= 2, 'both came back through the balancer on instance B')

  const store = (await connectedRedis(t, redis.url)).commands
  const stored = (await readMessages(store, visitor.chatId, 1)).map((s) => JSON.parse(s) as { content: string })
  t.same(stored.map((m) => m.content), ['while frozen'], 'stored once')
  t.ok(agent.isOpen && user.isOpen)
})

t.test('a frozen Subscriber: the agent queue client reconnects within 3 heartbeats and loads the queue again after SIGCONT', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { REDIS_URL: redis.url, HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS) }
  const [chat, sub] = await Promise.all([spawnService(t, 'chat-server', env), spawnService(t, 'subscriber', env)])
  t.teardown(() => sub.kill('SIGCONT'))
  const visitor = await registerVisitor(chat.http, 'Nika')
  const user = new ChatClient({ chatServer: chat.ws, identity: { ...visitor, from: 'User' }, createSocket, backoff: fast }).connect()
  t.teardown(() => user.close())

  let listener: (s: ConnectionState) => void = () => {}
  let queued: (names: string[]) => void = () => {}
  const first = waitFor((names: string[]) => names.includes('Nika'), 'the agent sees the visitor', 10_000)
  queued = first.callback
  const queue = new QueueClient({
    subscriber: sub.ws,
    createSocket,
    backoff: fast,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    handlers: { queue: (list) => queued(list.map((v) => v.username)), state: (s) => listener(s) },
  }).connect()
  t.teardown(() => queue.close())
  await first.promise

  const lost = waitFor((s: ConnectionState) => s === 'reconnecting', 'the queue client notices', 5_000)
  listener = lost.callback
  sub.kill('SIGSTOP')
  const stoppedAt = Date.now()
  const after = (await lost.promise) - stoppedAt
  t.ok(after <= 4 * HEARTBEAT_INTERVAL_MS + 1000, `reconnecting ${after} ms after the Subscriber froze`)
  t.notOk(queue.isOpen, 'the dead connection is not taken for open')

  // Back from the freeze: the client reconnects by itself (its handshake is answered now) and loads the queue.
  const again = waitFor((names: string[]) => names.includes('Nika'), 'the queue is loaded again', 15_000)
  const reopened = waitFor((s: ConnectionState) => s === 'open', 'the queue client is open again', 15_000)
  listener = reopened.callback
  queued = again.callback
  sub.kill('SIGCONT')
  await reopened.promise
  await again.promise
  t.ok(queue.isOpen)
})

t.test('a server with a longer heartbeat than the client assumes: a few reconnects, then the client learns it and stays', async (t) => {
  // A scripted server that pings on connect and then every 600 ms; the client assumes 100 ms (3 misses: 300 ms).
  // One ping shows no interval: only a gap between two does.
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  await once(server, 'listening')
  let connections = 0
  let settled!: () => void
  const stayed = new Promise<void>((resolve) => (settled = resolve))
  server.on('connection', (socket) => {
    connections++
    let pongs = 0
    socket.send('ping')
    const timer = setInterval(() => socket.send('ping'), 600)
    socket.on('close', () => clearInterval(timer))
    socket.on('message', (data) => {
      if (String(data) === 'pong:support' && ++pongs === 5) settled()
    })
  })
  const { port } = server.address() as { port: number }
  const queue = new QueueClient({ subscriber: `http://127.0.0.1:${port}`, createSocket, backoff: fast, heartbeatIntervalMs: 100, protocol: 'v1' }).connect()
  t.teardown(() => queue.close())
  const timeout = setTimeout(() => settled(), 15_000)
  await stayed
  clearTimeout(timeout)
  t.ok(connections <= 4, `${connections} connections before one lasted 5 pings`)
  t.ok(queue.isOpen, 'and it is still open')
})

t.test('the client itself blocked longer than the limit (busy event loop): pings that came meanwhile count, no false reconnect', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const sub = await spawnService(t, 'subscriber', { REDIS_URL: redis.url, HEARTBEAT_INTERVAL_MS: '100' })
  const states: ConnectionState[] = []
  const opened = waitFor((s: ConnectionState) => s === 'open', 'the queue client opens', 10_000)
  const queue = new QueueClient({
    subscriber: sub.ws,
    createSocket,
    backoff: fast,
    heartbeatIntervalMs: 100,
    handlers: {
      state: (s) => {
        states.push(s)
        opened.callback(s)
      },
    },
  }).connect()
  t.teardown(() => queue.close())
  await opened.promise
  // This process does nothing else for 5 times the limit of 300 ms; the Subscriber goes on pinging.
  const until = Date.now() + 1500
  while (Date.now() < until) {
    // busy
  }
  // Three more intervals: time enough for a false give-up to show, and for the real pings to be read.
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(states, ['connecting', 'open'], 'still the same connection')
  t.ok(queue.isOpen)
})
