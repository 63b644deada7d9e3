import t, { type Test } from 'tap'
import type { Duplex } from 'node:stream'
import { WebSocket } from 'ws'
import { Errors } from '@switchboard/protocol'
import { startStack, TestSocket, type Stack, handshake, type HandshakeOutcome, trackUpgrades, closesWithin } from '@switchboard/testing'

type Outcome = HandshakeOutcome




const FORBIDDEN = {
  upgraded: false,
  status: 403,
  body: { statusCode: 403, code: 'ORIGIN_NOT_ALLOWED', error: 'Forbidden', message: Errors.ORIGIN_NOT_ALLOWED.message },
}
const UPGRADED = { upgraded: true }

/** GET /user/join from a page at `origin`. */
async function joinFrom(base: string, origin: string | undefined, name = 'Nika') {
  const res = await fetch(`${base}/user/join/${name}`, origin === undefined ? {} : { headers: { origin } })
  return { status: res.status, allowOrigin: res.headers.get('access-control-allow-origin'), body: (await res.json()) as any }
}

/** A socket from a page at `origin` that the server serves: a visitor Join on a real chat is answered. */
async function servedFrom(t: Pick<Test, 'teardown'>, stack: Stack, chatWs: string, origin: string) {
  const visitor = await stack.joinVisitor('Nika')
  const socket = await TestSocket.open(`${chatWs}/chat/${visitor.chatId}`, { headers: { origin } })
  t.teardown(() => socket.close())
  socket.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  return (await socket.nextOfType('UserJoined')).json.args.chatId === visitor.chatId
}

t.test('with agent tokens on, same-origin is allowed even on a port outside the list', async (t) => {
  const stack = await startStack(t, { chatServers: 2, env: { AGENT_AUTH: 'on' } })
  trackUpgrades(t, stack)
  const [chat, otherChat] = stack.chatServers
  t.ok(await servedFrom(t, stack, otherChat!.ws, otherChat!.http), 'the second instance (a random port), its own origin')
  t.strictSame(
    await handshake(`${chat!.ws}/chat/${(await stack.joinVisitor('Nika')).chatId}`, { origin: otherChat!.http }),
    FORBIDDEN,
    "but the second instance's origin is foreign to the first",
  )
})

t.test('the default allowlist: the two services on this machine', async (t) => {
  const stack = await startStack(t, { chatServers: 2 })
  const upgrades = trackUpgrades(t, stack)
  const [chat, otherChat] = stack.chatServers
  const users = `${stack.subscribers[0]!.ws}/users`
  const { chatServerPort, subscriberPort } = stack.config
  const visitor = await stack.joinVisitor('Nika')
  const chatUrl = `${chat!.ws}/chat/${visitor.chatId}`

  await t.test("the agent console's origin (Subscriber's port) may open ChatServer sockets", async (t) => {
    t.ok(await servedFrom(t, stack, chat!.ws, `http://127.0.0.1:${subscriberPort}`), '127.0.0.1')
    t.strictSame(await handshake(chatUrl, { origin: `http://localhost:${subscriberPort}` }), UPGRADED, 'localhost')
    t.strictSame(await handshake(chatUrl, { origin: `http://[::1]:${subscriberPort}` }), UPGRADED, '[::1]')
    t.strictSame(await handshake(users, { origin: `http://127.0.0.1:${chatServerPort}` }), UPGRADED, "and ChatServer's origin may open /users")
  })

  await t.test('with AGENT_AUTH=off, same-origin is only what the list says (no DNS-rebinding way in)', async (t) => {
    t.strictSame(await handshake(chatUrl, { origin: `http://127.0.0.1:${chatServerPort}` }), UPGRADED, 'the first instance, its own origin: in the list')
    t.strictSame(
      await handshake(`${otherChat!.ws}/chat/${visitor.chatId}`, { origin: otherChat!.http }),
      FORBIDDEN,
      'the second instance (a random port), its own origin: not in the list, refused',
    )
    t.strictSame(
      await handshake(chatUrl, { origin: otherChat!.http }),
      FORBIDDEN,
      "but the second instance's origin is foreign to the first: it is not in the list",
    )
  })

  await t.test('a foreign origin gets 403 before any upgrade, on /chat and /users', async (t) => {
    for (const origin of [
      'https://evil.example',
      'null', // sandboxed iframes, file:// pages
      `http://127.0.0.1:${subscriberPort}0`, // a prefix is not a match
      `http://127.0.0.1:${subscriberPort}.evil.example`,
      `http://evil.example:${chatServerPort}`,
      `http://localhost.evil.example:${subscriberPort}`,
      'not a url',
    ]) {
      t.strictSame(await handshake(chatUrl, { origin }), FORBIDDEN, `/chat from ${origin}`)
      t.strictSame(await handshake(users, { origin }), FORBIDDEN, `/users from ${origin}`)
    }
  })

  await t.test('the connection of a refused upgrade is not kept open by the server', async (t) => {
    const before = upgrades.length
    t.strictSame(await handshake(chatUrl, { origin: 'https://evil.example' }), FORBIDDEN)
    const serverSide = upgrades[before]
    t.ok(serverSide, 'the server saw the upgrade request')
    // The client has read the 403 and closed its end.
    t.ok(await closesWithin(serverSide!, 500), 'the server closes its end too')
  })

  await t.test('no Origin header (not a browser) is allowed', async (t) => {
    t.strictSame(await handshake(chatUrl), UPGRADED, '/chat')
    t.strictSame(await handshake(users), UPGRADED, '/users')
    const res = await joinFrom(chat!.http, undefined)
    t.equal(res.status, 200)
    t.equal(res.allowOrigin, null, 'no CORS header without an Origin')
  })

  await t.test('GET /user/join: CORS for an allowed origin, 403 for a foreign one', async (t) => {
    const origin = `http://127.0.0.1:${subscriberPort}`
    const ok = await joinFrom(chat!.http, origin)
    t.equal(ok.status, 200)
    t.equal(ok.allowOrigin, origin, 'access-control-allow-origin is that origin')
    t.equal(ok.body.username, 'Nika')

    const evil = await joinFrom(chat!.http, 'https://evil.example')
    t.equal(evil.status, 403)
    t.strictSame(evil.body, FORBIDDEN.body, 'JSON ORIGIN_NOT_ALLOWED')
    t.equal(evil.allowOrigin, null, 'no CORS header for it: a browser will not let the page read the answer')

    // The preflight a browser may send.
    const preflight = await fetch(`${chat!.http}/user/join/Nika`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET' },
    })
    t.equal(preflight.status, 204, 'preflight from an allowed origin')
    t.equal(preflight.headers.get('access-control-allow-origin'), origin)
    const evilPreflight = await fetch(`${chat!.http}/user/join/Nika`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    })
    t.equal(evilPreflight.status, 403, 'preflight from a foreign origin')
    t.equal(evilPreflight.headers.get('access-control-allow-origin'), null)
  })
})

