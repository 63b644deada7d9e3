import t from 'tap'
import { once } from 'node:events'
import { Errors } from '@switchboard/protocol'
import { rawConnect, redisReady, metricsDelta, scrapeMetrics, startRedis, startStack } from '@switchboard/testing'

async function get(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url)
  return { status: res.status, body: await res.json() }
}

t.test('/health is the process, /ready is Redis: an outage turns /ready 503 and leaves /health 200', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  t.same(await get(`${chat.http}/health`), { status: 200, body: { status: 'ok', redis: 'up' } })
  t.same(await get(`${chat.http}/ready`), { status: 200, body: { status: 'ok', redis: 'up' } })
  const before = await scrapeMetrics(chat.http)

  const exited = once(stack.redis.process, 'exit')
  stack.redis.process.kill('SIGKILL')
  await exited
  // The subscriber connection notices the lost connection by itself; ready once it has.
  if (chat.app.redis.subscriber.status === 'ready') await once(chat.app.redis.subscriber, 'close')

  t.same(await get(`${chat.http}/ready`), { status: 503, body: { status: 'unavailable', redis: 'down' } }, '/ready 503')
  t.same(await get(`${chat.http}/health`), { status: 200, body: { status: 'ok', redis: 'down' } }, '/health still 200, says Redis is down')
  const down = await scrapeMetrics(chat.http)
  t.ok(Number.isNaN(down.value('switchboard_queue_length')), 'queue length is NaN while Redis does not answer')

  const again = await startRedis({ port: stack.redis.port })
  t.teardown(() => again.stop())
  await redisReady(chat.app)
  t.same(await get(`${chat.http}/ready`), { status: 200, body: { status: 'ok', redis: 'up' } }, '/ready 200 again')
  const after = await scrapeMetrics(chat.http)
  for (const connection of ['commands', 'subscriber']) {
    const moved = metricsDelta(before, after)('switchboard_redis_reconnects_total', { connection })
    t.ok(moved >= 1, `${connection} reconnects counted (${moved})`)
  }
  t.equal(after.value('switchboard_queue_length'), 0, 'queue length read again')
})

t.test('/ready is 503 once the app is closing, while sockets are still being closed', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  // A client that never answers the close: shutdown waits for it, with the HTTP server still listening.
  const raw = await rawConnect(`${chat.ws}/chat/${visitor.chatId}`, { echoClose: false, pong: 'pong:user' })
  t.teardown(() => raw.socket.destroy())
  t.equal((await get(`${chat.http}/ready`)).status, 200)
  const closing = chat.app.close()
  // Nothing announces the close frame's arrival: bounded polling.
  for (let i = 0; i < 250 && raw.closeFrame === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(raw.closeFrame?.code, Errors.SHUTTING_DOWN.closeCode, 'sockets are being closed')
  const ready = await fetch(`${chat.http}/ready`)
  t.equal(ready.status, 503, '/ready 503 while closing')
  await ready.arrayBuffer()
  raw.socket.destroy()
  await closing
})


