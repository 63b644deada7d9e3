import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startStack, type Stack, type TestSocket } from '@switchboard/testing'


function agent(stack: Stack, i = 0): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support')
}

const hexId = () => randomUUID().replaceAll('-', '')
const removeUser = (userId: string) => `{"type":"RemoveUser","args":{"userId":"${userId}"}}`
const errorFrame = (code: string, message: string) => `{"type":"Error","args":{"code":"${code}","message":"${message}"}}`
const ALREADY_CLAIMED = errorFrame('ALREADY_CLAIMED', 'This visitor has already been claimed by an agent')

const joinUser = (v: { userId: string; chatId: string; username: string }) => ({
  type: 'JoinUser',
  args: { userId: v.userId, chatId: v.chatId, username: v.username },
})

/** Loads the queue and waits until the agent is subscribed (an UNKNOWN_TYPE answer after Load means Load ran). */
async function load(socket: TestSocket): Promise<void> {
  socket.send({ type: 'Load' })
  socket.send({ type: 'Marker' })
  await socket.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
}

/** The answer to a JoinUser: the first RemoveUser or Error. */
function answer(socket: TestSocket) {
  return socket.next((m) => m.json?.type === 'RemoveUser' || m.json?.type === 'Error')
}

t.test('JoinUser: the winner and every loaded agent on two Subscriber instances get RemoveUser once', async (t) => {
  const stack = await startStack(t, { subscribers: 2 })
  const winner = await agent(stack, 0)
  const same = await agent(stack, 0)
  const other = await agent(stack, 1)
  const loaded = [winner, same, other]
  for (const a of loaded) await load(a)

  const nika = await stack.waitingVisitor('Nika')
  for (const a of loaded) await a.nextOfType('UserJoined')

  winner.send(joinUser(nika))
  for (const [i, a] of loaded.entries()) {
    t.equal((await a.nextOfType('RemoveUser')).text, removeUser(nika.userId), `agent ${i} gets RemoveUser, exact bytes`)
  }

  // Marker: a later visitor; queue events arrive in the order Redis published them.
  const dodo = await stack.waitingVisitor('Dodo')
  for (const [i, a] of loaded.entries()) {
    const marker = await a.nextOfType('UserJoined')
    t.equal(marker.json.args.userId, dodo.userId)
    t.equal(
      a.received.filter((m) => m.json?.type === 'RemoveUser').length,
      1,
      `agent ${i} got exactly one RemoveUser (the winner is not answered twice)`,
    )
    t.same(
      a.received.map((m) => m.json.type),
      ['Error', 'UserJoined', 'RemoveUser', 'UserJoined'],
      `agent ${i} got: Load's marker, Nika joined, Nika removed, Dodo joined; nothing else`,
    )
  }
})

t.test('50 agents on two instances claim the same visitor at once: exactly one wins', async (t) => {
  const stack = await startStack(t, { subscribers: 2 })
  const watchers = [await agent(stack, 0), await agent(stack, 1)]
  for (const w of watchers) await load(w)
  const nika = await stack.waitingVisitor('Nika')
  for (const w of watchers) await w.nextOfType('UserJoined')

  // None of them loaded: only the winner may hear about the claim.
  const agents = await Promise.all(Array.from({ length: 50 }, (_, i) => agent(stack, i % 2)))
  for (const a of agents) a.send(joinUser(nika))
  const answers = await Promise.all(agents.map(answer))

  const wins = answers.filter((m) => m.json.type === 'RemoveUser')
  const losses = answers.filter((m) => m.json.type === 'Error')
  t.equal(wins.length, 1, 'exactly one agent won')
  t.equal(wins[0]?.text, removeUser(nika.userId))
  t.equal(losses.length, 49, 'the other 49 lost')
  t.same(new Set(losses.map((m) => m.text)), new Set([ALREADY_CLAIMED]), 'every loser gets ALREADY_CLAIMED, exact bytes')
  // Marker on each of the 50 sockets: nothing else reached them before it.
  for (const a of agents) a.send({ type: 'Marker' })
  await Promise.all(agents.map((a) => a.next((m) => m.json?.args?.code === 'UNKNOWN_TYPE')))
  t.ok(
    agents.every((a, i) => a.received.length === 2 && a.received[0] === answers[i]),
    'each of the 50 got its one answer and nothing else',
  )

  for (const [i, w] of watchers.entries()) {
    t.equal((await w.nextOfType('RemoveUser')).text, removeUser(nika.userId), `watcher on instance ${i} gets RemoveUser`)
  }
  // Marker: a later visitor proves no second RemoveUser was broadcast.
  const dodo = await stack.waitingVisitor('Dodo')
  for (const [i, w] of watchers.entries()) {
    t.equal((await w.nextOfType('UserJoined')).json.args.userId, dodo.userId)
    t.equal(w.received.filter((m) => m.json?.type === 'RemoveUser').length, 1, `one broadcast reached instance ${i}`)
  }
})

t.test('JoinUser for a chat nobody registered → VISITOR_NOT_FOUND', async (t) => {
  const stack = await startStack(t)
  const a = await agent(stack)
  a.send({ type: 'JoinUser', args: { userId: hexId(), chatId: hexId(), username: 'Ghost' } })
  t.equal(
    (await answer(a)).text,
    errorFrame('VISITOR_NOT_FOUND', 'No such visitor: the chat is unknown, expired, or belongs to someone else'),
  )
  t.equal(a.ws.readyState, a.ws.OPEN, 'the socket stays open')
})

