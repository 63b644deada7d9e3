import t, { type Test } from 'tap'
import { once } from 'node:events'
import { startStack, type Stack, type TestSocket, startRedis } from '@switchboard/testing'

const STORE_UNAVAILABLE = '{"type":"Error","args":{"code":"STORE_UNAVAILABLE","message":"Storage is unavailable; this may not have taken effect: try again shortly (a v2 message with the same clientMessageId)"}}'

function agent(stack: Stack): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
}

async function health(base: string, path: '/health' | '/ready' = '/ready'): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(`${base}${path}`)
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() }
}

async function killRedis(stack: Stack): Promise<void> {
  const exited = once(stack.redis.process, 'exit')
  stack.redis.process.kill('SIGKILL')
  await exited
}


/** Asks /ready until it answers 200 (bounded: ioredis retries at most every 2 s). */
async function untilHealthy(base: string): Promise<number> {
  for (let attempt = 1; attempt <= 100; attempt++) {
    if ((await health(base)).status === 200) return attempt
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${base}/ready did not recover in 10 s`)
}

t.test('GET /health and GET /ready answer 200 {"status":"ok"} while Redis answers', async (t) => {
  const stack = await startStack(t)
  for (const path of ['/health', '/ready'] as const) {
    const res = await health(stack.subscribers[0]!.http, path)
    t.equal(res.status, 200, path)
    t.match(res.type, /^application\/json/)
    t.same(res.body, { status: 'ok', redis: 'up' })
  }
})

t.test('with Redis gone: /ready is 503, /health 200, the process stays up, and frames get STORE_UNAVAILABLE', async (t) => {
  const stack = await startStack(t)
  const sub = stack.subscribers[0]!
  const loaded = await agent(stack)
  loaded.send({ type: 'Load' })
  loaded.send({ type: 'Marker' })
  await loaded.next((m) => m.json?.args?.code === 'UNKNOWN_TYPE')

  await killRedis(stack)

  const down = await health(sub.http)
  t.equal(down.status, 503, '/ready says 503')
  t.match(down.type, /^application\/json/)
  t.same(down.body, { status: 'unavailable', redis: 'down' })
  const alive = await health(sub.http, '/health')
  t.equal(alive.status, 200, '/health stays 200: the process is fine')
  t.equal(alive.body.status, 'ok')

  // An agent who was connected before: Load is refused quickly, not left hanging.
  const started = Date.now()
  loaded.send({ type: 'Load' })
  t.equal((await loaded.next(undefined, 3000)).text, STORE_UNAVAILABLE, 'Load gets STORE_UNAVAILABLE, exact bytes')
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)

  // An agent who connects while Redis is down.
  const late = await agent(stack)
  late.send({ type: 'Load' })
  t.equal((await late.next(undefined, 3000)).text, STORE_UNAVAILABLE)
  late.send({ type: 'JoinUser', args: { userId: 'a'.repeat(32), chatId: 'b'.repeat(32), username: 'Nika' } })
  t.equal((await late.next(undefined, 3000)).text, STORE_UNAVAILABLE, 'JoinUser too')

  // Still up: sockets open, frames that need no Redis answered, /ready still answering.
  late.send('{')
  t.equal((await late.next()).json.args.code, 'INVALID_JSON')
  t.equal(loaded.ws.readyState, loaded.ws.OPEN)
  t.equal((await health(sub.http)).status, 503, 'and /ready keeps answering')
})

t.test('when Redis comes back, /ready is 200 again and loaded agents get queue events again', async (t) => {
  const stack = await startStack(t)
  const sub = stack.subscribers[0]!
  const loaded = await agent(stack)
  loaded.send({ type: 'Load' })
  loaded.send({ type: 'Marker' })
  await loaded.next((m) => m.json?.args?.code === 'UNKNOWN_TYPE')

  await killRedis(stack)
  t.equal((await health(sub.http)).status, 503)
  loaded.send({ type: 'Load' })
  t.equal((await loaded.next(undefined, 3000)).text, STORE_UNAVAILABLE)

  const again = await startRedis({ port: stack.redis.port })
  t.teardown(() => again.stop())
  await untilHealthy(sub.http)
  await untilHealthy(stack.chatServers[0]!.http)
  t.match((await health(sub.http)).body, { status: 'ok' }, 'healthy again')

  // A visitor joins the (new, empty) Redis: the agent who loaded before the
  // outage gets the live feed again, without sending Load again.
  const visitor = await stack.joinVisitor('Nika')
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user')
  socket.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await socket.nextOfType('UserJoined')
  const live = await loaded.nextOfType('UserJoined', 5000)
  t.equal(live.json.args.userId, visitor.userId, 'queue events reach the agent after Redis came back')
})
