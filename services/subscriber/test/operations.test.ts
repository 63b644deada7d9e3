import t from 'tap'
import { metricsDelta, scrapeMetrics, startStack } from '@switchboard/testing'

t.test('metrics move by exactly what agents do: Load, a claim, a claim too late', async (t) => {
  const stack = await startStack(t)
  const sub = stack.subscribers[0]!
  const before = await scrapeMetrics(sub.http)
  t.same(before.malformed, [], 'the exposition parses')

  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  t.equal((await scrapeMetrics(sub.http)).value('switchboard_queue_length'), 2, 'two queued')

  const vika = await stack.socket(`${sub.ws}/users`, 'pong:support')
  vika.send({ type: 'Load' })
  await vika.next((m) => m.json?.userId === nika.userId)
  await vika.next((m) => m.json?.userId === dodo.userId)
  const lena = await stack.socket(`${sub.ws}/users`, 'pong:support')
  t.equal((await scrapeMetrics(sub.http)).value('switchboard_sockets_open', { socket: 'queue', role: 'agent' }), 2, 'two agent sockets')

  vika.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'Nika' } })
  await vika.nextOfType('RemoveUser')
  // Lena never sent Load: her late claim is refused.
  lena.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'Nika' } })
  t.equal((await lena.next()).json.args.code, 'ALREADY_CLAIMED')

  const after = await scrapeMetrics(sub.http)
  t.same(after.malformed, [], 'the exposition parses')
  const d = metricsDelta(before, after)
  t.equal(d('switchboard_claim_duration_seconds_count'), 2, 'both claim attempts timed')
  t.ok(d('switchboard_claim_duration_seconds_sum') > 0)
  t.equal(d('switchboard_frames_in_total', { type: 'Load' }), 1, 'Load in')
  t.equal(d('switchboard_frames_in_total', { type: 'JoinUser' }), 2, 'JoinUser in')
  t.equal(d('switchboard_frames_out_total', { type: 'Visitor' }), 2, 'Load answers a bare visitor each')
  t.equal(d('switchboard_frames_out_total', { type: 'RemoveUser' }), 1, 'RemoveUser to the loaded agent only')
  t.equal(d('switchboard_frames_out_total', { type: 'Error' }), 1)
  t.equal(d('switchboard_errors_total', { code: 'ALREADY_CLAIMED' }), 1)
  t.equal(after.value('switchboard_queue_length'), 1, 'one left in the queue')
  t.equal(d('switchboard_messages_stored_total'), 0, 'no message goes through the Subscriber')
})

t.test('/docs/openapi.json describes the HTTP endpoints', async (t) => {
  const stack = await startStack(t)
  const res = await fetch(`${stack.subscribers[0]!.http}/docs/openapi.json`)
  t.equal(res.status, 200)
  const doc = JSON.parse(await res.text())
  t.match(doc.openapi, /^3\.\d+\.\d+$/)
  t.equal(doc.info.title, 'Switchboard subscriber')
  t.same(Object.keys(doc.paths).sort(), ['/agent/config', '/agent/me', '/docs/openapi.json', '/health', '/metrics', '/ready'], 'every HTTP route, no WebSocket')
  t.same(Object.keys(doc.paths['/agent/config'].get.responses).sort(), ['200', '403'])
  t.same(Object.keys(doc.paths['/agent/me'].get.responses).sort(), ['200', '401', '403'])
  t.same(Object.keys(doc.paths['/ready'].get.responses).sort(), ['200', '503'])
})

t.test('route schemas change no byte of the answers', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const base = stack.subscribers[0]!.http
  const config = await fetch(`${base}/agent/config`)
  t.equal(await config.text(), `{"agentAuth":true,"maxChatsPerAgent":5,"chatServer":"${stack.chatServers[0]!.http}"}`)
  const anonymous = await fetch(`${base}/agent/me`)
  t.equal(anonymous.status, 401)
  t.equal(await anonymous.text(), '{"statusCode":401,"code":"TOKEN_MISSING","error":"Unauthorized","message":"An agent token is required (Authorization: Bearer …, or ?token=…)"}')
  const token = await stack.agentToken('Vika', { id: 'agent-vika' })
  // Repeated query parameters reach the route as they did before it had a schema.
  const me = await fetch(`${base}/agent/me?token=${token}&x=1&x=2`)
  t.equal(await me.text(), '{"agentId":"agent-vika","name":"Vika"}')
})
