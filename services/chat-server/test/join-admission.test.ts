import t from 'tap'
import { Errors } from '@switchboard/protocol'
import { startStack, type Stack, type TestSocket } from '@switchboard/testing'

type Visitor = { userId: string; username: string; chatId: string }

const userJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User', ...extra } })
const agentJoin = (v: Visitor, extra: Record<string, unknown> = {}) => ({
  type: 'Join',
  args: { userId: v.userId, username: v.username, supportUserName: 'Vika', from: 'Support', ...extra },
})
const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
const errorOf = (m: { json: any }) => (m.json?.type === 'Error' ? (m.json.args.code as string) : undefined)

const chatUrl = (stack: Stack, v: Visitor) => `${stack.chatServers[0]!.ws}/chat/${v.chatId}`

/** Sends a Join and returns the code of the Error that answers it (a refused Join). */
async function refusedJoin(socket: TestSocket, frame: unknown): Promise<string | undefined> {
  socket.send(frame)
  return errorOf(await socket.next())
}

t.test('MAX_SOCKETS_PER_CHAT=8: sockets whose Join was refused are not admitted to the chat, so they lock out neither the visitor nor the claiming agent', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', MAX_SOCKETS_PER_CHAT: '8' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = chatUrl(stack, visitor)
  const user = await stack.socket(url, 'pong:user')
  user.send(userJoin(visitor))
  await user.nextOfType('UserJoined')

  // Agent A claims the visitor on Subscriber; agent B, any holder of a token, read the userId off the queue.
  const tokenA = await stack.agentToken('Vika', { id: 'agent-a' })
  const tokenB = await stack.agentToken('Boris', { id: 'agent-b' })
  const consoleA = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token: tokenA })
  consoleA.send(joinUser(visitor))
  await consoleA.nextOfType('RemoveUser')

  // 12 sockets (more than the 8 admitted), every one answering pings, every Join refused:
  // the kinds of refusal that come after the frame's own checks, where the admission was taken.
  const refusals: { frame: unknown; code: string }[] = [
    { frame: agentJoin(visitor, { supportUserName: 'Boris' }), code: 'ALREADY_CLAIMED' },
    { frame: agentJoin(visitor, { supportId: '0'.repeat(32), supportUserName: 'Boris' }), code: 'IDENTITY_MISMATCH' },
    { frame: userJoin(visitor, { supportId: 'f'.repeat(32) }), code: 'IDENTITY_MISMATCH' },
  ]
  const attackers: TestSocket[] = []
  for (let i = 0; i < 12; i++) {
    const { frame, code } = refusals[i % refusals.length]!
    // The visitor-side Join needs no token (a token would be refused earlier, admitted or not).
    const socket = await stack.socket(url, 'pong:support', code === 'IDENTITY_MISMATCH' && i % 3 === 2 ? {} : { token: tokenB })
    t.equal(await refusedJoin(socket, frame), code, `attacker ${i + 1}: ${code}`)
    // And once more on the same socket: a second refused Join takes no second admission either.
    t.equal(await refusedJoin(socket, frame), code, `attacker ${i + 1}, again: ${code}`)
    attackers.push(socket)
  }

  // The visitor reloads: 3 tabs of theirs join (3 of the 8 admissions; the first socket holds one too).
  for (let i = 0; i < 3; i++) {
    const tab = await stack.socket(url, 'pong:user')
    tab.send(userJoin(visitor))
    const answer = await tab.next()
    t.equal(answer.json?.type, 'UserJoined', `visitor tab ${i + 1} joins: ${answer.text.slice(0, 120)}`)
  }
  // The claiming agent joins, from two consoles.
  const agentA = await stack.socket(url, 'pong:support', { token: tokenA })
  agentA.send(agentJoin(visitor))
  const joined = await agentA.next()
  t.equal(joined.json?.type, 'SupportJoinedUser', `agent A joins: ${joined.text.slice(0, 120)}`)
  await user.nextOfType('SupportJoinedUser')
  const agentA2 = await stack.socket(url, 'pong:support', { token: tokenA })
  agentA2.send(agentJoin(visitor, { supportId: joined.json.args.supportId }))
  t.equal((await agentA2.nextOfType('ChatHistory')).json.type, 'ChatHistory', 'A’s second console re-joins')

  // The attackers are all still open (they answer pings): the admissions are still counted right.
  t.equal(attackers.filter((s) => s.ws.readyState === s.ws.OPEN).length, 12, 'the refused sockets are still open')
  // 1 + 3 visitor sockets and 2 agent sockets are 6 of 8: two more joins fit, the next is refused.
  const more: string[] = []
  for (let i = 0; i < 3; i++) {
    const tab = await stack.socket(url, 'pong:user')
    tab.send(userJoin(visitor))
    const answer = await tab.next((m) => m.json?.type === 'SupportJoinedUser' || m.json?.type === 'Error')
    more.push(errorOf(answer) ?? answer.json.type)
  }
  t.strictSame(more, ['SupportJoinedUser', 'SupportJoinedUser', 'TOO_MANY_CONNECTIONS'], 'exactly 8 admitted, all sockets that joined')
})

