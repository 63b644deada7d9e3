import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { WebSocket } from 'ws'
import { ChatClient, type SocketFactory } from '@switchboard/client'
import { keys } from '@switchboard/domain'
import { startRedisCluster, startStack, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * REDIS_CLUSTER_NODES: the services on a local 3-master Redis Cluster, two
 * instances of each; the seed flow, v2 delivery, a claim race, and where the
 * keys went (all in the slot of the `{sb}` hash tag).
 */

const t0 = Date.now()
const cluster = await startRedisCluster(t, 3)
t.comment(`3-master cluster up in ${Date.now() - t0} ms`)

async function clusterStack(): Promise<Stack> {
  return startStack(t, { chatServers: 2, subscribers: 2, env: { REDIS_CLUSTER_NODES: cluster.nodesEnv, AGENT_AUTH: 'on' } })
}

/** A client of the node that serves the `{sb}` slot, and the others. */
async function nodesBySlot(): Promise<{ owner: Redis; others: Redis[] }> {
  const clients = await Promise.all(
    cluster.nodes.map(async (n) => {
      const c = new Redis(n.url, { lazyConnect: true })
      c.on('error', () => {})
      await c.connect()
      t.teardown(() => c.disconnect())
      return c
    }),
  )
  const slot = Number(await clients[0]!.call('CLUSTER', 'KEYSLOT', keys.queue))
  const counts = await Promise.all(clients.map(async (c) => Number(await c.call('CLUSTER', 'COUNTKEYSINSLOT', slot)) >= 0 && (await c.call('CLUSTER', 'NODES'))))
  const ownerIndex = counts.findIndex((nodes) => {
    const myself = String(nodes)
      .split('\n')
      .find((l) => l.includes('myself'))!
    return myself
      .split(' ')
      .slice(8)
      .some((range) => {
        const [from, to] = range.split('-').map(Number)
        return slot >= from! && slot <= (to ?? from)!
      })
  })
  if (ownerIndex < 0) throw new Error(`no node serves slot ${slot}`)
  return { owner: clients[ownerIndex]!, others: clients.filter((_, i) => i !== ownerIndex) }
}

t.test('the seed-004 flow across two ChatServers and two Subscribers on a Redis Cluster', async (t) => {
  const stack = await clusterStack()
  const [cs0, cs1] = stack.chatServers
  const [sub0, sub1] = stack.subscribers
  const agentOn0 = await stack.socket(`${sub0!.ws}/users`, 'pong:support', { token: await stack.agentToken('Vika') })
  const agentOn1 = await stack.socket(`${sub1!.ws}/users`, 'pong:support', { token: await stack.agentToken('Kiku') })
  for (const a of [agentOn0, agentOn1]) a.send({ type: 'Load' })

  const visitor = await stack.joinVisitor('Nika', cs0)
  const user = await stack.socket(`${cs0!.ws}/chat/${visitor.chatId}`, 'pong:user')
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  const queued = `{"type":"UserJoined","args":{"username":"Nika","userId":"${visitor.userId}","chatId":"${visitor.chatId}"}}`
  t.equal((await user.nextOfType('UserJoined')).text, queued)
  for (const a of [agentOn0, agentOn1]) t.equal((await a.nextOfType('UserJoined')).text, queued, 'agents on both Subscribers see the visitor')

  agentOn1.send({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: 'Nika' } })
  const removed = `{"type":"RemoveUser","args":{"userId":"${visitor.userId}"}}`
  for (const a of [agentOn0, agentOn1]) t.equal((await a.nextOfType('RemoveUser')).text, removed, 'RemoveUser everywhere')

  // The agent's chat socket is on the other ChatServer.
  const support = await stack.socket(`${cs1!.ws}/chat/${visitor.chatId}`, 'pong:support', { token: await stack.agentToken('Kiku') })
  support.send({ type: 'Join', args: { userId: visitor.userId, supportUserName: 'Kiku', username: 'Nika', from: 'Support' } })
  const joined = await support.nextOfType('SupportJoinedUser')
  const { supportId } = joined.json.args
  t.equal((await user.nextOfType('SupportJoinedUser')).text, joined.text, 'the visitor, on the other instance, learns of the agent')

  const sent: string[] = []
  for (let i = 1; i <= 10; i++) {
    const [from, socket] = i % 2 === 1 ? (['User', user] as const) : (['Support', support] as const)
    sent.push(`m${i}`)
    socket.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: `m${i}`, from } })
  }
  // Two senders on two instances: each one's messages in the order sent, both sides in the same (stored) order.
  const received: string[][] = []
  for (const socket of [user, support]) {
    const got: string[] = []
    while (got.length < sent.length) got.push((await socket.nextOfType('ChatMessage')).json.args.content)
    received.push(got)
  }
  const [atVisitor, atAgent] = received as [string[], string[]]
  t.same(atAgent, atVisitor, 'the visitor and the agent get the messages in the same order')
  t.same([...atVisitor].sort(), [...sent].sort(), 'every message once')
  const odd = (c: string) => Number(c.slice(1)) % 2 === 1
  t.same(atVisitor.filter(odd), sent.filter(odd), "the visitor's messages in the order sent")
  t.same(atVisitor.filter((c) => !odd(c)), sent.filter((c) => !odd(c)), "the agent's messages in the order sent")

  const again = await stack.socket(`${cs1!.ws}/chat/${visitor.chatId}`, 'pong:user')
  again.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', from: 'User' } })
  const history = await again.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string }) => m.content),
    atVisitor,
    'a re-join on the other instance gets the whole history, in the same order',
  )

  // Where the data is: every key in the {sb} slot's node, none elsewhere.
  const { owner, others } = await nodesBySlot()
  t.equal(await owner.exists(keys.chat(visitor.chatId), keys.messages(visitor.chatId)), 2, "the chat's keys are on the node that serves {sb}")
  for (const other of others) t.same(await other.keys('*'), [], 'the other nodes hold no Switchboard key')
})

