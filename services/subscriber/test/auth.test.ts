import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { generateKeyPairSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import { SignJWT, importPKCS8, type JWTPayload } from 'jose'
import { WebSocket } from 'ws'
import { Errors, type ErrorCode } from '@switchboard/protocol'
import { randomSecret, signAgentToken } from '@switchboard/server-kit'
import { buildApp } from '@switchboard/subscriber'
import { freePort, startRedis, startStack, testConfig, TestSocket, type Stack } from '@switchboard/testing'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

type Outcome = { upgraded: true } | { upgraded: false; status: number; contentType: string | undefined; body: any }

/** Attempts a WebSocket handshake: either it upgrades (the socket is closed at once) or the HTTP answer, body parsed. */
function handshake(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.on('error', () => {})
    ws.once('open', () => {
      ws.close()
      resolve({ upgraded: true })
    })
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => {
        req.destroy()
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
        resolve({ upgraded: false, status: res.statusCode ?? 0, contentType: res.headers['content-type'], body })
      })
      res.on('error', reject)
    })
  })
}

type Asserts = Pick<Test, 'equal' | 'strictSame' | 'match' | 'fail'>
/** The handshake was refused before any upgrade with this status and the protocol's JSON error body. */
function refusedWith(t: Asserts, outcome: Outcome, status: number, code: ErrorCode, what: string) {
  if (outcome.upgraded) {
    t.fail(`${what}: the socket was upgraded`)
    return
  }
  t.equal(outcome.status, status, `${what}: HTTP ${status}`)
  t.match(outcome.contentType, /^application\/json/, `${what}: a JSON body`)
  t.strictSame(
    outcome.body,
    { statusCode: status, code, error: status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : outcome.body?.error, message: Errors[code].message },
    `${what}: body names ${code}`,
  )
}

/** Load, then a marker: resolves once the queue socket has answered, i.e. it is open and served. */
async function served(socket: TestSocket): Promise<void> {
  socket.send({ type: 'Load' })
  socket.send({ type: 'Marker' })
  await socket.next((m) => m.json?.type === 'Error' && m.json.args.code === 'UNKNOWN_TYPE')
}

