import t from 'tap'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type {} from '@fastify/websocket'
import { WebSocket, WebSocketServer } from 'ws'
import { ChatClient, QueueClient, backoffDelay, registerVisitor, SwitchboardError, type SocketFactory } from '@switchboard/client'
import type { ChatMessage, SupportJoined, Visitor } from '@switchboard/protocol'
import { channel, startRedis, startStack } from '@switchboard/testing'

const createSocket: SocketFactory = (url) => new WebSocket(url) as unknown as ReturnType<SocketFactory>
const fast = { initialMs: 20, maxMs: 200 }

t.test('backoff grows, is capped, and is jittered', async (t) => {
  t.equal(backoffDelay(0, { initialMs: 100, jitter: 0 }), 100)
  t.equal(backoffDelay(3, { initialMs: 100, factor: 2, jitter: 0 }), 800)
  t.equal(backoffDelay(20, { initialMs: 100, maxMs: 5000, jitter: 0 }), 5000)
  t.equal(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 1), 200, 'full jitter halves the delay')
  t.equal(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0), 400)
})

t.test('registerVisitor returns the ids, and the server error code on a bad name', async (t) => {
  const stack = await startStack(t)
  const v = await registerVisitor(stack.chatServers[0]!.http, 'Nika')
  t.match(v, { username: 'Nika', userId: /^[0-9a-f]{32}$/, chatId: /^[0-9a-f]{32}$/ })
  const err = await registerVisitor(stack.chatServers[0]!.http, ' ').catch((e: unknown) => e)
  t.ok(err instanceof SwitchboardError)
  t.equal((err as SwitchboardError).code, 'INVALID_USERNAME')
  t.equal((err as SwitchboardError).status, 400)
})