t.test('on a Redis Cluster, 20 agents on two Subscribers racing for one visitor: exactly one wins (5 rounds)', async (t) => {
  const stack = await clusterStack()
  const agents: TestSocket[] = []
  for (let i = 0; i < 20; i++) {
    const socket = await stack.socket(`${stack.subscribers[i % 2]!.ws}/users`, 'pong:support', { token: await stack.agentToken(`Agent${i}`, { id: `agent-${i}` }) })
    socket.send({ type: 'Load' })
    agents.push(socket)
  }
  const commands = stack.chatServers[0]!.app.redis.commands as unknown as Cluster
  for (let round = 1; round <= 5; round++) {
    const visitor = await stack.waitingVisitor(`Visitor${round}`, stack.chatServers[round % 2])
    // Frames of a socket are answered in order: after JoinUser, a frame of an unknown type marks the end of its answer.
    for (const a of agents) {
      a.send({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: visitor.username } })
      a.send({ type: 'Marker' })
    }
    const answers = await Promise.all(
      agents.map(async (a) => {
        const before: string[] = []
        for (;;) {
          const m = await a.next()
          if (m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE') return before
          if (m.json?.type === 'Error') before.push(m.json.args.code)
        }
      }),
    )
    const refused = answers.filter((codes) => codes.length > 0)
    t.equal(refused.length, agents.length - 1, `round ${round}: ${agents.length - 1} agents are refused`)
    t.ok(
      refused.every((codes) => codes.length === 1 && codes[0] === 'ALREADY_CLAIMED'),
      `round ${round}: every refusal is one ALREADY_CLAIMED`,
    )
    const winner = answers.findIndex((codes) => codes.length === 0)
    t.equal(await commands.hget(keys.chat(visitor.chatId), 'claimedBy'), `agent-${winner}`, `round ${round}: the claim record names the winner`)
    for (const a of agents) {
      const removed = a.received.filter((m) => m.json?.type === 'RemoveUser' && m.json.args.userId === visitor.userId)
      if (removed.length === 0) await a.next((m) => m.json?.type === 'RemoveUser' && m.json.args.userId === visitor.userId)
    }
    t.pass(`round ${round}: every agent, on either Subscriber, got RemoveUser`)
  }
  t.equal(await commands.zcard(keys.queue), 0, 'nobody is left in the queue')
})

