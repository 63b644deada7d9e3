import t, { type Test } from 'tap'
import { startStack, type Received, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * MyChats (docs/agent-workflow.md): on connect and whenever the set of the
 * agent's chats changes (unread is a count at that moment), to every v2 `/users` socket of that agent, on every instance:
 * {chatId, userId, username, since, unread}, oldest first.
 */

interface MyChat {
  chatId: string
  userId: string
  username: string
  since: string
  unread: number
}
type Visitor = { userId: string; chatId: string; username: string }

/** The exact bytes of a MyChats frame, fields in their documented order. */
const myChats = (chats: MyChat[]) =>
  JSON.stringify({
    type: 'MyChats',
    args: { chats: chats.map((c) => ({ chatId: c.chatId, userId: c.userId, username: c.username, since: c.since, unread: c.unread })) },
  })
const entry = (v: Visitor, since: string, unread = 0): MyChat => ({ chatId: v.chatId, userId: v.userId, username: v.username, since, unread })

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const isType = (type: string) => (m: Received) => m.json?.type === type
const chatIdsOf = (m: Received): string[] => (m.json.args.chats as MyChat[]).map((c) => c.chatId)

function queueSocket(stack: Stack, i: number, token: string): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[i]!.ws}/users`, 'pong:support', { token, v2: true })
}

/** Waits for the MyChats frame that matches, consuming the MyChats frames before it; returns the match and those frames. */
async function untilMyChats(socket: TestSocket, match: string | ((m: Received) => boolean), timeoutMs = 8000): Promise<{ hit: Received; before: Received[] }> {
  const predicate = typeof match === 'string' ? (m: Received) => m.text === match : (m: Received) => isType('MyChats')(m) && match(m)
  const hit = await socket.next(predicate, timeoutMs)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => isType('MyChats')(m) && socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return { hit, before }
}

/** `since` of one chat in a MyChats frame, checked to be ISO-8601 within [from, to] (ms, with a second's slack). */
function sinceOf(t: Test, m: Received, chatId: string, from: number, to: number): string {
  const since = (m.json.args.chats as MyChat[]).find((c) => c.chatId === chatId)?.since ?? ''
  t.match(since, ISO, `since is ISO-8601 (${since})`)
  const at = Date.parse(since)
  t.ok(at >= from - 1000 && at <= to + 1000, `since is when the agent got the chat (${since})`)
  return since
}

const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
const claimAnswer = (socket: TestSocket) => socket.next((m) => m.json?.type === 'RemoveUser' || m.json?.type === 'Error')

/** The agent (by token) opens the visitor's chat on ChatServer and joins as Support over v2. */
async function joinChat(stack: Stack, token: string, v: Visitor): Promise<{ socket: TestSocket; supportId: string }> {
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${v.chatId}`, 'pong:support', { token, v2: true })
  socket.send({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'Support' } })
  const joined = await socket.nextOfType('SupportJoinedUser')
  return { socket, supportId: joined.json.args.supportId as string }
}

/** The first MyChats a fresh connection (a reload) of the agent gets. */
async function freshMyChats(stack: Stack, i: number, token: string): Promise<string> {
  const socket = await queueSocket(stack, i, token)
  const first = await socket.nextOfType('MyChats')
  await socket.close()
  return first.text
}

