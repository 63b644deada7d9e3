import t from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, registerVisitor, type HistoryInfo, type ReceivedMessage, type SocketFactory } from '@switchboard/client'
import { appendMessage, readMessages } from '@switchboard/domain'
import { connectedRedis, spawnService, startBalancer, startRedis } from '@switchboard/testing'

/*
 * One ChatServer instance killed with SIGKILL under its clients: they come
 * back through the load balancer on the other instance, resume after the last
 * seq they saw, and re-send what was not acknowledged with the same
 * clientMessageId. Nothing is missing or doubled, on either side or in the store.
 * Runs the built services (`npx tsc -b` first).
 */

const createSocket: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
const fast = { initialMs: 20, maxMs: 200 }

/** What one ChatClient was told, with a wait that re-checks on every callback (events, not sleeps). */
class Recorder {
  readonly messages: ReceivedMessage[] = []
  readonly histories: HistoryInfo[] = []
  readonly sent: string[] = []
  agentJoined = false
  #waiters: { check: () => boolean; resolve: () => void }[] = []

  changed(): void {
    for (const w of this.#waiters.filter((w) => w.check())) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1)
      w.resolve()
    }
  }

  /** Resolves when `check` holds (checked now and after every callback); fails after `ms`. */
  until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
    if (check()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
      this.#waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      })
    })
  }

  get seqs(): number[] {
    return this.messages.map((m) => m.seq!)
  }
}

t.test('a ChatServer SIGKILLed under its clients: they resume on the other instance with no gap', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { REDIS_URL: redis.url }
  const [a, b] = await Promise.all([spawnService(t, 'chat-server', env), spawnService(t, 'chat-server', env)])
  // Both clients start on instance A, so both lose their connection.
  const balancer = await startBalancer(t, [a.port])

  const visitor = await registerVisitor(balancer.http, 'Nika')
  const clients = { User: new Recorder(), Support: new Recorder() }
  const connect = (from: 'User' | 'Support') => {
    const rec = clients[from]
    const client = new ChatClient({
      chatServer: balancer.ws,
      identity: { ...visitor, from, ...(from === 'Support' ? { supportUserName: 'Vika' } : {}) },
      createSocket,
      backoff: fast,
      handlers: {
        agentJoined: () => {
          rec.agentJoined = true
          rec.changed()
        },
        history: (messages, _user, info) => {
          rec.histories.push(info)
          if (!info.resumed) rec.messages.length = 0
          rec.messages.push(...messages)
          rec.changed()
        },
        message: (m) => {
          rec.messages.push(m)
          rec.changed()
        },
        acked: () => rec.changed(),
        state: () => rec.changed(),
      },
    }).connect()
    t.teardown(() => client.close())
    return client
  }
  const user = connect('User')
  const agent = connect('Support')
  await clients.User.until(() => clients.User.agentJoined, 'the visitor to hear of the agent')
  await clients.Support.until(() => clients.Support.agentJoined, 'the agent to join')
  t.equal(user.protocol, 'v2')
  balancer.backends = [a.port, b.port]

  const sendBoth = (label: string, n: number) => {
    for (let i = 0; i < n; i++) {
      for (const [from, client] of [['User', user], ['Support', agent]] as const) {
        const id = client.send(`${label}-${from}-${i}`)
        // A v2 send always returns its clientMessageId, connected or not.
        if (typeof id !== 'string') throw new Error(`send returned ${String(id)}`)
        clients[from].sent.push(id)
      }
    }
  }
  const bothHave = async (n: number) => {
    for (const rec of Object.values(clients)) await rec.until(() => rec.messages.length >= n, `${n} messages`)
  }

  sendBoth('before', 5)
  await bothHave(10)

  // A burst in flight when the instance stops dead: some stored and acknowledged, maybe some
  // stored without the Ack reaching the client, some never read; then some that reach only its
  // socket buffers (it is frozen), and some sent while the clients are cut off or reconnecting.
  sendBoth('burst', 10)
  await bothHave(11)
  a.kill('SIGSTOP')
  sendBoth('frozen', 3)
  const unackedAtKill = user.pendingCount + agent.pendingCount
  // As if the dying instance had stored the visitor's last one and its Ack was lost with it.
  const store = (await connectedRedis(t, redis.url)).commands
  const storedUnacked = clients.User.sent.at(-1)!
  await appendMessage(
    store,
    { chatId: visitor.chatId, userId: visitor.userId, supportId: user.supportId!, content: 'frozen-User-2', from: 'User', clientMessageId: storedUnacked },
    { chatTtlMs: 3_600_000 },
  )
  const joinsBeforeKill = { User: clients.User.histories.length, Support: clients.Support.histories.length }
  a.kill('SIGKILL')
  t.equal((await a.exited).signal, 'SIGKILL')
  sendBoth('cut-off', 3)
  const total = 2 * (5 + 10 + 3 + 3)

  await bothHave(total)
  for (const [from, rec] of Object.entries(clients)) {
    const client = from === 'User' ? user : agent
    await rec.until(() => client.pendingCount === 0, `${from}: every message acknowledged`)
  }
  t.ok(unackedAtKill >= 6, `${unackedAtKill} messages unacknowledged when the instance was killed`)

  const stored = (await readMessages(store, visitor.chatId, 1)).map(
    (s) => JSON.parse(s) as { seq: number; from: string; clientMessageId: string },
  )
  t.equal(stored.length, total, `${total} messages sent, ${stored.length} stored`)
  const keys = stored.map((m) => `${m.from}:${m.clientMessageId}`)
  t.equal(new Set(keys).size, keys.length, 'none stored twice')
  t.equal(keys.filter((k) => k === `User:${storedUnacked}`).length, 1, 'the one stored without an Ack, re-sent, is stored once')
  t.same(new Set(keys), new Set([...clients.User.sent.map((id) => `User:${id}`), ...clients.Support.sent.map((id) => `Support:${id}`)]), 'every message sent is stored')

  for (const from of ['User', 'Support'] as const) {
    const rec = clients[from]
    t.same(rec.seqs, stored.map((m) => m.seq), `${from}: every message once, in seq order`)
    const resumes = rec.histories.slice(joinsBeforeKill[from])
    t.ok(resumes.length >= 1, `${from}: joined again after the kill`)
    t.ok(resumes.every((h) => h.resumed), `${from}: every re-join resumed after the last seq seen (Join lastSeq)`)
  }
  t.ok((balancer.connections.get(b.port) ?? 0) >= 2, 'both clients came back through the balancer on instance B')
  t.equal(b.child.exitCode, null, 'instance B is still up')
})