t.test('the master serving {sb} is killed: a replica takes over, and the chat goes on with nothing acknowledged lost', async (t) => {
  const withReplicas = await startRedisCluster(t, 3, 1)
  const stack = await startStack(t, { env: { REDIS_CLUSTER_NODES: withReplicas.nodesEnv } })
  const chatServer = stack.chatServers[0]!
  const direct = async (url: string) => {
    const c = new Redis(url, { lazyConnect: true, retryStrategy: () => null })
    c.on('error', () => {})
    await c.connect()
    t.teardown(() => c.disconnect())
    return c
  }
  const any = await direct(withReplicas.nodes[0]!.url)
  const slot = Number(await any.call('CLUSTER', 'KEYSLOT', keys.queue))
  const lines = String(await any.call('CLUSTER', 'NODES')).trim().split('\n').map((l) => l.split(' '))
  const master = lines.find((l) => l[2]!.includes('master') && l.slice(8).some((r) => {
    const [from, to] = r.split('-').map(Number)
    return slot >= from! && slot <= (to ?? from)!
  }))!
  const byAddress = (l: string[]) => withReplicas.nodes.find((n) => l[1]!.startsWith(`127.0.0.1:${n.port}@`))!
  const masterNode = byAddress(master)
  // Its replica: the node whose ROLE names it as master.
  let replicaClient: Redis | undefined
  for (const node of withReplicas.nodes) {
    const client = await direct(node.url)
    const role = (await client.call('ROLE')) as [string, string, number]
    if (role[0] === 'slave' && Number(role[2]) === masterNode.port) replicaClient = client
  }
  if (replicaClient === undefined) throw new Error(`no replica of 127.0.0.1:${masterNode.port}`)
  const masterClient = await direct(masterNode.url)

  const visitor = await stack.joinVisitor('Nika')
  const acked: string[] = []
  const received = { User: [] as string[], Support: [] as string[] }
  const client = (from: 'User' | 'Support') =>
    new ChatClient({
      chatServer: chatServer.http,
      identity: { ...visitor, from, ...(from === 'Support' ? { supportUserName: 'Vika' } : {}) },
      createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>,
      backoff: { initialMs: 100, maxMs: 500 },
      handlers: {
        acked: (a) => void acked.push(a.clientMessageId),
        message: (m) => void received[from].push(m.content),
        history: (list) => void received[from].push(...list.map((m) => m.content)),
      },
    }).connect()
  const user = client('User')
  t.teardown(() => user.close())
  await new Promise<void>((resolve) => {
    const wait = () => (user.isOpen ? resolve() : setTimeout(wait, 10))
    wait()
  })
  const agent = client('Support')
  t.teardown(() => agent.close())
  const until = async (what: string, check: () => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  await until('the agent joined', () => user.supportId !== undefined)
  const ids = ['before-1', 'before-2'].map((c) => user.send(c) as string)
  await until('both acknowledged', () => ids.every((id) => acked.includes(id)))
  // The replica has everything the master has: its replication offset reached the master's.
  // (WAIT from a connection that wrote nothing would not wait for anything.)
  const masterOffset = Number(((await masterClient.call('ROLE')) as [string, number])[1])
  let replicaOffset = -1
  for (let i = 0; i < 200 && replicaOffset < masterOffset; i++) {
    replicaOffset = Number(((await replicaClient.call('ROLE')) as [string, string, number, string, number])[4])
    if (replicaOffset < masterOffset) await new Promise((r) => setTimeout(r, 10))
  }
  t.ok(replicaOffset >= masterOffset && masterOffset > 0, `the replica has what was acknowledged (offset ${replicaOffset} of ${masterOffset})`)

  masterNode.process.kill('SIGKILL')
  for (let i = 0; ; i++) {
    const role = (await replicaClient.call('ROLE')) as [string]
    if (role[0] === 'master') break
    if (i > 400) throw new Error('no failover')
    await new Promise((r) => setTimeout(r, 25))
  }
  t.pass('a replica took over the {sb} slot')

  const after = ['after-1', 'after-2'].map((c) => user.send(c) as string)
  await until('sent after the failover: acknowledged', () => after.every((id) => acked.includes(id)))
  await until('the agent has all four', () => ['before-1', 'before-2', 'after-1', 'after-2'].every((c) => received.Support.includes(c)))
  const history = (await replicaClient.lrange(keys.messages(visitor.chatId), 0, -1)).map((m) => JSON.parse(m).content)
  t.same(history, ['before-1', 'before-2', 'after-1', 'after-2'], 'the new master has every acknowledged message once, in order')
  t.same(
    received.Support.filter((c, i, all) => all.indexOf(c) === i),
    history,
    'the agent got them in that order',
  )
})
