import t from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, QueueClient, registerVisitor, type ReceivedMessage, type SocketFactory } from '@switchboard/client'
import { lastSeq, readMessages } from '@switchboard/domain'
import { signAgentToken } from '@switchboard/server-kit'
import { connectedRedis, spawnService, startBalancer, startRedis, type ServiceProcess, type Teardown } from '@switchboard/testing'

// Real processes (the built dist/server.js): run `npx tsc -b` after changing sources.

const createSocket: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
const fast = { initialMs: 20, maxMs: 200 }
const SHUTDOWN_BOUND_MS = 10_000

/** Conditions re-checked whenever a client reports something (`poke`); `until` fails after `ms` naming what it waited for. */
function conditions() {
  const waiting = new Set<{ test: () => boolean; done: () => void }>()
  return {
    poke() {
      for (const w of waiting) if (w.test()) w.done()
    },
    until(what: string, test: () => boolean, ms = 15_000): Promise<void> {
      if (test()) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const w = {
          test,
          done: () => {
            clearTimeout(timer)
            waiting.delete(w)
            resolve()
          },
        }
        const timer = setTimeout(() => {
          waiting.delete(w)
          reject(new Error(`timed out waiting for ${what}`))
        }, ms)
        waiting.add(w)
      })
    },
  }
}

/** One side of a chat as the test sees it: what it sent, what came back, and how its connections ended. */
const notShutdown = (code: string) => code !== 'SHUTTING_DOWN'

class Participant {
  readonly sent: string[] = []
  readonly acked = new Set<string>()
  readonly seqs = new Set<number>()
  /** Close codes of connections that had opened (not of failed reconnect attempts). */
  readonly closeCodes: number[] = []
  readonly errors: string[] = []
  refusedSends = 0
  client!: ChatClient
  #wasOpen = false

  constructor(private readonly poke: () => void) {}

  handlers() {
    const got = (messages: ReceivedMessage[]) => {
      for (const m of messages) if (m.seq !== undefined) this.seqs.add(m.seq)
      this.poke()
    }
    return {
      agentJoined: () => this.poke(),
      waiting: () => this.poke(),
      history: (messages: ReceivedMessage[]) => got(messages),
      message: (m: ReceivedMessage) => got([m]),
      acked: (a: { clientMessageId: string }) => {
        this.acked.add(a.clientMessageId)
        this.poke()
      },
      error: (e: { code: string }) => void this.errors.push(e.code),
      state: (state: string, info: { code?: number }) => {
        if (state === 'open') this.#wasOpen = true
        else if (this.#wasOpen && info.code !== undefined) {
          this.#wasOpen = false
          this.closeCodes.push(info.code)
        }
        this.poke()
      },
    }
  }

  send(content: string): void {
    const id = this.client.send(content)
    if (typeof id === 'string') this.sent.push(id)
    else this.refusedSends++
  }

  /** Received every seq from 1 to `last`. */
  hasAll(last: number): boolean {
    for (let seq = 1; seq <= last; seq++) if (!this.seqs.has(seq)) return false
    return true
  }
}

/** The stored messages of a chat, oldest first. */
async function history(redis: Parameters<typeof readMessages>[0], chatId: string) {
  return (await readMessages(redis, chatId, 1)).map((m) => JSON.parse(m) as { seq: number; from: string; clientMessageId?: string })
}

/** SIGTERM, then the exit: how and how fast. */
async function terminate(proc: ServiceProcess) {
  const started = Date.now()
  proc.kill('SIGTERM')
  const exit = await proc.exited
  return { ...exit, ms: Date.now() - started }
}