t.test('a foreign origin is refused before the token is even looked at (auth on)', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  trackUpgrades(t, stack)
  const token = await stack.agentToken('Vika')
  const users = `${stack.subscribers[0]!.ws}/users`
  t.strictSame(await handshake(users, { origin: 'https://evil.example', authorization: `Bearer ${token}` }), FORBIDDEN, 'valid token, foreign origin')
  t.strictSame(await handshake(users, { origin: 'https://evil.example' }), FORBIDDEN, 'no token, foreign origin: 403, not 401')
  t.strictSame(
    await handshake(users, { origin: `http://127.0.0.1:${stack.config.chatServerPort}`, authorization: `Bearer ${token}` }),
    UPGRADED,
    'valid token, allowed origin',
  )
})

t.test('ALLOWED_ORIGINS=https://shop.example: exactly that', async (t) => {
  const stack = await startStack(t, { env: { ALLOWED_ORIGINS: 'https://shop.example/' } })
  trackUpgrades(t, stack)
  const chat = stack.chatServers[0]!
  const users = `${stack.subscribers[0]!.ws}/users`
  const visitor = await stack.joinVisitor('Nika')
  const chatUrl = `${chat.ws}/chat/${visitor.chatId}`

  t.ok(await servedFrom(t, stack, chat.ws, 'https://shop.example'), 'the shop may open /chat (a trailing slash in the setting is ignored)')
  t.strictSame(await handshake(users, { origin: 'https://shop.example' }), UPGRADED, 'and /users')
  const join = await joinFrom(chat.http, 'https://shop.example')
  t.equal(join.status, 200)
  t.equal(join.allowOrigin, 'https://shop.example')

  const localDefault = `http://127.0.0.1:${stack.config.subscriberPort}`
  t.strictSame(await handshake(chatUrl, { origin: localDefault }), FORBIDDEN, 'the localhost default is no longer allowed')
  const refused = await joinFrom(chat.http, localDefault)
  t.equal(refused.status, 403)
  t.equal(refused.body.code, 'ORIGIN_NOT_ALLOWED')

  for (const origin of ['http://shop.example', 'https://shop.example:8443', 'https://www.shop.example', 'https://shop.example.evil', 'https://evil.example']) {
    t.strictSame(await handshake(chatUrl, { origin }), FORBIDDEN, `${origin}: exact match only`)
  }
  t.strictSame(await handshake(chatUrl, { origin: chat.http }), FORBIDDEN, 'same-origin is not implicit while AGENT_AUTH=off')
})

t.test('ALLOWED_ORIGINS=*: any origin', async (t) => {
  const stack = await startStack(t, { env: { ALLOWED_ORIGINS: '*' } })
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  for (const origin of ['https://evil.example', 'null', 'https://shop.example']) {
    t.strictSame(await handshake(`${chat.ws}/chat/${visitor.chatId}`, { origin }), UPGRADED, `/chat from ${origin}`)
    t.strictSame(await handshake(`${stack.subscribers[0]!.ws}/users`, { origin }), UPGRADED, `/users from ${origin}`)
  }
  t.ok(await servedFrom(t, stack, chat.ws, 'https://evil.example'), 'and the socket is served')
  const join = await joinFrom(chat.http, 'https://anywhere.example')
  t.equal(join.status, 200)
  t.equal(join.allowOrigin, 'https://anywhere.example')
})
