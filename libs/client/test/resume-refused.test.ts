import t from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, registerVisitor, type SocketFactory } from '@switchboard/client'
import { keys } from '@switchboard/domain'
import { channel, connectedRedis, startStack } from '@switchboard/testing'

/*
 * A resume the server refuses: the client saw seqs the chat no longer has
 * (a Redis failover can lose the last acknowledged writes: docs/operations.md,
 * Durability), so its Join's lastSeq is ahead of the chat and the server
 * answers INVALID_SEQ. The client must join again without lastSeq, or it
 * stays connected and never joined.
 */

const createV2: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
const fast = { initialMs: 20, maxMs: 200 }

t.test('v2: a resume refused with INVALID_SEQ (the store lost the last messages) joins again without lastSeq, and the chat goes on', async (t) => {
  const stack = await startStack(t)
  const chatServer = stack.chatServers[0]!
  const redis = (await connectedRedis(t, stack.redis.url)).commands
  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const events = channel<string>()
  const errors: string[] = []
  const user = new ChatClient({
    chatServer: chatServer.http,
    identity: { ...visitor, from: 'User' },
    createSocket: createV2,
    backoff: fast,
    handlers: {
      waiting: () => events.push('waiting'),
      agentJoined: () => events.push('agentJoined'),
      acked: (a) => events.push(`ack:${a.seq}`),
      message: (m) => events.push(`message:${m.seq}:${m.content}`),
      history: (list, _user, info) => events.push(`history:${list.map((m) => m.seq).join(',')}:${info.resumed ? 'resumed' : 'whole'}`),
      error: (e) => errors.push(e.code),
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await events.next(), 'waiting')

  // A seed-004 agent socket: only the visitor's (v2) connection is dropped below.
  const agent = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  t.equal(await events.next(), 'agentJoined')
  for (const [seq, content] of [[1, 'one'], [2, 'two'], [3, 'three']] as const) {
    user.send(content)
    t.same([await events.next(), await events.next()].sort(), [`ack:${seq}`, `message:${seq}:${content}`], `${content}: seq ${seq}`)
  }

  // The store loses the last two messages, and the visitor's connection drops.
  await redis.ltrim(keys.messages(visitor.chatId), 0, 0)
  for (const socket of chatServer.app.websocketServer.clients) if (socket.protocol === 'switchboard.v2') socket.terminate()

  t.equal(await events.next(), 'history:1:whole', 'after the refused resume: the chat as it is, in place of what was shown')
  t.same(errors, [], 'the refusal was the client’s own business: no error handed on')
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'four', from: 'Support' } })
  t.equal(await events.next(), 'message:2:four', 'and the conversation goes on, live')
  user.send('five')
  t.same([await events.next(), await events.next()].sort(), ['ack:3', 'message:3:five'], 'both ways')
})