t.test('v1 (seed 004) visitor and agent clients: the seed flow, then a dropped connection comes back with the history', async (t) => {
  const stack = await startStack(t)
  const chatServer = stack.chatServers[0]!
  const queued = channel<readonly Visitor[]>()
  const queue = new QueueClient({ subscriber: stack.subscribers[0]!.http, createSocket, backoff: fast, handlers: { queue: (v) => queued.push(v) } }).connect()
  t.teardown(() => queue.close())
  t.same(await queued.next(), [], 'the queue starts empty')

  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const userEvents = channel<string>()
  const userMessages: ChatMessage[] = []
  const histories: ChatMessage[][] = []
  const user = new ChatClient({
    chatServer: chatServer.ws,
    identity: { ...visitor, from: 'User' },
    createSocket,
    backoff: fast,
    protocol: 'v1',
    handlers: {
      waiting: () => userEvents.push('waiting'),
      agentJoined: () => userEvents.push('agentJoined'),
      message: (m) => {
        userMessages.push(m)
        userEvents.push(`message:${m.content}`)
      },
      history: (list) => {
        histories.push(list)
        userEvents.push('history')
      },
      state: (s) => userEvents.push(`state:${s}`),
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await userEvents.next(), 'state:connecting')
  t.equal(await userEvents.next(), 'state:open')
  t.equal(await userEvents.next(), 'waiting')
  let list = await queued.next()
  while (list.length === 0) list = await queued.next()
  t.same(list, [visitor], 'the agent sees the visitor')

  queue.claim(visitor)
  const joined = channel<SupportJoined>()
  const agentRejoined = channel<boolean>()
  const agentMessages = channel<ChatMessage>()
  const agent = new ChatClient({
    chatServer: chatServer.http,
    identity: { ...visitor, from: 'Support', supportUserName: 'Vika' },
    createSocket,
    backoff: fast,
    protocol: 'v1',
    handlers: { agentJoined: (j) => joined.push(j), message: (m) => agentMessages.push(m), history: () => agentRejoined.push(true) },
  }).connect()
  t.teardown(() => agent.close())
  const j = await joined.next()
  t.equal(j.supportUserName, 'Vika')
  t.equal(agent.supportId, j.supportId, 'the agent client keeps the supportId')
  t.equal(await userEvents.next(), 'agentJoined')
  t.equal(user.supportId, j.supportId, 'the visitor client keeps the supportId')

  t.ok(user.send('hello'))
  t.equal(await userEvents.next(), 'message:hello')
  t.equal((await agentMessages.next()).content, 'hello')

  // The server drops every socket: the clients reconnect and re-join with the supportId.
  for (const socket of chatServer.app.websocketServer.clients) socket.terminate()
  const seen: string[] = []
  for (let e = await userEvents.next(); e !== 'history'; e = await userEvents.next()) seen.push(e)
  t.ok(seen.includes('state:reconnecting'), 'the visitor client said it was reconnecting')
  t.same(histories.at(-1)?.map((m) => m.content), ['hello'], 'the history came back')

  t.equal(await agentRejoined.next(), true, 'the agent client re-joined too')
  t.ok(agent.send('welcome back'))
  t.equal(await userEvents.next(), 'message:welcome back', 'the conversation goes on')
})

t.test('the queue client reloads the whole queue after a reconnect', async (t) => {
  const stack = await startStack(t)
  const a = await stack.joinVisitor('A')
  const ua = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${a.chatId}`)
  ua.send({ type: 'Join', args: { userId: a.userId, username: 'A', from: 'User' } })
  await ua.nextOfType('UserJoined')

  const queued = channel<readonly Visitor[]>()
  const queue = new QueueClient({ subscriber: stack.subscribers[0]!.ws, createSocket, backoff: fast, handlers: { queue: (v) => queued.push(v) } }).connect()
  t.teardown(() => queue.close())
  let list = await queued.next()
  while (list.length < 1) list = await queued.next()
  t.same(list.map((v) => v.username), ['A'])

  for (const socket of stack.subscribers[0]!.app.websocketServer.clients) socket.terminate()
  list = await queued.next()
  t.same(list, [], 'the list is reset on reconnect')
  list = await queued.next()
  t.same(list.map((v) => v.username), ['A'], 'and loaded again')
})

t.test('v2: a dropped connection resumes after the last seq, and unacked messages are sent again, stored once', async (t) => {
  const stack = await startStack(t)
  const chatServer = stack.chatServers[0]!
  const createV2: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const events = channel<string>()
  const histories: { seqs: (number | undefined)[]; resumed: boolean }[] = []
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
      history: (list, _user, info) => {
        histories.push({ seqs: list.map((m) => m.seq), resumed: info.resumed })
        events.push('history')
      },
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await events.next(), 'waiting')
  t.equal(user.protocol, 'v2', 'the server accepted v2')

  const agent = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  t.equal(await events.next(), 'agentJoined')

  user.send('one')
  const first = [await events.next(), await events.next()].sort()
  t.same(first, ['ack:1', 'message:1:one'], 'stored as seq 1, acked and echoed')

  // The visitor's connection drops; the agent writes meanwhile; the visitor writes while offline.
  for (const socket of chatServer.app.websocketServer.clients) if (socket.protocol === 'switchboard.v2') socket.terminate()
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'two', from: 'Support' } })
  await agent.next((m) => m.json?.args?.content === 'two')
  const id = user.send('three')
  t.type(id, 'string', 'a message sent while offline gets its clientMessageId')
  t.equal(user.pendingCount, 1, 'and waits for an ack')

  const after: string[] = []
  while (after.length < 3) {
    after.push(await events.next())
  }
  t.equal(after[0], 'history', 'the re-join comes first')
  t.same(histories.at(-1), { seqs: [2], resumed: true }, 'the catch-up has only what was missed (no gap, no duplicate)')
  t.same(after.slice(1).sort(), ['ack:3', 'message:3:three'], 'then the offline message is stored, acked and echoed')
  t.equal(user.pendingCount, 0)

  const check = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  check.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support', supportId } })
  const history = await check.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string }) => m.content),
    ['one', 'two', 'three'],
    'each message stored exactly once, in order',
  )
})

t.test('v2: a 1001 close reconnects; the resume starts after the last message received, not after an Ack that overtook one', async (t) => {
  // A scripted server on a real socket: the test decides what each connection receives, and in which order.
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => (offered.has('switchboard.v2') ? 'switchboard.v2' : false) })
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  await once(server, 'listening')
  const connections = channel<{ socket: WebSocket; frames: ReturnType<typeof channel<string>> }>()
  server.on('connection', (socket) => {
    const frames = channel<string>()
    socket.on('message', (data) => frames.push(String(data)))
    connections.push({ socket, frames })
  })
  const { port } = server.address() as { port: number }
  const user = { userId: 'u1', username: 'Nika', chatId: 'c1' }
  const stored = (seq: number, from: string) => ({ ...user, supportId: 's1', content: `m${seq}`, from, seq, messageId: `id${seq}`, timestamp: 't' })
  const feed = (socket: WebSocket, frame: object) => socket.send(JSON.stringify(frame))
  const reconnects = channel<number | undefined>()
  const acked = channel<string>()
  const client = new ChatClient({
    chatServer: `http://127.0.0.1:${port}`,
    identity: { ...user, from: 'User', supportId: 's1' },
    createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>,
    backoff: fast,
    handlers: {
      state: (state, info) => state === 'reconnecting' && reconnects.push(info.code),
      acked: (a) => acked.push(a.clientMessageId),
      history: () => acked.push('history'),
    },
  }).connect()
  t.teardown(() => client.close())

  const first = await connections.next()
  t.equal(JSON.parse(await first.frames.next()).type, 'Join')
  feed(first.socket, { type: 'ChatHistory', args: { user, messages: [stored(1, 'Support')], fromSeq: 1, hasMore: false } })
  t.equal(await acked.next(), 'history')
  const id = client.send('mine')
  t.type(id, 'string')
  t.equal(JSON.parse(await first.frames.next()).args.clientMessageId, id)
  // The agent's seq 2 is on its way through pub/sub when the Ack of the visitor's seq 3 comes straight back; then the server shuts down.
  feed(first.socket, { type: 'Ack', args: { clientMessageId: id, messageId: 'id3', seq: 3, timestamp: 't' } })
  t.equal(await acked.next(), id)
  t.equal(client.pendingCount, 0, 'acknowledged')
  first.socket.close(1001, 'Server is shutting down')
  t.equal(await reconnects.next(), 1001, '1001 (going away) means reconnect')
  // The new connection is being made: the client still speaks v2 and keeps the message.
  t.type(client.send('while away'), 'string', 'a message sent while reconnecting is kept')
  const second = await connections.next()
  const join = JSON.parse(await second.frames.next())
  t.equal(join.type, 'Join')
  t.equal(join.args.lastSeq, 1, 'the re-join asks for everything after seq 1, so seq 2 is not skipped')
  feed(second.socket, { type: 'ChatHistory', args: { user, messages: [stored(2, 'Support'), { ...stored(3, 'User'), clientMessageId: id }], fromSeq: 2, hasMore: false } })
  t.equal(await acked.next(), 'history')
  t.equal(JSON.parse(await second.frames.next()).args.content, 'while away', 'then the message sent meanwhile goes')
  // Once: a marker from the client arrives next, not a second copy.
  client.typing('start')
  t.equal(JSON.parse(await second.frames.next()).type, 'Typing', 'and only once')
})