t.test('JoinUser with a userId that does not own the chat → VISITOR_NOT_FOUND, and the visitor stays queued', async (t) => {
  const stack = await startStack(t)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  const a = await agent(stack)

  // Someone else's userId, and an id that belongs to nobody.
  for (const userId of [dodo.userId, hexId()]) {
    a.send({ type: 'JoinUser', args: { userId, chatId: nika.chatId, username: 'Nika' } })
    const reply = await answer(a)
    t.equal(reply.json.type, 'Error')
    t.equal(reply.json.args.code, 'VISITOR_NOT_FOUND')
  }

  const b = await agent(stack)
  await load(b)
  t.same(
    b.received.filter((m) => m.json?.type !== 'Error').map((m) => m.json.userId),
    [nika.userId, dodo.userId],
    'a failed claim removes nobody',
  )
  // The rightful claim still works afterwards.
  a.send(joinUser(nika))
  t.equal((await answer(a)).text, removeUser(nika.userId))
})

t.test('JoinUser for a registered visitor who has not sent Join yet → NOT_IN_QUEUE', async (t) => {
  const stack = await startStack(t)
  const visitor = await stack.joinVisitor('Nika')
  const a = await agent(stack)
  a.send(joinUser(visitor))
  t.equal((await answer(a)).text, errorFrame('NOT_IN_QUEUE', 'This visitor has not joined the queue yet'))

  // Once they join, the same claim succeeds.
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user')
  socket.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await socket.nextOfType('UserJoined')
  a.send(joinUser(visitor))
  t.equal((await answer(a)).text, removeUser(visitor.userId))
})

t.test('an agent who never sent Load gets RemoveUser directly when it wins, once', async (t) => {
  const stack = await startStack(t)
  const nika = await stack.waitingVisitor('Nika')
  const a = await agent(stack)
  a.send(joinUser(nika))
  t.equal((await answer(a)).text, removeUser(nika.userId))

  // Claiming again is answered ALREADY_CLAIMED; nothing else came in between.
  a.send(joinUser(nika))
  const again = await answer(a)
  t.equal(again.text, ALREADY_CLAIMED)
  t.same(
    a.received.map((m) => m.text),
    [removeUser(nika.userId), ALREADY_CLAIMED],
    'exactly one RemoveUser, then the Error',
  )

  // And an unloaded agent hears nothing of visitors joining or being claimed by others.
  const dodo = await stack.waitingVisitor('Dodo')
  const b = await agent(stack)
  b.send(joinUser(dodo))
  t.equal((await answer(b)).text, removeUser(dodo.userId))
  a.send({ type: 'Marker' })
  await a.next((m) => m.json?.args?.code === 'UNKNOWN_TYPE')
  t.same(
    a.received.map((m) => m.json.type),
    ['RemoveUser', 'Error', 'Error'],
    'the agent who did not Load got neither UserJoined nor RemoveUser for Dodo',
  )
})

t.test('the agent then joining the chat on ChatServer sends agents no second RemoveUser', async (t) => {
  const stack = await startStack(t)
  const watcher = await agent(stack)
  await load(watcher)
  const nika = await stack.waitingVisitor('Nika')
  await watcher.nextOfType('UserJoined')

  const claimer = await agent(stack)
  claimer.send(joinUser(nika))
  t.equal((await answer(claimer)).text, removeUser(nika.userId))
  t.equal((await watcher.nextOfType('RemoveUser')).text, removeUser(nika.userId))

  // Seed step 4: the agent opens the chat.
  const support = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: nika.userId, supportUserName: 'Vika', username: 'Nika', from: 'Support' } })
  await support.nextOfType('SupportJoinedUser')
  await nika.socket.nextOfType('SupportJoinedUser')

  const dodo = await stack.waitingVisitor('Dodo')
  t.equal((await watcher.nextOfType('UserJoined')).json.args.userId, dodo.userId)
  t.equal(watcher.received.filter((m) => m.json?.type === 'RemoveUser').length, 1, 'one RemoveUser for Nika in all')
})

t.test('an agent who joins the chat on ChatServer without JoinUser also takes the visitor off every queue', async (t) => {
  const stack = await startStack(t, { subscribers: 2 })
  const watchers = [await agent(stack, 0), await agent(stack, 1)]
  for (const w of watchers) await load(w)
  const nika = await stack.waitingVisitor('Nika')
  for (const w of watchers) await w.nextOfType('UserJoined')

  const support = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: nika.userId, supportUserName: 'Vika', username: 'Nika', from: 'Support' } })
  await support.nextOfType('SupportJoinedUser')
  for (const [i, w] of watchers.entries()) {
    t.equal((await w.nextOfType('RemoveUser')).text, removeUser(nika.userId), `agents on instance ${i} get RemoveUser`)
  }
  // And a claim now loses.
  const late = await agent(stack, 1)
  late.send(joinUser(nika))
  t.equal((await answer(late)).text, ALREADY_CLAIMED)
})