t.test('SIGTERM: frames in flight finish and are acknowledged, sockets close with 1001, exit 0 within 10 s; the v2 client re-sends the rest, stored once', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const db = await connectedRedis(t, redis.url)
  const env = { REDIS_URL: redis.url }
  const server = await spawnService(t, 'chat-server', env)
  const ev = conditions()

  const visitor = await registerVisitor(server.http, 'Nika')
  const user = new Participant(ev.poke)
  const agent = new Participant(ev.poke)
  /** What the visitor had seen acknowledged when its socket closed. */
  let ackedAtClose: string[] | undefined
  const userHandlers = user.handlers()
  user.client = new ChatClient({
    chatServer: server.http,
    identity: { ...visitor, from: 'User' },
    createSocket,
    backoff: fast,
    handlers: {
      ...userHandlers,
      state: (state, info) => {
        if (state === 'reconnecting' && ackedAtClose === undefined) ackedAtClose = [...user.acked]
        userHandlers.state(state, info)
      },
    },
  }).connect()
  t.teardown(() => user.client.close())
  await ev.until('the visitor waiting', () => user.client.isOpen)
  agent.client = new ChatClient({
    chatServer: server.http,
    identity: { ...visitor, from: 'Support', supportUserName: 'Vika' },
    createSocket,
    backoff: fast,
    handlers: agent.handlers(),
  }).connect()
  t.teardown(() => agent.client.close())
  await ev.until('the agent joined on both sides', () => user.client.supportId !== undefined && agent.client.supportId !== undefined)

  // Messages keep coming; the signal comes while the server works through them.
  let k = 0
  const sending = setInterval(() => {
    for (let i = 0; i < 5; i++) user.send(`m${k++}`)
  }, 2)
  t.teardown(() => clearInterval(sending))
  await ev.until('messages being stored', () => user.acked.size >= 100)
  const exit = await terminate(server)
  clearInterval(sending)
  t.equal(exit.code, 0, 'the process exits with code 0')
  t.ok(exit.ms < SHUTDOWN_BOUND_MS, `within 10 s (took ${exit.ms} ms)`)
  t.ok(server.logs.some((line) => line.includes('chat-server shutting down') && line.includes('SIGTERM')), 'the log says why it stops')
  t.ok(server.logs.some((line) => line.includes('chat-server shut down')), 'and that it shut down')
  await ev.until('both sockets closed', () => user.closeCodes.length > 0 && agent.closeCodes.length > 0)
  t.same([user.closeCodes[0], agent.closeCodes[0]], [1001, 1001], 'both sockets were closed with 1001 (going away)')

  const stored = (await history(db.commands, visitor.chatId)).map((m) => m.clientMessageId)
  t.comment(`at the signal: ${stored.length} of ${user.sent.length} stored, ${ackedAtClose?.length} acknowledged`)
  t.same(stored, user.sent.slice(0, stored.length), 'what was stored is the first messages, in order')
  t.same([...(ackedAtClose ?? [])].sort(), [...stored].sort(), 'every message stored was acknowledged before the socket closed, and only those')

  // A new instance on the same port: the client re-joins and re-sends what was not acknowledged.
  await spawnService(t, 'chat-server', { ...env, CHAT_SERVER_PORT: String(server.port) })
  await ev.until('every message acknowledged', () => user.client.pendingCount === 0)
  const all = await history(db.commands, visitor.chatId)
  t.same(
    all.map((m) => m.clientMessageId),
    user.sent,
    'in the end every message is stored exactly once, in the order sent',
  )
  await ev.until('the agent has every message', () => agent.hasAll(all.length))
  await ev.until('the visitor has every echo', () => user.hasAll(all.length))
  // Frames that arrived while the instance drained were answered SHUTTING_DOWN (and re-sent): no other error.
  t.same([user.refusedSends, user.errors.filter(notShutdown), agent.errors.filter(notShutdown)], [0, [], []], 'no send refused, no error but SHUTTING_DOWN')
})

