import t, { type Test } from 'tap'
import { Errors } from '@switchboard/protocol'
import { startStack, type Received, type RunningApp, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * GET /status on ChatServer (docs/agent-workflow.md): what a visitor may want
 * to know before starting. Agents online (anonymous ones included) and away,
 * visitors waiting, and the estimated wait of the next visitor to join; the
 * same CORS as /user/join.
 */

interface Status {
  agentsOnline: number
  agentsAway: number
  visitorsWaiting: number
  estimatedWaitSeconds: number | null
}

const GRACE_MS = 300
const AUTH_ON = { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: String(GRACE_MS / 1000) }

/** The exact body, in the documented field order. */
const statusText = (s: Status) =>
  `{"agentsOnline":${s.agentsOnline},"agentsAway":${s.agentsAway},"visitorsWaiting":${s.visitorsWaiting},"estimatedWaitSeconds":${s.estimatedWaitSeconds}}`

async function getStatus(on: RunningApp): Promise<{ status: number; text: string; json: any; contentType: string | null }> {
  const res = await fetch(`${on.http}/status`)
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, text, json, contentType: res.headers.get('content-type') }
}

/** Checks GET /status answers 200 with exactly this body. */
async function expectStatus(t: Test, on: RunningApp, expected: Status, what: string): Promise<void> {
  const res = await getStatus(on)
  t.equal(res.status, 200, `${what}: 200`)
  t.equal(res.text, statusText(expected), `${what}: ${statusText(expected)}`)
}

/**
 * Polls GET /status until `predicate` holds, within `timeoutMs`: for changes
 * nothing announces (anonymous agents are not listed in AgentsOnline).
 */