t.test('MyChats: empty on connect; a claim lists the chat on every socket of the agent, on both instances, oldest first', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const boraToken = await stack.agentToken('Bora', { id: 'agent-bora' })
  const laptop = await queueSocket(stack, 0, vikaToken)
  const phone = await queueSocket(stack, 1, vikaToken)
  const bora = await queueSocket(stack, 1, boraToken)
  for (const [name, socket] of [['laptop', laptop], ['phone', phone], ['Bora', bora]] as const) {
    t.equal((await socket.nextOfType('MyChats')).text, myChats([]), `${name}: {chats: []} on connect`)
  }

  const nika = await stack.waitingVisitor('Nika')
  const claimedFrom = Date.now()
  laptop.send(joinUser(nika))
  t.equal((await claimAnswer(laptop)).json.type, 'RemoveUser', 'Vika claims Nika')
  const claimedTo = Date.now()
  const { hit: one } = await untilMyChats(laptop, (m) => chatIdsOf(m).length === 1)
  const nikaSince = sinceOf(t, one, nika.chatId, claimedFrom, claimedTo)
  const afterClaim = myChats([entry(nika, nikaSince)])
  t.equal(one.text, afterClaim, 'the claiming socket: the chat, exact frame, nothing unread')
  await untilMyChats(phone, afterClaim)
  t.pass('her second device, on the other instance, gets the same MyChats')

  // Dodo is taken from the phone by joining his chat directly (no JoinUser).
  const dodo = await stack.waitingVisitor('Dodo')
  const joinedFrom = Date.now()
  await joinChat(stack, vikaToken, dodo)
  const joinedTo = Date.now()
  const { hit: two } = await untilMyChats(phone, (m) => chatIdsOf(m).length === 2)
  const dodoSince = sinceOf(t, two, dodo.chatId, joinedFrom, joinedTo)
  t.ok(Date.parse(dodoSince) >= Date.parse(nikaSince), 'Dodo came later')
  const afterJoin = myChats([entry(nika, nikaSince), entry(dodo, dodoSince)])
  t.equal(two.text, afterJoin, 'a direct Join adds the chat; oldest first')
  await untilMyChats(laptop, afterJoin)
  t.pass('and the laptop gets it too')

  // Opening the claimed chat does not make it newer.
  await joinChat(stack, vikaToken, nika)
  t.equal(await freshMyChats(stack, 0, vikaToken), afterJoin, 'a reload gets the current list; joining the claimed chat kept its since')
  t.equal(await freshMyChats(stack, 1, vikaToken), afterJoin, 'on the other instance too')

  // Another agent's chats are theirs alone.
  const zaza = await stack.waitingVisitor('Zaza')
  const boraFrom = Date.now()
  bora.send(joinUser(zaza))
  t.equal((await claimAnswer(bora)).json.type, 'RemoveUser')
  const { hit: boraChats, before: boraBefore } = await untilMyChats(bora, (m) => chatIdsOf(m).length > 0)
  t.equal(boraChats.text, myChats([entry(zaza, sinceOf(t, boraChats, zaza.chatId, boraFrom, Date.now()))]), "Bora's MyChats: only Zaza")
  t.same(boraBefore.filter((m) => m.text !== myChats([])).map((m) => m.text), [], "Bora never saw Vika's chats")

  // Marker for Vika's sockets: she ends Dodo's chat, and her list shrinks; Zaza never appeared in it.
  const dodoChat = await joinChat(stack, vikaToken, dodo)
  dodoChat.socket.send({ type: 'EndChat', args: {} })
  for (const [name, socket] of [['laptop', laptop], ['phone', phone]] as const) {
    await untilMyChats(socket, myChats([entry(nika, nikaSince)]))
    t.notOk(
      socket.received.filter(isType('MyChats')).some((m) => chatIdsOf(m).includes(zaza.chatId)),
      `${name}: Bora's chat never listed`,
    )
  }
})

t.test("unread: the visitor's messages the agent has not read; Read lowers it; a fresh connection gets the current count", async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  await vika.nextOfType('MyChats')
  const nika = await stack.waitingVisitor('Nika')
  vika.send(joinUser(nika))
  const { hit } = await untilMyChats(vika, (m) => chatIdsOf(m).length === 1)
  const since = hit.json.args.chats[0].since as string
  const withUnread = (n: number) => myChats([entry(nika, since, n)])
  t.equal(hit.text, withUnread(0), 'claimed, nothing said yet: 0 unread')

  const { socket: chat, supportId } = await joinChat(stack, vikaToken, nika)
  await nika.socket.nextOfType('SupportJoinedUser')
  const fromVisitor = (content: string) => ({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content, from: 'User' } })
  const unreadCount = (n: number) => `{"type":"UnreadCount","args":{"chatId":"${nika.chatId}","count":${n}}}`
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(0), 'joined, nothing said yet: 0 unread')

  for (const content of ['u1', 'u2', 'u3']) nika.socket.send(fromVisitor(content))
  await chat.next((m) => m.text === unreadCount(3))
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(3), 'three messages from the visitor, none read: 3')

  chat.send({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content: 'a4', from: 'Support' } })
  await nika.socket.next((m) => m.json?.type === 'ChatMessage' && m.json.args.content === 'a4')
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(3), "the agent's own message is not unread")

  chat.send({ type: 'Read', args: { seq: 2 } })
  await chat.next((m) => m.text === unreadCount(1))
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(1), 'read up to u2: only u3 is unread')

  chat.send({ type: 'Read', args: { seq: 4 } })
  await chat.next((m) => m.text === unreadCount(0))
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(0), 'read everything: 0')

  nika.socket.send(fromVisitor('u5'))
  await chat.next((m) => m.text === unreadCount(1))
  t.equal(await freshMyChats(stack, 0, vikaToken), withUnread(1), 'a new message from the visitor: 1')

  // The socket that was open all along: whatever MyChats it got listed this one chat, since unchanged.
  t.same(
    vika.received.filter(isType('MyChats')).slice(1).filter((m) => !(m.json.args.chats.length === 1 && m.json.args.chats[0].since === since)).map((m) => m.text),
    [],
    'no MyChats on the open socket lost the chat or changed its since',
  )
})