/** A registered visitor who sent Join, i.e. waits in the queue. */
async function queued(stack: Stack, name: string) {
  const visitor = await stack.joinVisitor(name)
  const socket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`, 'pong:user')
  socket.send({ type: 'Join', args: { userId: visitor.userId, username: name, from: 'User' } })
  await socket.nextOfType('UserJoined')
  return visitor
}

const unsigned = (claims: JWTPayload) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`

t.test('AGENT_AUTH on: /users refuses every handshake without a valid token, before the upgrade', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const users = `${stack.subscribers[0]!.ws}/users`
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const good = { sub: 'agent-vika', name: 'Vika', exp: now() + 3600 }

  refusedWith(t, await handshake(users), 401, 'TOKEN_MISSING', 'no token')
  refusedWith(t, await handshake(users, bearer(await stack.agentToken('Vika', { ttlSeconds: -30 }))), 401, 'TOKEN_EXPIRED', 'expired')
  refusedWith(
    t,
    await handshake(users, bearer(await signAgentToken(randomSecret(), { id: 'agent-vika', name: 'Vika', ttlSeconds: 3600 }))),
    401,
    'TOKEN_INVALID',
    'signed with another secret',
  )
  refusedWith(t, await handshake(users, bearer(unsigned(good))), 401, 'TOKEN_INVALID', 'alg none')
  refusedWith(t, await handshake(`${users}?token=${unsigned(good)}`), 401, 'TOKEN_INVALID', 'alg none in the query')
  refusedWith(t, await handshake(users, bearer('garbage')), 401, 'TOKEN_INVALID', 'garbage')
  refusedWith(t, await handshake(`${users}?token=not.a.jwt`), 401, 'TOKEN_INVALID', 'garbage in the query')
  refusedWith(t, await handshake(users, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'TOKEN_MISSING', 'another auth scheme')
  refusedWith(t, await handshake(`${users}?token=`), 401, 'TOKEN_MISSING', 'an empty ?token=')

  // A valid token's signature on someone else's claims.
  const real = await stack.agentToken('Vika')
  const [header, , signature] = real.split('.')
  refusedWith(t, await handshake(users, bearer(`${header}.${b64({ ...good, sub: 'agent-boss' })}.${signature}`)), 401, 'TOKEN_INVALID', 'tampered claims')

  // The header beats the query: a bad header is not rescued by a good ?token=.
  refusedWith(t, await handshake(`${users}?token=${real}`, bearer('garbage')), 401, 'TOKEN_INVALID', 'bad header, good query')

  // And nothing of this touched the queue: a valid agent still works.
  t.same(await handshake(users, bearer(real)), { upgraded: true }, 'a valid token upgrades')
})

t.test('AGENT_AUTH on: a valid token works as a Bearer header and as ?token=', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const users = `${stack.subscribers[0]!.ws}/users`
  const nika = await queued(stack, 'Nika')

  const viaHeader = await stack.socket(users, 'pong:support', { token: await stack.agentToken('Vika') })
  await served(viaHeader)
  t.same(
    viaHeader.received.filter((m) => m.json?.type !== 'Error').map((m) => m.json),
    [{ username: 'Nika', userId: nika.userId, chatId: nika.chatId }],
    'Bearer: Load lists the waiting visitor',
  )

  const token = await stack.agentToken('Dora')
  const viaQuery = await stack.socket(`${users}?token=${encodeURIComponent(token)}`, 'pong:support')
  await served(viaQuery)
  t.equal(viaQuery.received[0]?.json?.userId, nika.userId, '?token=: Load lists the waiting visitor')

  // The query-token agent claims; the header agent sees the visitor go.
  viaQuery.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'Nika' } })
  t.equal((await viaQuery.nextOfType('RemoveUser')).json.args.userId, nika.userId)
  t.equal((await viaHeader.nextOfType('RemoveUser')).json.args.userId, nika.userId)
})