t.test('metrics move by exactly what a known conversation does', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const sub = stack.subscribers[0]!
  const before = await scrapeMetrics(chat.http)
  t.same(before.malformed, [], 'the exposition parses')
  t.ok(before.has('process_cpu_user_seconds_total'), 'default process metrics are there')
  t.ok(before.has('nodejs_eventloop_lag_seconds'), 'and Node.js ones')

  const visitor = await stack.waitingVisitor('Nika')
  t.equal((await scrapeMetrics(chat.http)).value('switchboard_queue_length'), 1, 'one visitor queued')

  const agent = await stack.socket(`${sub.ws}/users`, 'pong:support')
  agent.send({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: 'Nika' } })
  await agent.nextOfType('RemoveUser')
  t.equal((await scrapeMetrics(chat.http)).value('switchboard_queue_length'), 0, 'claimed: none queued')

  const support = await stack.socket(`${chat.ws}/chat/${visitor.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitor.userId, supportUserName: 'Vika', username: 'Nika', from: 'Support' } })
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await visitor.socket.nextOfType('SupportJoinedUser')
  const joined = await scrapeMetrics(chat.http)
  t.equal(joined.value('switchboard_sockets_open', { socket: 'chat', role: 'visitor' }), 1, 'one visitor socket')
  t.equal(joined.value('switchboard_sockets_open', { socket: 'chat', role: 'agent' }), 1, 'one agent socket')
  t.equal(joined.value('switchboard_sockets_open', { socket: 'chat', role: 'pending' }), 0, 'none pending')

  for (const content of ['one', 'two', 'three']) {
    visitor.socket.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content, from: 'User' } })
    await visitor.socket.nextOfType('ChatMessage')
    await support.nextOfType('ChatMessage')
  }
  visitor.socket.send('{')
  t.equal((await visitor.socket.next()).json.args.code, 'INVALID_JSON')
  visitor.socket.send({ type: 'Marker-1234', args: {} })
  t.equal((await visitor.socket.next()).json.args.code, 'UNKNOWN_TYPE')

  // An error that closes: an Error frame and a close, counted once.
  const wrongId = await stack.socket(`${chat.ws}/chat/not-a-chat-id`)
  t.equal((await wrongId.next()).json.args.code, 'INVALID_CHAT_ID')
  t.equal((await wrongId.closed).code, Errors.INVALID_CHAT_ID.closeCode)
  // A close without an Error frame: a chat that does not exist gets ChatExpired, then 4410.
  const gone = await stack.socket(`${chat.ws}/chat/${'f'.repeat(32)}`)
  t.equal((await gone.closed).code, Errors.CHAT_EXPIRED.closeCode)

  const after = await scrapeMetrics(chat.http)
  t.same(after.malformed, [], 'the exposition parses')
  const d = metricsDelta(before, after)
  t.equal(d('switchboard_messages_stored_total'), 3, 'three messages stored')
  t.equal(d('switchboard_store_duration_seconds_count'), 3, 'three stores timed')
  t.ok(d('switchboard_store_duration_seconds_sum') > 0, 'taking some time')
  t.equal(d('switchboard_frames_in_total', { type: 'Join' }), 2, 'Join in: the visitor, the agent')
  t.equal(d('switchboard_frames_in_total', { type: 'ChatMessage' }), 3, 'ChatMessage in')
  t.equal(d('switchboard_frames_in_total', { type: 'other' }), 2, 'the invalid JSON and the unknown type, as other')
  t.equal(d('switchboard_frames_out_total', { type: 'UserJoined' }), 1, 'UserJoined out')
  t.equal(d('switchboard_frames_out_total', { type: 'SupportJoinedUser' }), 2, 'SupportJoinedUser to both')
  t.equal(d('switchboard_frames_out_total', { type: 'ChatMessage' }), 6, 'each message to both')
  t.equal(d('switchboard_frames_out_total', { type: 'Error' }), 3, 'Error out')
  t.equal(d('switchboard_frames_out_total', { type: 'ChatExpired' }), 1, 'ChatExpired out')
  t.equal(d('switchboard_errors_total', { code: 'INVALID_JSON' }), 1)
  t.equal(d('switchboard_errors_total', { code: 'UNKNOWN_TYPE' }), 1)
  t.equal(d('switchboard_errors_total', { code: 'INVALID_CHAT_ID' }), 1, 'Error frame + close: once')
  t.equal(d('switchboard_errors_total', { code: 'CHAT_EXPIRED' }), 1, 'a close alone counts too')
  t.notOk(after.text.includes('Marker-1234'), 'a client-chosen type never becomes a label')

  await visitor.socket.close()
  await support.close()
  // The server sees the close after the client does: bounded polling for the gauge.
  let open = after
  for (let i = 0; i < 100; i++) {
    open = await scrapeMetrics(chat.http)
    if (open.value('switchboard_sockets_open', { socket: 'chat', role: 'visitor' }) + open.value('switchboard_sockets_open', { socket: 'chat', role: 'agent' }) === 0) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(open.value('switchboard_sockets_open', { socket: 'chat', role: 'visitor' }), 0, 'visitor socket closed')
  t.equal(open.value('switchboard_sockets_open', { socket: 'chat', role: 'agent' }), 0, 'agent socket closed')
})

t.test('/docs/openapi.json describes the HTTP endpoints', async (t) => {
  const stack = await startStack(t)
  const res = await fetch(`${stack.chatServers[0]!.http}/docs/openapi.json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const doc = JSON.parse(await res.text())
  t.match(doc.openapi, /^3\.\d+\.\d+$/)
  t.equal(doc.info.title, 'Switchboard chat-server')
  t.same(Object.keys(doc.paths).sort(), ['/docs/openapi.json', '/health', '/metrics', '/ready', '/status', '/user/join/{userName}'], 'every HTTP route, no WebSocket')
  const join = doc.paths['/user/join/{userName}'].get
  t.match(join.parameters, [{ in: 'path', name: 'userName', required: true }])
  t.same(Object.keys(join.responses).sort(), ['200', '400', '403', '429', '503'])
  t.same(join.responses['200'].content['application/json'].schema.required, ['userId', 'username', 'chatId'])
  t.same(Object.keys(doc.paths['/status'].get.responses).sort(), ['200', '403', '503'])
  t.same(Object.keys(doc.paths['/ready'].get.responses).sort(), ['200', '503'])
  t.same(Object.keys(doc.paths['/health'].get.responses), ['200'])
  t.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain'], '/metrics is text')
})