t.test('a rolling restart of every instance under load loses nothing: each message stored once, in order, received by both sides; agents stay online', async (t) => {
  const PAIRS = 20
  const secret = 'shutdown-test-secret-0123456789abcdef'
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const db = await connectedRedis(t, redis.url)
  const env = { REDIS_URL: redis.url, AGENT_AUTH: 'on', AGENT_JWT_SECRET: secret, AGENT_OFFLINE_AFTER_SECONDS: '2' }
  const start = (service: 'chat-server' | 'subscriber', port?: number) =>
    spawnService(t, service, port === undefined ? env : { ...env, [service === 'chat-server' ? 'CHAT_SERVER_PORT' : 'SUBSCRIBER_PORT']: String(port) })
  const chatServers = await Promise.all([start('chat-server'), start('chat-server')])
  const subscribers = await Promise.all([start('subscriber'), start('subscriber')])
  const chatLb = await startBalancer(t, chatServers.map((s) => s.port))
  const subLb = await startBalancer(t, subscribers.map((s) => s.port))
  const ev = conditions()

  interface Pair {
    chatId: string
    user: Participant
    agent: Participant
    queue: QueueClient
    queueCloseCodes: number[]
  }
  const agentIds = new Set<string>()
  let allOnlineSeen = false
  /** Set once everyone is online and the load runs (an AgentsOnline read during the sign-ins may arrive late). */
  let watchingPresence = false
  /** Fewest of our agents listed in an AgentsOnline frame while watching. */
  let fewestOnline = PAIRS
  const pairs: Pair[] = []
  const open = async (i: number, t: Teardown): Promise<Pair> => {
    const agentId = `agent-${i}`
    agentIds.add(agentId)
    const token = await signAgentToken(secret, { id: agentId, name: `Agent ${i}`, ttlSeconds: 600 })
    const visitor = await registerVisitor(chatLb.http, `Visitor ${i}`)
    const queueCloseCodes: number[] = []
    let queueWasOpen = false
    const queue = new QueueClient({
      subscriber: subLb.http,
      token,
      createSocket,
      backoff: fast,
      handlers: {
        agents: (list) => {
          const ours = list.filter((a) => agentIds.has(a.agentId)).length
          if (ours === PAIRS) allOnlineSeen = true
          if (watchingPresence) fewestOnline = Math.min(fewestOnline, ours)
          ev.poke()
        },
        state: (state, info) => {
          if (state === 'open') queueWasOpen = true
          else if (queueWasOpen && info.code !== undefined) {
            queueWasOpen = false
            queueCloseCodes.push(info.code)
          }
          ev.poke()
        },
      },
    }).connect()
    t.teardown(() => queue.close())
    const user = new Participant(ev.poke)
    user.client = new ChatClient({ chatServer: chatLb.http, identity: { ...visitor, from: 'User' }, createSocket, backoff: fast, handlers: user.handlers() }).connect()
    t.teardown(() => user.client.close())
    await ev.until(`visitor ${i} connected`, () => user.client.isOpen)
    const agent = new Participant(ev.poke)
    agent.client = new ChatClient({
      chatServer: chatLb.http,
      identity: { ...visitor, from: 'Support', supportUserName: `Agent ${i}` },
      token,
      createSocket,
      backoff: fast,
      handlers: agent.handlers(),
    }).connect()
    t.teardown(() => agent.client.close())
    await ev.until(`pair ${i} joined`, () => user.client.supportId !== undefined && agent.client.supportId !== undefined)
    return { chatId: visitor.chatId, user, agent, queue, queueCloseCodes }
  }
  for (let i = 0; i < PAIRS; i++) pairs.push(await open(i, t))
  const clients = pairs.flatMap((p) => [p.user, p.agent])
  const acks = () => clients.reduce((n, c) => n + c.acked.size, 0)
  await ev.until('every agent online', () => allOnlineSeen)

  // Load: every participant sends a message every 100 ms (400 messages a second in all).
  let k = 0
  const sending = setInterval(() => {
    k++
    for (const [i, p] of pairs.entries()) {
      p.user.send(`u${i}-${k}`)
      p.agent.send(`a${i}-${k}`)
    }
  }, 100)
  t.teardown(() => clearInterval(sending))
  await ev.until('messages flowing', () => acks() >= 400)
  watchingPresence = true

  // One instance at a time: SIGTERM, its exit, a new one on its port, clients back and messages flowing again.
  const restarts: { service: string; code: number | null; ms: number }[] = []
  for (const [service, list] of [
    ['chat-server', chatServers],
    ['subscriber', subscribers],
    ['chat-server', chatServers],
    ['subscriber', subscribers],
  ] as const) {
    const index = restarts.filter((r) => r.service === service).length
    const old = list[index]!
    const exit = await terminate(old)
    restarts.push({ service, code: exit.code, ms: exit.ms })
    if (exit.code !== 0) t.comment(`${service} ${index} exited ${exit.code}; its log ends:\n${old.logs.filter((l) => !l.includes('"reqId"')).slice(-15).join('\n')}`)
    list[index] = await start(service, old.port)
    const before = acks()
    await ev.until(`clients back after restarting ${service} ${index}`, () => clients.every((c) => c.client.isOpen) && pairs.every((p) => p.queue.isOpen))
    await ev.until(`messages flowing after restarting ${service} ${index}`, () => acks() >= before + 400)
  }
  clearInterval(sending)
  t.comment(`restarts (ms to exit): ${restarts.map((r) => `${r.service} ${r.ms}`).join(', ')}`)
  t.same(
    restarts.map((r) => r.code),
    [0, 0, 0, 0],
    'every instance exited with code 0',
  )
  t.ok(
    restarts.every((r) => r.ms < SHUTDOWN_BOUND_MS),
    'each within 10 s',
  )

  await ev.until('every message acknowledged', () => clients.every((c) => c.client.pendingCount === 0))
  let total = 0
  let lost = 0
  let duplicated = 0
  let reordered = 0
  for (const p of pairs) {
    const stored = await history(db.commands, p.chatId)
    total += stored.length
    for (const [who, from] of [
      [p.user, 'User'],
      [p.agent, 'Support'],
    ] as const) {
      const ids = stored.filter((m) => m.from === from).map((m) => m.clientMessageId!)
      const unique = new Set(ids)
      duplicated += ids.length - unique.size
      lost += who.sent.filter((id) => !unique.has(id)).length
      if (JSON.stringify([...unique]) !== JSON.stringify(who.sent.filter((id) => unique.has(id)))) reordered++
    }
  }
  t.comment(`${total} messages in ${PAIRS} chats`)
  t.same({ lost, duplicated, reordered }, { lost: 0, duplicated: 0, reordered: 0 }, 'every message sent is stored exactly once, in the order sent')
  t.equal(total, clients.reduce((n, c) => n + c.sent.length, 0), 'and nothing else is stored')

  const last = new Map(await Promise.all(pairs.map(async (p) => [p, await lastSeq(db.commands, p.chatId)] as const)))
  await ev.until('both sides of every chat have every message (no gap in seq)', () =>
    pairs.every((p) => p.user.hasAll(last.get(p)!) && p.agent.hasAll(last.get(p)!)),
  )
  t.pass('both sides of every chat received every message')
  t.ok(
    clients.every((c) => c.closeCodes.length > 0 && c.closeCodes.every((code) => code === 1001)),
    'every chat socket was moved by a 1001 close, and by nothing else',
  )
  t.ok(
    pairs.every((p) => p.queueCloseCodes.length > 0 && p.queueCloseCodes.every((code) => code === 1001)),
    'so was every queue socket',
  )
  t.equal(fewestOnline, PAIRS, 'no agent looked offline while moving to another Subscriber')
  t.same(
    clients.filter((c) => c.refusedSends > 0 || c.errors.filter(notShutdown).length > 0).length,
    0,
    'no send refused, no error but SHUTTING_DOWN',
  )
})