t.test('GET /agent/config and GET /agent/me with auth on', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const base = stack.subscribers[0]!.http

  const config = await fetch(`${base}/agent/config`)
  t.equal(config.status, 200)
  t.strictSame(await config.json(), { agentAuth: true, maxChatsPerAgent: 5, chatServer: stack.chatServers[0]!.http })

  const token = await stack.agentToken('Vika', { id: 'agent-42' })
  const me = await fetch(`${base}/agent/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200)
  t.strictSame(await me.json(), { agentId: 'agent-42', name: 'Vika' }, 'who the token says')
  const meQuery = await fetch(`${base}/agent/me?token=${token}`)
  t.strictSame(await meQuery.json(), { agentId: 'agent-42', name: 'Vika' }, 'through ?token= too')

  for (const [what, headers, code] of [
    ['no token', {}, 'TOKEN_MISSING'],
    ['expired', { authorization: `Bearer ${await stack.agentToken('Vika', { ttlSeconds: -5 })}` }, 'TOKEN_EXPIRED'],
    ['garbage', { authorization: 'Bearer x.y.z' }, 'TOKEN_INVALID'],
  ] as const) {
    const res = await fetch(`${base}/agent/me`, { headers })
    t.equal(res.status, 401, `${what}: 401`)
    t.strictSame(await res.json(), { statusCode: 401, code, error: 'Unauthorized', message: Errors[code].message }, `${what}: ${code}`)
  }
})

t.test('AGENT_AUTH off (the tests default): /users needs no token, and /agent/config says so', async (t) => {
  const stack = await startStack(t)
  const base = stack.subscribers[0]!.http
  const nika = await queued(stack, 'Nika')

  const anonymous = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
  await served(anonymous)
  t.equal(anonymous.received[0]?.json?.userId, nika.userId, 'an agent without a token loads the queue')
  // A token, even a broken one, is ignored when auth is off.
  t.same(await handshake(`${stack.subscribers[0]!.ws}/users`, { authorization: 'Bearer garbage' }), { upgraded: true })

  t.strictSame(await (await fetch(`${base}/agent/config`)).json(), { agentAuth: false, maxChatsPerAgent: 5, chatServer: stack.chatServers[0]!.http })
  const me = await fetch(`${base}/agent/me`)
  t.equal(me.status, 200)
  t.strictSame(await me.json(), { agentId: null, name: null }, 'nobody in particular')
})

for (const [alg, kind] of [
  ['RS256', 'rsa'],
  ['ES256', 'ec'],
] as const) {
  t.test(`${alg} public-key mode: tokens signed by the private key pass; HS256 with the PEM as secret does not`, async (t) => {
    const pair =
      kind === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
        : generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    // As a single line, the way .env files and compose files carry it (`\n` for newlines).
    const pemEnv = kind === 'rsa' ? pair.publicKey.replaceAll('\n', '\\n') : pair.publicKey
    const stack = await startStack(t, { env: { AGENT_AUTH: 'on', AGENT_JWT_PUBLIC_KEY: pemEnv } })
    const users = `${stack.subscribers[0]!.ws}/users`
    const base = stack.subscribers[0]!.http
    const claims = { sub: 'agent-pk', name: 'Vika', exp: now() + 3600 }
    const privateKey = await importPKCS8(pair.privateKey, alg)

    const token = await new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(privateKey)
    const agent = await stack.socket(users, 'pong:support', { token })
    await served(agent)
    t.pass('a token signed by the private key opens /users')
    t.strictSame(
      await (await fetch(`${base}/agent/me`, { headers: { authorization: `Bearer ${token}` } })).json(),
      { agentId: 'agent-pk', name: 'Vika' },
    )

    const confused = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(pair.publicKey))
    refusedWith(t, await handshake(users, { authorization: `Bearer ${confused}` }), 401, 'TOKEN_INVALID', 'HS256 signed with the PEM text')
    const confusedEscaped = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(pemEnv))
    refusedWith(t, await handshake(users, { authorization: `Bearer ${confusedEscaped}` }), 401, 'TOKEN_INVALID', 'HS256 signed with the env text')
    refusedWith(t, await handshake(users, { authorization: `Bearer ${unsigned(claims)}` }), 401, 'TOKEN_INVALID', 'alg none')
    const expired = await new SignJWT({ ...claims, exp: now() - 10 }).setProtectedHeader({ alg }).sign(privateKey)
    refusedWith(t, await handshake(users, { authorization: `Bearer ${expired}` }), 401, 'TOKEN_EXPIRED', 'expired')
    const noSub = await new SignJWT({ name: 'Vika', exp: now() + 60 }).setProtectedHeader({ alg }).sign(privateKey)
    refusedWith(t, await handshake(users, { authorization: `Bearer ${noSub}` }), 401, 'TOKEN_INVALID', 'no sub')
  })
}

/** Collects a child's stdout and resolves when it contains `pattern` (or rejects after `timeoutMs`). */
function outputWatcher(stream: NodeJS.ReadableStream) {
  let text = ''
  let waiters: { pattern: RegExp; resolve: () => void }[] = []
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    text += chunk
    waiters = waiters.filter((w) => (w.pattern.test(text) ? (w.resolve(), false) : true))
  })
  return {
    get text() {
      return text
    },
    until(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
      if (pattern.test(text)) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in the output in ${timeoutMs} ms:\n${text.slice(-2000)}`)), timeoutMs)
        waiters.push({ pattern, resolve: () => (clearTimeout(timer), resolve()) })
      })
    },
  }
}

