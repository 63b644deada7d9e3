import t from 'tap'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { handshake, startStack, TestSocket } from '@switchboard/testing'

// The README's compatibility paragraph is a promise to people with a UI for
// the original project: this holds the settings it names to what they do.

const readme = await readFile(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const paragraph = /\*\*Compatibility\.\*\*[\s\S]*?\n\n/.exec(readme)?.[0].replace(/\s+/g, ' ') ?? ''
/** The `NAME=value` settings the paragraph tells a user of the original UI to set. */
const settings = Object.fromEntries([...paragraph.matchAll(/`([A-Z_]+)=([^`]+)`/g)].map((m) => [m[1]!, m[2]!]))
/** The frame names it says the later HTML pages use instead. */
const foreignFrames = [...(/different protocol \(([^)]*)\)/.exec(paragraph)?.[1] ?? '').matchAll(/`(\w+)/g)].map((m) => m[1]!)

t.test('the README names the original project and what is and is not compatible', async (t) => {
  t.match(paragraph, '[Ghurtchu/blabbermouth](https://github.com/Ghurtchu/blabbermouth)', 'the original project, named and linked')
  t.match(paragraph, /protocol described in the README of the original project/, 'what is compatible: the protocol in its README')
  t.match(paragraph, /`assets\/chat-ui\.html`, `assets\/support-ui\.html`/, 'what is not: the HTML pages it added later')
  t.match(paragraph, /do not work/, 'and says so')
  t.same(Object.keys(settings).sort(), ['AGENT_AUTH', 'ALLOWED_ORIGINS'], 'the settings a user of the original UI needs')
  t.ok(foreignFrames.includes('PendingUsers') && foreignFrames.includes('SupportJoined'), 'and the frames of the other protocol')
})

t.test("with the README's settings, a UI written to the original README works from its own origin", async (t) => {
  const origin = settings.ALLOWED_ORIGINS?.split(',')[0]?.trim()
  if (origin === undefined || settings.AGENT_AUTH === undefined) return t.fail('the README names no settings')

  // Out of the box (agent tokens on, only the services' own origins) it does not.
  const strict = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  t.equal((await fetch(`${strict.chatServers[0]!.http}/user/join/Nika`, { headers: { origin } })).status, 403, 'by default its origin is refused')
  t.match(await handshake(`${strict.subscribers[0]!.ws}/users`), { upgraded: false, status: 401 }, 'and its agent page has no token')

  const stack = await startStack(t, { env: { AGENT_AUTH: settings.AGENT_AUTH, ALLOWED_ORIGINS: settings.ALLOWED_ORIGINS! } })
  const chat = stack.chatServers[0]!
  const headers = { origin }
  const join = await fetch(`${chat.http}/user/join/Nika`, { headers })
  t.equal(join.status, 200, 'it registers a visitor from its origin')
  t.equal(join.headers.get('access-control-allow-origin'), origin, 'the page may read the answer (CORS)')
  const visitor = await join.json()

  const agent = await TestSocket.open(`${stack.subscribers[0]!.ws}/users`, { pong: 'pong:support', headers })
  t.teardown(() => agent.close())
  agent.send({ type: 'Load' })
  const user = await TestSocket.open(`${chat.ws}/chat/${visitor.chatId}`, { pong: 'pong:user', headers })
  t.teardown(() => user.close())
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  await agent.nextOfType('UserJoined')
  agent.send({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: 'Nika' } })
  const support = await TestSocket.open(`${chat.ws}/chat/${visitor.chatId}`, { pong: 'pong:support', headers })
  t.teardown(() => support.close())
  support.send({ type: 'Join', args: { userId: visitor.userId, supportUserName: 'Vika', username: 'Nika', from: 'Support' } })
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')
  user.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'Hello?', from: 'User' } })
  t.equal((await support.nextOfType('ChatMessage')).json.args.content, 'Hello?', 'visitor and agent chat')

  // The later pages wait for frames this server never sends, and answer pings in a shape it does not take.
  const seen = new Set([...agent.received, ...user.received, ...support.received].map((m) => m.json?.type))
  t.same(foreignFrames.filter((type) => seen.has(type)), [], 'none of the other protocol’s frames is ever sent')
  user.send({ type: 'Pong', args: { from: 'User' } })
  t.equal((await user.nextOfType('Error')).json.args.code, 'UNKNOWN_TYPE', 'its JSON Pong is refused')
})
