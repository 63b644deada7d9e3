import t from 'tap'
import { once } from 'node:events'
import { keys } from '@switchboard/domain'
import { connectedRedis, startStack, type Received, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * A chat put back in the queue (TransferChat {toAgentId: null}) lives on while
 * its visitor waits with the socket open, and so does everything it holds: the
 * messages, the clientMessageIds that make retries safe, and the receipts.
 * The wait here is longer than CHAT_TTL_SECONDS + CHAT_KEY_GRACE_SECONDS,
 * the lifetime the transfer gave the chat's keys.
 */

const TTL_SECONDS = 3
const GRACE_SECONDS = 1

type Visitor = { userId: string; username: string; chatId: string }

const isType = (type: string) => (m: Received) => m.json?.type === type
const isMessage = (content: string) => (m: Received) => m.json?.type === 'ChatMessage' && m.json.args.content === content
const isAck = (id: string) => (m: Received) => m.json?.type === 'Ack' && m.json.args.clientMessageId === id
const isAnswer = (id: string) => (m: Received) => isAck(id)(m) || (m.json?.type === 'Error' && m.json.args.clientMessageId === id)

const message = (v: Visitor, supportId: string, from: 'User' | 'Support', content: string, clientMessageId?: string) => ({
  type: 'ChatMessage',
  args: { userId: v.userId, supportId, content, from, ...(clientMessageId === undefined ? {} : { clientMessageId }) },
})

async function agentSocket(stack: Stack, name: string): Promise<{ id: string; token: string; users: TestSocket }> {
  const id = `agent-${name.toLowerCase()}`
  const token = await stack.agentToken(name, { id })
  const users = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token, v2: true })
  await users.next((m) => m.json?.type === 'AgentsOnline' && m.json.args.agents.some((a: { agentId: string }) => a.agentId === id))
  return { id, token, users }
}

async function claimAndJoin(stack: Stack, agent: { token: string; users: TestSocket }, v: Visitor, name: string): Promise<TestSocket> {
  agent.users.send({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
  await agent.users.next((m) => (m.json?.type === 'RemoveUser' && m.json.args.userId === v.userId) || m.json?.type === 'Error')
  const chat = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${v.chatId}`, 'pong:support', { token: agent.token, v2: true })
  chat.send({ type: 'Join', args: { userId: v.userId, username: v.username, supportUserName: name, from: 'Support' } })
  return chat
}

t.test('a chat back in the queue past the TTL its transfer gave its keys keeps its history, its seqs, its receipts and its retries', async (t) => {
  const stack = await startStack(t, {
    env: { AGENT_AUTH: 'on', CHAT_TTL_SECONDS: String(TTL_SECONDS), CHAT_KEY_GRACE_SECONDS: String(GRACE_SECONDS) },
    sweepIntervalMs: 50,
  })
  const vika = await agentSocket(stack, 'Vika')
  const dora = await agentSocket(stack, 'Dora')
  const visitor = await stack.joinVisitor('Nika')
  const user = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user', { v2: true })
  user.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })
  await user.nextOfType('UserJoined')

  // A conversation with Vika: three messages, the visitor has read the agent's.
  const vikaChat = await claimAndJoin(stack, vika, visitor, 'Vika')
  const oldSupportId: string = (await vikaChat.nextOfType('SupportJoinedUser')).json.args.supportId
  await user.nextOfType('SupportJoinedUser')
  user.send(message(visitor, oldSupportId, 'User', 'one', 'u-1'))
  await user.next(isAck('u-1'))
  vikaChat.send(message(visitor, oldSupportId, 'Support', 'two', 'a-2'))
  await vikaChat.next(isAck('a-2'))
  user.send(message(visitor, oldSupportId, 'User', 'three', 'u-3'))
  const three = (await user.next(isAck('u-3'))).json.args
  t.equal(three.seq, 3)
  await user.next(isMessage('two'))
  user.send({ type: 'Read', args: { seq: 2 } })
  await vikaChat.next((m) => isType('Receipt')(m) && m.json.args.status === 'read')

  // Vika puts Nika back in the queue; Nika waits there with her socket open.
  const redis = (await connectedRedis(t, stack.redis.url)).commands
  vika.users.send({ type: 'TransferChat', args: { chatId: visitor.chatId, toAgentId: null } })
  await user.nextOfType('UserJoined')

  // The wait is an event: a key given the lifetime the transfer gave the chat's keys, and a
  // little more, set after the transfer, expires. Everything the transfer renewed is older.
  const events = (await connectedRedis(t, stack.redis.url)).subscriber
  await events.config('SET', 'notify-keyspace-events', 'Ex')
  await events.subscribe('__keyevent@0__:expired')
  const marker = `marker:${visitor.chatId}`
  const expired = new Set<string>()
  events.on('message', (_channel: string, key: string) => expired.add(key))
  await redis.set(marker, '1', 'PX', (TTL_SECONDS + GRACE_SECONDS) * 1000 + 500)
  while (!expired.has(marker)) await once(events, 'message')
  t.same(
    [keys.chat(visitor.chatId), keys.messages(visitor.chatId), keys.clientIds(visitor.chatId), keys.receipts(visitor.chatId)].filter((k) => expired.has(k)),
    [],
    'none of the chat’s keys expired while its visitor waited',
  )
  t.same(user.received.filter(isType('ChatExpired')), [], 'Nika got no ChatExpired')

  // Dora takes the chat: the whole conversation, and where the receipts stood.
  const doraChat = await claimAndJoin(stack, dora, visitor, 'Dora')
  const supportId: string = (await doraChat.nextOfType('SupportJoinedUser')).json.args.supportId
  const history = (await doraChat.nextOfType('ChatHistory')).json.args
  t.same(
    history.messages.map((m: { seq: number; content: string }) => [m.seq, m.content]),
    [[1, 'one'], [2, 'two'], [3, 'three']],
    'the new agent gets the whole history',
  )
  const read = await doraChat.next((m) => isType('Receipt')(m) || isType('UnreadCount')(m))
  t.same(read.json.args, { chatId: visitor.chatId, seq: 2, status: 'read', from: 'User' }, 'and the visitor’s read receipt')
  await user.nextOfType('SupportJoinedUser')

  // The next message is seq 4, and the visitor's open socket gets it.
  doraChat.send(message(visitor, supportId, 'Support', 'four', 'a-4'))
  t.equal((await doraChat.next(isAnswer('a-4'))).json.args.seq, 4, 'the next message continues the seqs')
  t.equal((await user.next(isMessage('four'))).json.args.seq, 4, 'the visitor’s open socket gets it')

  // A retry of a message stored before the transfer stores nothing new.
  user.send(message(visitor, supportId, 'User', 'three', 'u-3'))
  t.same((await user.next(isAnswer('u-3'))).json.args, three, 'a retried clientMessageId gets the same Ack')

  // A visitor's tab resuming after seq 3 gets exactly what came after.
  const resumed = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user', { v2: true })
  resumed.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, supportId, from: 'User', lastSeq: 3 } })
  const after = (await resumed.next((m) => isType('ChatHistory')(m) || isType('Error')(m))).json.args
  t.same(
    [after.fromSeq, after.messages.map((m: { content: string }) => m.content)],
    [4, ['four']],
    'a resume with lastSeq 3 gets message 4',
  )

  const whole = await redis.lrange(keys.messages(visitor.chatId), 0, -1)
  t.same(
    whole.map((m) => JSON.parse(m).content),
    ['one', 'two', 'three', 'four'],
    'stored once each',
  )
})