t.test('the production logger never writes a token (a real Subscriber process, LOG_LEVEL=info)', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const port = await freePort()
  const secret = randomSecret()
  const child = spawn(process.execPath, ['--import=tsx', '--conditions=switchboard-source', 'services/subscriber/src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: redis.url, SUBSCRIBER_PORT: String(port), HOST: '127.0.0.1', AGENT_AUTH: 'on', AGENT_JWT_SECRET: secret, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  })
  const out = outputWatcher(child.stdout!)
  const err = outputWatcher(child.stderr!)
  await out.until(/Server listening/, 20_000)
  const base = `http://127.0.0.1:${port}`
  const ws = `ws://127.0.0.1:${port}`

  const good = await signAgentToken(secret, { id: 'agent-log', name: 'Vika', ttlSeconds: 3600 })
  const wrong = await signAgentToken(randomSecret(), { id: 'agent-log', name: 'Vika', ttlSeconds: 3600 })
  const expired = await signAgentToken(secret, { id: 'agent-log', name: 'Vika', ttlSeconds: -60 })

  const socket = await TestSocket.open(`${ws}/users?token=${good}`, { pong: 'pong:support' })
  t.teardown(() => socket.close())
  await served(socket)
  refusedWith(t, await handshake(`${ws}/users?token=${wrong}`), 401, 'TOKEN_INVALID', 'wrong secret, in the query')
  refusedWith(t, await handshake(`${ws}/users?a=1&token=${expired}`), 401, 'TOKEN_EXPIRED', 'expired, in the query')
  refusedWith(t, await handshake(`${ws}/users`, { authorization: `Bearer ${wrong}` }), 401, 'TOKEN_INVALID', 'wrong secret, in the header')
  t.equal((await fetch(`${base}/agent/me?token=${good}`)).status, 200)
  t.equal((await fetch(`${base}/agent/me?token=${wrong}`)).status, 401)

  // Every one of those requests was logged (with its url) before we look.
  await out.until(/(?:"url":"\/agent\/me\?token=<redacted>"[\s\S]*){2}/)
  await out.until(/"msg":"agent token refused"[\s\S]*"msg":"agent token refused"[\s\S]*"msg":"agent token refused"[\s\S]*"msg":"agent token refused"/)
  const logged = out.text + err.text
  t.match(logged, '"url":"/users?token=<redacted>"', 'the socket request is logged, token redacted')
  t.match(logged, '"url":"/users?a=1&token=<redacted>"')
  for (const [what, token] of [
    ['the valid token', good],
    ['the wrongly signed token', wrong],
    ['the expired token', expired],
  ] as const) {
    t.notMatch(logged, token, `${what} is nowhere in the log`)
    t.notMatch(logged, token.split('.')[2]!, `nor its signature`)
    t.notMatch(logged, token.split('.')[1]!, `nor its claims`)
  }
})

t.test('an app built with its own logger (ServiceOptions.logger) still never writes a token', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let logged = ''
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logged += chunk.toString()
      done()
    },
  })
  const secret = randomSecret()
  const app = await buildApp(testConfig(redis.url, { AGENT_AUTH: 'on', AGENT_JWT_SECRET: secret }), { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const token = await signAgentToken(secret, { id: 'agent-log', name: 'Vika', ttlSeconds: 3600 })
  t.equal((await fetch(`http://127.0.0.1:${port}/agent/me?token=${token}`)).status, 200)
  const wrong = await signAgentToken(randomSecret(), { id: 'agent-log', name: 'Vika', ttlSeconds: 3600 })
  refusedWith(t, await handshake(`ws://127.0.0.1:${port}/users?token=${wrong}`), 401, 'TOKEN_INVALID', 'a refused socket')

  t.match(logged, /incoming request/, 'requests are logged to the given stream')
  t.notMatch(logged, token.split('.')[2]!, 'the valid token is not in the log')
  t.notMatch(logged, wrong.split('.')[2]!, 'nor the refused one')
})