t.test('a chat that ends (either side) leaves MyChats on every socket; a reload gets the list as it is', async (t) => {
  const stack = await startStack(t, { subscribers: 2, env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3' } })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const laptop = await queueSocket(stack, 0, vikaToken)
  const phone = await queueSocket(stack, 1, vikaToken)
  const nika = await stack.waitingVisitor('Nika')
  const dodo = await stack.waitingVisitor('Dodo')
  laptop.send(joinUser(nika))
  await claimAnswer(laptop)
  laptop.send(joinUser(dodo))
  await claimAnswer(laptop)
  const { hit } = await untilMyChats(laptop, (m) => chatIdsOf(m).length === 2)
  const [nikaEntry, dodoEntry] = hit.json.args.chats as MyChat[]
  t.same([nikaEntry?.chatId, dodoEntry?.chatId], [nika.chatId, dodo.chatId], 'both claims listed, oldest first')
  await untilMyChats(phone, hit.text)

  // Vika ends Nika's chat from the chat socket.
  const nikaChat = await joinChat(stack, vikaToken, nika)
  nikaChat.socket.send({ type: 'EndChat', args: { reason: 'solved' } })
  await nikaChat.socket.nextOfType('ChatEnded')
  const onlyDodo = myChats([dodoEntry!])
  for (const [name, socket] of [['laptop', laptop], ['phone', phone]] as const) {
    await untilMyChats(socket, onlyDodo)
    t.pass(`${name}: the ended chat left MyChats`)
  }
  t.equal(await freshMyChats(stack, 1, vikaToken), onlyDodo, 'a reload: only the chat still open')

  // Dodo ends his chat himself, from a v2 socket.
  const dodoChat = await joinChat(stack, vikaToken, dodo)
  const dodoV2 = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${dodo.chatId}`, 'pong:user', { v2: true })
  dodoV2.send({ type: 'Join', args: { userId: dodo.userId, username: dodo.username, supportId: dodoChat.supportId, from: 'User' } })
  await dodoV2.nextOfType('ChatHistory')
  dodoV2.send({ type: 'EndChat', args: {} })
  await dodoChat.socket.nextOfType('ChatEnded')
  for (const [name, socket] of [['laptop', laptop], ['phone', phone]] as const) {
    await untilMyChats(socket, myChats([]))
    t.pass(`${name}: the visitor ending the chat empties MyChats`)
  }
  t.equal(await freshMyChats(stack, 0, vikaToken), myChats([]), 'a reload: nothing')
})

t.test('a chat that expires leaves MyChats', async (t) => {
  const stack = await startStack(t, {
    sweepIntervalMs: 50,
    env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: '0.3', CHAT_TTL_SECONDS: '1', CHAT_EXPIRY_WARNING_SECONDS: '0' },
  })
  const vikaToken = await stack.agentToken('Vika', { id: 'agent-vika' })
  const vika = await queueSocket(stack, 0, vikaToken)
  const nika = await stack.waitingVisitor('Nika')
  const { socket: chat } = await joinChat(stack, vikaToken, nika)
  const { hit } = await untilMyChats(vika, (m) => chatIdsOf(m).includes(nika.chatId))
  t.same(chatIdsOf(hit), [nika.chatId], 'the joined chat is listed')

  await chat.nextOfType('ChatExpired', 8000)
  await untilMyChats(vika, myChats([]))
  t.pass('expired: out of MyChats')
  t.equal(await freshMyChats(stack, 0, vikaToken), myChats([]), 'and a reload gets an empty list')
})