t.test('v2: a message the server could not store (Redis down) is sent again on the same socket once Redis is back, stored once', async (t) => {
  const file = t
  // Redis keeps its data across the restart (AOF in a directory of this test).
  const dir = await mkdtemp(join(tmpdir(), 'sb-client-aof-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const stack = await startStack(t, { redis: { aof: true, dir } })
  const chatServer = stack.chatServers[0]!
  const createV2: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as ReturnType<SocketFactory>
  const visitor = await registerVisitor(chatServer.http, 'Nika')
  const events = channel<string>()
  const states: string[] = []
  const user = new ChatClient({
    chatServer: chatServer.http,
    identity: { ...visitor, from: 'User' },
    createSocket: createV2,
    backoff: { initialMs: 50, maxMs: 200 },
    handlers: {
      waiting: () => events.push('waiting'),
      agentJoined: () => events.push('agentJoined'),
      acked: (a) => events.push(`ack:${a.seq}`),
      error: (e) => events.push(`error:${e.code}`),
      state: (s) => states.push(s),
    },
  }).connect()
  t.teardown(() => user.close())
  t.equal(await events.next(), 'waiting')
  const agent = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  t.equal(await events.next(), 'agentJoined')
  const opened = states.length

  await stack.redis.stop()
  user.send('while Redis is down')
  t.equal(await events.next(), 'error:STORE_UNAVAILABLE', 'the server says it could not store it')
  t.equal(user.pendingCount, 1, 'the client keeps it')
  const again = await startRedis({ port: stack.redis.port, aof: true, dir })
  file.teardown(() => again.stop())
  // Retries answered STORE_UNAVAILABLE until Redis is back, then one Ack.
  let next = await events.next()
  while (next === 'error:STORE_UNAVAILABLE') next = await events.next()
  t.equal(next, 'ack:1', 'stored as seq 1 once Redis is back')
  t.equal(user.pendingCount, 0)
  t.same(states.slice(opened), [], 'on the same socket: no reconnect')
  const check = await stack.socket(`${chatServer.ws}/chat/${visitor.chatId}`, 'pong:support')
  check.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support', supportId } })
  t.same(
    (await check.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content),
    ['while Redis is down'],
    'stored exactly once',
  )
})