t.test('JOIN_TIMEOUT_SECONDS: a socket that has not joined in time is closed with 4408 JOIN_TIMEOUT; a joined one stays', async (t) => {
  const stack = await startStack(t, { env: { JOIN_TIMEOUT_SECONDS: '0.5', HEARTBEAT_INTERVAL_MS: '100' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = chatUrl(stack, visitor)

  const joined = await stack.socket(url, 'pong:user')
  joined.send(userJoin(visitor))
  await joined.nextOfType('UserJoined')
  const silent = await stack.socket(url, 'pong:user')
  const refused = await stack.socket(url, 'pong:user')
  t.equal(await refusedJoin(refused, userJoin(visitor, { userId: 'a'.repeat(32) })), 'IDENTITY_MISMATCH', 'its Join is refused')
  const openedAt = Date.now()

  for (const [what, socket] of [['a socket that never sent Join', silent], ['a socket whose Join was refused', refused]] as const) {
    const closed = await socket.closed
    t.equal(closed.code, 4408, `${what}: closed with 4408`)
    t.equal(closed.reason, 'JOIN_TIMEOUT')
    t.equal(
      socket.received.at(-1)?.text,
      JSON.stringify({ type: 'Error', args: { code: 'JOIN_TIMEOUT', message: Errors.JOIN_TIMEOUT.message } }),
      `${what}: told why first`,
    )
  }
  t.ok(Date.now() - openedAt < 5000, 'closed soon after the timeout')

  // The joined socket outlives the timeout: it gets pings well past it, and is still served.
  const until = Date.now() + 1000
  while (Date.now() < until) await joined.nextPing()
  t.equal(joined.ws.readyState, joined.ws.OPEN, 'the joined socket is open a second after the timeout')
  joined.send({ type: 'Marker' })
  t.equal(errorOf(await joined.next()), 'UNKNOWN_TYPE', 'and served')
})

t.test('JOIN_TIMEOUT_SECONDS: a Join sent in time but answered late (Redis stalled) is let finish; a late refusal still closes', async (t) => {
  const stack = await startStack(t, { env: { JOIN_TIMEOUT_SECONDS: '0.5', HEARTBEAT_INTERVAL_MS: '100' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = chatUrl(stack, visitor)
  const redisPid = stack.redis.process.pid!
  const resume = () => process.kill(redisPid, 'SIGCONT')
  t.teardown(resume)

  const slow = await stack.socket(url, 'pong:user')
  const slowRefused = await stack.socket(url, 'pong:user')
  // Both sockets are open (their chats were read); now Redis stops answering.
  for (const s of [slow, slowRefused]) {
    s.send({ type: 'Marker' })
    t.equal(errorOf(await s.next()), 'UNKNOWN_TYPE')
  }
  process.kill(redisPid, 'SIGSTOP')
  slow.send(userJoin(visitor))
  slowRefused.send(userJoin(visitor, { userId: 'b'.repeat(32) }))
  // Well past the deadline (pings need no Redis): both are still open, their Joins unanswered.
  const until = Date.now() + 1500
  while (Date.now() < until) await slow.nextPing()
  t.equal(slow.ws.readyState, slow.ws.OPEN, 'a Join still being answered at the deadline is not cut off')
  t.equal(slowRefused.ws.readyState, slowRefused.ws.OPEN)
  resume()

  t.equal((await slow.next()).json?.type, 'UserJoined', 'the late answer arrives')
  t.equal(errorOf(await slowRefused.next()), 'IDENTITY_MISMATCH', 'the late refusal arrives')
  const closed = await slowRefused.closed
  t.equal(closed.reason, 'JOIN_TIMEOUT', 'then the refused socket is closed: its deadline has passed')
  t.equal(closed.code, 4408)

  // The joined one stays, and a second Join on it is refused without closing it.
  slow.send(userJoin(visitor))
  t.equal(errorOf(await slow.next()), 'ALREADY_JOINED')
  slow.send({ type: 'Marker' })
  t.equal(errorOf(await slow.next()), 'UNKNOWN_TYPE', 'still served')
})