async function statusWhen(on: RunningApp, predicate: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const deadline = Date.now() + timeoutMs
  let last: Status
  for (;;) {
    last = (await getStatus(on)).json
    if (predicate(last)) return last
    if (Date.now() > deadline) throw new Error(`GET /status did not change as expected within ${timeoutMs} ms; last: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

type AgentEntry = { agentId: string; name: string; status: string; activeChats: number }

/**
 * The next AgentsOnline, received from now on (a frame already received
 * does not count), for which `predicate` holds of its agent list.
 */
function agentsOnlineFrom(socket: TestSocket, predicate: (agents: AgentEntry[]) => boolean, timeoutMs?: number): Promise<Received> {
  const from = socket.received.length
  return socket.next((m) => socket.received.indexOf(m) >= from && m.json?.type === 'AgentsOnline' && predicate(m.json.args.agents), timeoutMs)
}

const statusOf = (agents: AgentEntry[], agentId: string) => agents.find((a) => a.agentId === agentId)?.status

function usersSocket(stack: Stack, opts: { token?: string; v2?: boolean } = {}): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', opts)
}

t.test('GET /status counts agents online and away, and drops one after the grace period (AGENT_AUTH on)', async (t) => {
  const stack = await startStack(t, { env: AUTH_ON })
  const chat = stack.chatServers[0]!
  const res = await getStatus(chat)
  t.equal(res.status, 200)
  t.match(res.contentType, /^application\/json/, 'JSON')
  t.same(Object.keys(res.json), ['agentsOnline', 'agentsAway', 'visitorsWaiting', 'estimatedWaitSeconds'], 'exactly these keys, in this order')
  t.equal(res.text, statusText({ agentsOnline: 0, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }), 'nobody at all')

  // An observer (v2, so it hears every presence change): itself an agent online.
  const observer = await usersSocket(stack, { token: await stack.agentToken('Obs', { id: 'obs' }), v2: true })
  await observer.next((m) => m.json?.type === 'AgentsOnline' && statusOf(m.json.args.agents, 'obs') === 'online')
  await expectStatus(t, chat, { agentsOnline: 1, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'the observer is online')

  // A v1 agent socket counts.
  let change = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'vika') === 'online')
  const vika = await usersSocket(stack, { token: await stack.agentToken('Vika', { id: 'vika' }) })
  await change
  await expectStatus(t, chat, { agentsOnline: 2, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'a v1 agent socket: online')

  // A v2 one too; away once it says so.
  change = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'zaza') === 'online')
  const zaza = await usersSocket(stack, { token: await stack.agentToken('Zaza', { id: 'zaza' }), v2: true })
  await change
  await expectStatus(t, chat, { agentsOnline: 3, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'a v2 agent socket: online')
  change = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'zaza') === 'away')
  zaza.send({ type: 'SetStatus', args: { status: 'away' } })
  await change
  await expectStatus(t, chat, { agentsOnline: 2, agentsAway: 1, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'Zaza is away')
  change = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'zaza') === 'online')
  zaza.send({ type: 'SetStatus', args: { status: 'online' } })
  await change
  await expectStatus(t, chat, { agentsOnline: 3, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'Zaza is back online')
  change = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'zaza') === 'away')
  zaza.send({ type: 'SetStatus', args: { status: 'away' } })
  await change

  // Zaza closes her last socket: a reload is not a logout, so she counts until the grace period ends.
  const gone = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'zaza') === undefined, 5000)
  await zaza.close()
  const closedAt = Date.now()
  await expectStatus(t, chat, { agentsOnline: 2, agentsAway: 1, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'just after she left: still away, not gone')
  await gone
  const after = Date.now() - closedAt
  // Leases are renewed every third of the grace period, so the last one may end two thirds of it after the close.
  t.ok(after >= (GRACE_MS * 2) / 3 - 20, `gone only after the grace period (${after} ms after the close)`)
  t.ok(after < GRACE_MS + 3000, `but promptly (${after} ms)`)
  await expectStatus(t, chat, { agentsOnline: 2, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'Zaza gone')

  const vikaGone = agentsOnlineFrom(observer, (agents) => statusOf(agents, 'vika') === undefined, 5000)
  await vika.close()
  await vikaGone
  await expectStatus(t, chat, { agentsOnline: 1, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'Vika gone: only the observer')
})

t.test('visitorsWaiting follows the queue; the estimate is null before any claim, then the next visitor\'s wait', async (t) => {
  const stack = await startStack(t, { chatServers: 2, env: AUTH_ON })
  const [cs0, cs1] = stack.chatServers as [RunningApp, RunningApp]
  const both = async (expected: Status, what: string) => {
    await expectStatus(t, cs0, expected, `${what} (instance 0)`)
    await expectStatus(t, cs1, expected, `${what} (instance 1)`)
  }
  const token = await stack.agentToken('Vika', { id: 'vika' })
  const agent = await usersSocket(stack, { token, v2: true })
  await agent.next((m) => m.json?.type === 'AgentsOnline' && statusOf(m.json.args.agents, 'vika') === 'online')
  await both({ agentsOnline: 1, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'one agent, nobody waiting')

  const nika = await stack.waitingVisitor('Nika', cs0)
  await both({ agentsOnline: 1, agentsAway: 0, visitorsWaiting: 1, estimatedWaitSeconds: null }, 'Nika waits')
  // A registered visitor who has not sent Join is not waiting.
  await stack.joinVisitor('Ghost', cs1)
  await both({ agentsOnline: 1, agentsAway: 0, visitorsWaiting: 1, estimatedWaitSeconds: null }, 'a registration alone is not a visitor waiting')
  const dodo = await stack.joinVisitor('Dodo', cs1)
  const dodoSocket = await stack.socket(`${cs1.ws}/chat/${dodo.chatId}`, 'pong:user', { v2: true })
  dodoSocket.send({ type: 'Join', args: { userId: dodo.userId, username: dodo.username, from: 'User' } })
  await dodoSocket.nextOfType('QueuePosition')
  await both({ agentsOnline: 1, agentsAway: 0, visitorsWaiting: 2, estimatedWaitSeconds: null }, 'Nika and Dodo wait, nobody was claimed yet')

  const since = Date.now()
  agent.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: nika.username } })
  t.equal((await agent.next((m) => m.json?.type === 'RemoveUser' || m.json?.type === 'Error')).json.type, 'RemoveUser', 'Nika claimed')
  const dodoEstimate: number = (await dodoSocket.nextOfType('QueuePosition')).json.args.estimatedWaitSeconds
  const afterClaim = (await getStatus(cs1)).json
  t.match(afterClaim, { agentsOnline: 1, agentsAway: 0, visitorsWaiting: 1 }, 'one claimed, one waiting')
  const estimate = afterClaim.estimatedWaitSeconds
  const bound = Math.max(1, Math.ceil((2 * (Date.now() - since)) / 1000))
  t.ok(Number.isInteger(estimate) && estimate >= 1 && estimate <= bound, `a whole number of seconds in [1, ${bound}] (${estimate})`)
  t.ok(estimate >= dodoEstimate, `the next to join (position 2) waits at least as long as Dodo at position 1 (${estimate} ≥ ${dodoEstimate})`)
  t.same((await getStatus(cs0)).json.visitorsWaiting, 1, 'the other instance agrees')

  // Dodo leaves the queue (EndChat): nobody waits; the estimate stays, from the claim.
  dodoSocket.send({ type: 'EndChat', args: {} })
  await dodoSocket.nextOfType('ChatEnded')
  const empty = (await getStatus(cs0)).json
  t.match(empty, { agentsOnline: 1, agentsAway: 0, visitorsWaiting: 0 }, 'nobody waiting')
  t.ok(Number.isInteger(empty.estimatedWaitSeconds) && empty.estimatedWaitSeconds >= 1, 'the estimate for the next visitor remains')
})

t.test('with AGENT_AUTH off, an anonymous /users socket counts as an agent online', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'off', AGENT_OFFLINE_AFTER_SECONDS: String(GRACE_MS / 1000) } })
  const chat = stack.chatServers[0]!
  await expectStatus(t, chat, { agentsOnline: 0, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'nobody')
  const anonymous = await usersSocket(stack)
  // Nothing announces an anonymous agent: a bounded poll.
  const online = await statusWhen(chat, (s) => s.agentsOnline !== 0, 2000)
  t.strictSame(online, { agentsOnline: 1, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'the anonymous agent is online')
  await anonymous.close()
  const closedAt = Date.now()
  const offline = await statusWhen(chat, (s) => s.agentsOnline === 0, GRACE_MS + 3000)
  const after = Date.now() - closedAt
  t.strictSame(offline, { agentsOnline: 0, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }, 'and offline once the grace period ended')
  t.ok(after >= (GRACE_MS * 2) / 3 - 20, `not before the grace period (${after} ms after the close)`)
})

t.test('GET /status: CORS for an allowed origin, 403 for a foreign one, as /user/join', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const allowed = `http://127.0.0.1:${stack.config.subscriberPort}`

  const ok = await fetch(`${chat.http}/status`, { headers: { origin: allowed } })
  t.equal(ok.status, 200, 'an allowed origin')
  t.equal(ok.headers.get('access-control-allow-origin'), allowed, 'access-control-allow-origin is that origin')
  t.equal(await ok.text(), statusText({ agentsOnline: 0, agentsAway: 0, visitorsWaiting: 0, estimatedWaitSeconds: null }))

  const evil = await fetch(`${chat.http}/status`, { headers: { origin: 'https://evil.example' } })
  t.equal(evil.status, 403, 'a foreign origin')
  t.strictSame(
    await evil.json(),
    { statusCode: 403, code: 'ORIGIN_NOT_ALLOWED', error: 'Forbidden', message: Errors.ORIGIN_NOT_ALLOWED.message },
    'the same JSON error as /user/join',
  )
  t.equal(evil.headers.get('access-control-allow-origin'), null, 'no CORS header for it')

  const none = await fetch(`${chat.http}/status`)
  t.equal(none.status, 200, 'no Origin (not a browser)')
  t.equal(none.headers.get('access-control-allow-origin'), null, 'no CORS header without an Origin')

  const preflight = await fetch(`${chat.http}/status`, { method: 'OPTIONS', headers: { origin: allowed, 'access-control-request-method': 'GET' } })
  t.equal(preflight.status, 204, 'a preflight from an allowed origin')
  t.equal(preflight.headers.get('access-control-allow-origin'), allowed)
})
