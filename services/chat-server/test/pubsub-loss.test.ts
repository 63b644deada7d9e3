import t, { type Test } from 'tap'
import { once } from 'node:events'
import { storedToV1 } from '@switchboard/protocol'
import { keys, readMessages } from '@switchboard/domain'
import { connectedRedis, openChat, startStack, type ActiveChat, type Received, type TestSocket } from '@switchboard/testing'

/*
 * Redis pub/sub is at most once: what is published while ChatServer's
 * subscriber connection is down never reaches it. Every stored message must
 * still reach every joined socket exactly once, in seq order — v2 sockets
 * with their seq, seed-004 sockets in seed-004 bytes.
 */

type Party = 'User' | 'Support'
const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const chatMessages = (socket: TestSocket) => socket.received.filter((m) => m.json?.type === 'ChatMessage')

interface Sockets {
  chat: ActiveChat
  /** The two v2 sockets openChat made, then a seed-004 visitor and agent on the same chat, on the other instance. */
  all: { name: string; socket: TestSocket; version: 1 | 2 }[]
}

async function chatWithFourSockets(stack: Awaited<ReturnType<typeof startStack>>): Promise<Sockets> {
  const chat = await openChat(stack)
  const v1User = await chat.rejoin('User', { v2: false, instance: 1 })
  const v1Agent = await chat.rejoin('Support', { v2: false, instance: 1 })
  await v1User.nextOfType('ChatHistory')
  await v1Agent.nextOfType('ChatHistory')
  return {
    chat,
    all: [
      { name: 'v2 visitor', socket: chat.user, version: 2 },
      { name: 'v2 agent', socket: chat.agent, version: 2 },
      { name: 'v1 visitor', socket: v1User, version: 1 },
      { name: 'v1 agent', socket: v1Agent, version: 1 },
    ],
  }
}

/** Sends a v2 message (its content doubles as its clientMessageId) and resolves with its Ack's seq. */
async function send(chat: ActiveChat, from: Party, content: string): Promise<number> {
  const socket = from === 'User' ? chat.user : chat.agent
  socket.send(chat.message(from, content, content))
  return (await socket.next(isAck(content))).json.args.seq
}

/**
 * Each socket got every stored message of the chat once, in seq order, in
 * its own protocol's bytes, and nothing else as a ChatMessage.
 */
async function checkEverySocket(t: Test, redis: Awaited<ReturnType<typeof connectedRedis>>, sockets: Sockets): Promise<void> {
  const stored = await readMessages(redis.commands, sockets.chat.chatId, 1)
  const last = JSON.parse(stored.at(-1)!).content as string
  for (const { name, socket, version } of sockets.all) {
    await socket.next(isMessage(last))
    const got = chatMessages(socket).map((m) => m.text)
    const expected = stored.map((s) => (version === 2 ? `{"type":"ChatMessage","args":${s}}` : `{"type":"ChatMessage","args":${storedToV1(s)}}`))
    t.equal(got.length, expected.length, `${name}: ${got.length} messages for ${expected.length} stored`)
    t.same(got, expected, `${name}: every message once, in seq order, as ${version === 2 ? 'v2' : 'seed-004'} bytes`)
  }
}

t.test('CLIENT KILL TYPE pubsub: every socket still gets every message once, in order', async (t) => {
  // Two instances, so messages are published (an instance alone in a chat delivers its messages itself).
  const stack = await startStack(t, { chatServers: 2, subscribers: 0 })
  const app = stack.chatServers[0]!.app
  const subscriber = app.redis.subscriber
  const redis = await connectedRedis(t, stack.redis.url)

  await t.test('messages stored while the subscriber is down, and none after: delivered once it is back', async (t) => {
    const sockets = await chatWithFourSockets(stack)
    const { chat } = sockets
    await send(chat, 'User', 'before')
    const closed = once(subscriber, 'close')
    t.equal(await redis.commands.client('KILL', 'TYPE', 'pubsub'), 2, "both ChatServers' subscriber connections are killed")
    await closed
    const unheard: number[] = []
    for (const [i, from] of (['User', 'Support', 'User', 'Support'] as const).entries()) {
      const seq = await send(chat, from, `while-down-${i}`)
      // Stored while the connection was not ready: published to no subscriber.
      if (subscriber.status !== 'ready') unheard.push(seq)
    }
    t.ok(unheard.length > 0, `${unheard.length} messages stored while nobody was subscribed`)
    await checkEverySocket(t, redis, sockets)
  })

  await t.test('messages flowing both ways while the connection is killed: no gap, none twice', async (t) => {
    const sockets = await chatWithFourSockets(stack)
    const { chat } = sockets
    let stop = false
    let sent = 0
    let unheard = 0
    const waiters: { n: number; resolve: () => void }[] = []
    /** Resolves once `n` messages have been acknowledged in all. */
    const acked = (n: number) => new Promise<void>((resolve) => waiters.push({ n, resolve }))
    const flow = async (from: Party) => {
      for (let i = 0; !stop; i++) {
        await send(chat, from, `${from}-${i}`)
        sent++
        if (subscriber.status !== 'ready') unheard++
        for (const w of waiters.filter((w) => sent >= w.n)) w.resolve()
      }
    }
    const flows = Promise.all([flow('User'), flow('Support')])
    await acked(20)
    const closed = once(subscriber, 'close')
    t.equal(await redis.commands.client('KILL', 'TYPE', 'pubsub'), 2)
    await closed
    await once(subscriber, 'ready')
    // Keep going until well after the subscription is back.
    await acked(sent + 40)
    stop = true
    await flows
    t.ok(unheard > 0, `${unheard} of ${sent} messages stored while nobody was subscribed`)
    await checkEverySocket(t, redis, sockets)
  })

  await t.test('a gap in seqs on the channel is filled from the store first', async (t) => {
    const sockets = await chatWithFourSockets(stack)
    const { chat } = sockets
    const seq = await send(chat, 'User', 'one')
    // A message stored and never published (its publication lost), then one published as usual.
    const first = JSON.parse((await readMessages(redis.commands, chat.chatId, seq, seq))[0]!)
    const silent = JSON.stringify({ ...first, content: 'never-published', seq: seq + 1, messageId: 'f'.repeat(32), clientMessageId: 'silent' })
    await redis.commands.rpush(keys.messages(chat.chatId), silent)
    t.equal(await send(chat, 'Support', 'three'), seq + 2)
    await checkEverySocket(t, redis, sockets)
    t.ok(chatMessages(chat.agent).some((m) => m.json.args.content === 'never-published'), 'the unpublished message reached the agent')
  })
})
