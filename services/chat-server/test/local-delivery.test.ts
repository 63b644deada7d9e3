import t, { type Test } from 'tap'
import type {} from '@switchboard/chat-server'
import { channels, holdChat, keys, releaseChat } from '@switchboard/domain'
import { connectedRedis, openChat, startStack, type ActiveChat, type Received, type TestSocket } from '@switchboard/testing'

/*
 * An instance alone in a chat (the only one with sockets listening on it)
 * does not publish the chat's messages: the store's reply brings each one
 * back and its sockets get it from there. As soon as another instance
 * listens, every message is published again; a hold that was lost (a
 * failover) is taken again when Redis comes back, and what was missed is
 * read from the store.
 */

type Party = 'User' | 'Support'
const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const contents = (socket: TestSocket) => socket.received.filter((m) => m.json?.type === 'ChatMessage').map((m) => m.json.args.content as string)

/** Sends a v2 message (its content doubles as its clientMessageId); resolves once it is acknowledged. */
async function send(chat: ActiveChat, from: Party, content: string): Promise<void> {
  const socket = from === 'User' ? chat.user : chat.agent
  socket.send(chat.message(from, content, content))
  await socket.next(isAck(content))
}

/** What a raw subscriber hears on the chat's channel, and a way to wait for a publication. */
async function listenToChannel(t: Test, url: string, chatId: string) {
  const redis = await connectedRedis(t, url)
  const heard: string[] = []
  const waiters: { predicate: (m: string) => boolean; resolve: () => void }[] = []
  redis.subscriber.on('message', (_channel: string, message: string) => {
    heard.push(message)
    for (const w of waiters.filter((w) => w.predicate(message))) w.resolve()
  })
  await redis.subscriber.subscribe(channels.chat(chatId))
  return {
    redis,
    heard,
    /** Publications of stored messages heard so far. */
    messages: () => heard.filter((m) => m.startsWith('msg:')),
    /** Resolves when a publication matching `predicate` is heard (or has been). */
    hear: (predicate: (m: string) => boolean) =>
      heard.some(predicate) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ predicate, resolve })),
  }
}

t.test('alone in a chat, an instance does not publish its messages; with a second one it does again', async (t) => {
  const stack = await startStack(t, { chatServers: 2, subscribers: 0 })
  const chat = await openChat(stack)
  const channel = await listenToChannel(t, stack.redis.url, chat.chatId)
  const holders = () => channel.redis.commands.hget(keys.chat(chat.chatId), 'holders')
  let markers = 0
  /**
   * Resolves once everything published before now has been heard: one
   * channel's publications arrive in order, and every message awaited so far
   * was stored (and published, if it was) before this marker.
   */
  const published = async () => {
    const marker = `marker-${markers++}`
    await channel.redis.commands.publish(channels.chat(chat.chatId), marker)
    await channel.hear((m) => m === marker)
  }

  t.equal(await holders(), '1', 'the visitor and the agent are on one instance: it alone holds the chat')
  for (const [i, from] of (['User', 'Support', 'User'] as const).entries()) await send(chat, from, `alone-${i}`)
  await chat.agent.next(isMessage('alone-2'))
  await chat.user.next(isMessage('alone-2'))
  await published()
  t.same(channel.messages(), [], 'no message was published')
  t.same(contents(chat.user), ['alone-0', 'alone-1', 'alone-2'], 'the visitor got every message, in order')
  t.same(contents(chat.agent), ['alone-0', 'alone-1', 'alone-2'], 'and so did the agent')
  const unread = await chat.agent.next((m) => m.json?.type === 'UnreadCount' && m.json.args.count === 2)
  t.equal(unread.text, `{"type":"UnreadCount","args":{"chatId":"${chat.chatId}","count":2}}`, "the agent's unread count still comes with the message")

  // A seed-004 agent console on the other instance.
  const elsewhere = await chat.rejoin('Support', { v2: false, instance: 1 })
  const history = await elsewhere.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string }) => m.content),
    ['alone-0', 'alone-1', 'alone-2'],
    'the socket on the other instance gets the history',
  )
  t.equal(await holders(), '2', 'now two instances hold the chat')
  await send(chat, 'User', 'shared-0')
  await send(chat, 'Support', 'shared-1')
  await elsewhere.next(isMessage('shared-1'))
  t.same(contents(elsewhere), ['shared-0', 'shared-1'], 'the other instance hears both, once each')
  t.equal(channel.messages().length, 2, 'both were published')
  await chat.user.next(isMessage('shared-1'))
  t.same(contents(chat.user), ['alone-0', 'alone-1', 'alone-2', 'shared-0', 'shared-1'], 'the sockets of the sending instance get each once')

  // The other instance's socket leaves: its hold goes with it.
  await elsewhere.close()
  for (let i = 0; i < 200 && (await holders()) !== '1'; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await holders(), '1', 'the other instance let go of the chat')
  await send(chat, 'User', 'alone-again')
  await chat.agent.next(isMessage('alone-again'))
  await published()
  t.equal(channel.messages().length, 2, 'alone again: not published')

  // A crashed instance's hold stays: its messages are published when they need not be, never missed.
  await holdChat(channel.redis.commands, chat.chatId, 'an-instance-that-crashed')
  await send(chat, 'Support', 'with-a-stale-hold')
  await channel.hear((m) => m.includes('with-a-stale-hold'))
  await chat.user.next(isMessage('with-a-stale-hold'))
  t.equal(contents(chat.user).filter((c) => c === 'with-a-stale-hold').length, 1, 'delivered once on the sending instance, not once locally and once from Redis')
})

t.test('a hold lost in a failover is taken again when Redis comes back, and what was missed is delivered', async (t) => {
  const stack = await startStack(t, { chatServers: 2, subscribers: 0 })
  const chat = await openChat(stack)
  const redis = await connectedRedis(t, stack.redis.url)
  const other = stack.chatServers[1]!.app
  const elsewhere = await chat.rejoin('User', { v2: false, instance: 1 })
  await elsewhere.nextOfType('ChatHistory')
  await send(chat, 'User', 'before')
  await elsewhere.next(isMessage('before'))

  // What a failover to a replica that had not yet seen the hold looks like: the chat no longer knows about instance 1.
  await releaseChat(redis.commands, chat.chatId, other.chatChannels.holder)
  t.equal(await redis.commands.hget(keys.chat(chat.chatId), 'holders'), '1')
  await send(chat, 'Support', 'missed-0')
  await send(chat, 'User', 'missed-1')
  await chat.user.next(isMessage('missed-1'))
  t.same(contents(elsewhere), ['before'], 'instance 1 heard nothing meanwhile')

  // Instance 1's connection to Redis drops and comes back, as it does in a failover.
  const ready = new Promise((resolve) => other.redis.commands.once('ready', resolve))
  const id = await other.redis.commands.client('ID')
  t.equal(await redis.commands.client('KILL', 'ID', String(id)), 1)
  await ready
  await elsewhere.next(isMessage('missed-1'))
  t.equal(await redis.commands.hget(keys.chat(chat.chatId), 'holders'), '2', 'instance 1 holds the chat again')
  t.same(contents(elsewhere), ['before', 'missed-0', 'missed-1'], 'and its socket got what it missed, once each, in order')
  await send(chat, 'Support', 'after')
  await elsewhere.next(isMessage('after'))
  t.same(contents(elsewhere), ['before', 'missed-0', 'missed-1', 'after'], 'later messages are published to it again')
})
