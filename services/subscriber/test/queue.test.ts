import t from 'tap'
import { startStack, type Stack, type TestSocket } from '@switchboard/testing'


async function agent(stack: Stack, i = 0): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support')
}

const bare = (v: { username: string; userId: string; chatId: string }) =>
  `{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}`
const userJoined = (v: { username: string; userId: string; chatId: string }) =>
  `{"type":"UserJoined","args":{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}}`

/**
 * Sends a frame the server answers with an Error (frames of one socket are
 * handled in order), waits for that answer, and returns every frame the
 * socket had received before it and not yet consumed.
 */
async function framesBeforeMarker(socket: TestSocket): Promise<string[]> {
  socket.send({ type: 'Marker' })
  const marker = await socket.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
  const index = socket.received.indexOf(marker)
  return socket.unconsumed.filter((m) => socket.received.indexOf(m) < index).map((m) => m.text)
}

t.test('Load on an empty queue sends nothing, then streams UserJoined for each visitor who joins', async (t) => {
  const stack = await startStack(t)
  const a = await agent(stack)
  a.send({ type: 'Load' })
  t.same(await framesBeforeMarker(a), [], 'an empty queue sends no frame at all')

  const nika = await stack.waitingVisitor('Nika')
  const live = await a.nextOfType('UserJoined')
  t.equal(live.text, userJoined(nika), 'exact UserJoined bytes')
  t.same(Object.keys(live.json.args), ['username', 'userId', 'chatId'])

  const dodo = await stack.waitingVisitor('Dodo')
  t.equal((await a.nextOfType('UserJoined')).text, userJoined(dodo), 'each later visitor is streamed too')
  t.same(await framesBeforeMarker(a), [], 'one UserJoined per visitor, nothing else')
})

t.test('Load with visitors already waiting sends one bare frame per visitor, oldest first', async (t) => {
  const stack = await startStack(t)
  const first = await stack.waitingVisitor('First')
  const second = await stack.waitingVisitor('Second')
  const third = await stack.waitingVisitor('Third')

  const a = await agent(stack)
  a.send({ type: 'Load' })
  const listed = await framesBeforeMarker(a)
  t.same(listed, [bare(first), bare(second), bare(third)], 'exact bytes, in arrival order, and nothing else')
  for (const text of listed) t.same(Object.keys(JSON.parse(text)), ['username', 'userId', 'chatId'])

  // A second agent sees the same list: Load does not consume the queue.
  const b = await agent(stack)
  b.send({ type: 'Load' })
  t.same(await framesBeforeMarker(b), [bare(first), bare(second), bare(third)])
})

t.test('a visitor who joins again keeps their place and agents get no second UserJoined', async (t) => {
  const stack = await startStack(t)
  const a = await agent(stack)
  a.send({ type: 'Load' })
  t.same(await framesBeforeMarker(a), [])

  const nika = await stack.waitingVisitor('Nika')
  t.equal((await a.nextOfType('UserJoined')).text, userJoined(nika))
  const dodo = await stack.waitingVisitor('Dodo')
  t.equal((await a.nextOfType('UserJoined')).text, userJoined(dodo))

  // Nika opens a second tab: same Join on a second socket.
  const again = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`, 'pong:user')
  again.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', from: 'User' } })
  t.equal((await again.nextOfType('UserJoined')).text, userJoined(nika), 'the visitor is answered as before')

  // And she refreshes the first tab too: closes it and joins on a new socket.
  await nika.socket.close()
  const refreshed = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`, 'pong:user')
  refreshed.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', from: 'User' } })
  t.equal((await refreshed.nextOfType('UserJoined')).text, userJoined(nika))

  // Marker: a visitor who joins afterwards; queue events reach agents in the order Redis published them.
  const zaza = await stack.waitingVisitor('Zaza')
  const next = await a.nextOfType('UserJoined')
  t.equal(next.text, userJoined(zaza), 'the next UserJoined agents get is the new visitor, not Nika again')
  t.same(
    a.received.map((m) => m.text).filter((text) => text === userJoined(nika)),
    [userJoined(nika)],
    'agents got exactly one UserJoined for Nika',
  )
  t.notOk(a.received.some((m) => m.json?.type === 'RemoveUser'), 'and no RemoveUser')

  const b = await agent(stack)
  b.send({ type: 'Load' })
  t.same(await framesBeforeMarker(b), [bare(nika), bare(dodo), bare(zaza)], 'Nika is still first')
})

t.test('a claimed visitor never appears in a later Load, even after they join again', async (t) => {
  const stack = await startStack(t)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')

  const claimer = await agent(stack)
  claimer.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'Nika' } })
  t.equal((await claimer.nextOfType('RemoveUser')).text, `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`)

  const later = await agent(stack)
  later.send({ type: 'Load' })
  t.same(await framesBeforeMarker(later), [bare(dodo)], 'only the unclaimed visitor is listed')

  // The claimed visitor refreshes before the agent reaches the chat.
  const refreshed = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`, 'pong:user')
  refreshed.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', from: 'User' } })
  t.equal((await refreshed.nextOfType('UserJoined')).text, userJoined(nika))
  // Marker for the live stream: a new visitor.
  const zaza = await stack.waitingVisitor('Zaza')
  t.equal((await later.nextOfType('UserJoined')).text, userJoined(zaza), 'the re-join was not streamed to agents')

  const last = await agent(stack)
  last.send({ type: 'Load' })
  t.same(await framesBeforeMarker(last), [bare(dodo), bare(zaza)], 'the claimed visitor stays out of the queue')
})

t.test('visitors joining while an agent loads are each shown to the agent exactly once', async (t) => {
  const stack = await startStack(t)
  const a = await agent(stack)
  let queued = 0
  let loadSent = false
  const joins = Array.from({ length: 40 }, (_, i) =>
    stack.waitingVisitor(`V${i}`).then((v) => {
      // Load once a few are queued, while the rest are still joining.
      if (++queued === 5 && !loadSent) {
        loadSent = true
        a.send({ type: 'Load' })
      }
      return v
    }),
  )
  const visitors = await Promise.all(joins)
  t.ok(loadSent)
  // Marker: a visitor who joins after all the others; their UserJoined comes after every earlier event.
  const last = await stack.waitingVisitor('Last')
  const marker = await a.next((m) => m.json?.type === 'UserJoined' && m.json.args.userId === last.userId)
  const before = a.received.slice(0, a.received.indexOf(marker))

  const seen = new Map<string, number>()
  for (const m of before) {
    const userId = m.json?.type === 'UserJoined' ? m.json.args.userId : m.json?.userId
    t.ok(userId, `a listed visitor or a UserJoined: ${m.text}`)
    seen.set(userId, (seen.get(userId) ?? 0) + 1)
  }
  t.same(
    visitors.filter((v) => seen.get(v.userId) !== 1).map((v) => `${v.username}×${seen.get(v.userId) ?? 0}`),
    [],
    'every visitor exactly once, as a bare frame or as UserJoined',
  )
  t.equal(seen.size, visitors.length)
})
