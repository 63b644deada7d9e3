import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { SignJWT, decodeJwt, decodeProtectedHeader, importPKCS8, type JWTPayload } from 'jose'
import type { FastifyRequest } from 'fastify'
import {
  AuthError,
  createAgentVerifier,
  parseTtl,
  randomSecret,
  requestForLog,
  signAgentToken,
  tokenFrom,
  type AgentVerifier,
} from '@switchboard/server-kit'

const SECRET = 'unit-test-secret-that-is-long-enough-0123456789'
const now = () => Math.floor(Date.now() / 1000)
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** An HS256 token with exactly these claims (nothing added). */
function hs256(claims: JWTPayload, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret))
}

/** An unsigned token: `alg: none`, empty signature. */
function unsigned(claims: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`
}

type Asserts = Pick<typeof t, 'rejects'>
/** The verifier refuses the token with this AuthError code. */
function refuses(t: Asserts, verifier: AgentVerifier, token: string, code: AuthError['code'], what: string) {
  return t.rejects(verifier.verify(token), { name: 'AuthError', code }, what)
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

t.test('HS256: signAgentToken round-trips through createAgentVerifier', async (t) => {
  const verifier = await createAgentVerifier({ kind: 'secret', secret: SECRET })
  t.same(verifier.algorithms, ['HS256'])
  const token = await signAgentToken(SECRET, { id: 'agent-7', name: 'Vika', ttlSeconds: 60 })
  t.strictSame(await verifier.verify(token), { agentId: 'agent-7', name: 'Vika' })

  t.same(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' }, 'header: HS256, JWT')
  const claims = decodeJwt(token)
  t.equal(claims.sub, 'agent-7')
  t.equal(claims.name, 'Vika')
  t.type(claims.iat, 'number')
  t.ok(Math.abs(claims.exp! - (now() + 60)) <= 2, 'exp is now + ttlSeconds')
})

t.test('HS256: every kind of bad token is refused with its code', async (t) => {
  const verifier = await createAgentVerifier({ kind: 'secret', secret: SECRET })
  const good = { sub: 'a1', name: 'Vika', exp: now() + 60 }

  await refuses(t, verifier, await signAgentToken(SECRET, { id: 'a1', name: 'Vika', ttlSeconds: -10 }), 'TOKEN_EXPIRED', 'expired')
  await refuses(t, verifier, await hs256(good, 'another-secret-that-is-also-long-enough-42'), 'TOKEN_INVALID', 'signed with another secret')
  await refuses(t, verifier, unsigned(good), 'TOKEN_INVALID', 'alg none')
  await refuses(t, verifier, unsigned({ ...good, exp: now() - 10 }), 'TOKEN_INVALID', 'alg none, expired: still INVALID (the signature is checked first)')
  await refuses(t, verifier, await hs256(good, SECRET, 'HS384'), 'TOKEN_INVALID', 'HS384 with the right secret: the algorithm is pinned')
  await refuses(t, verifier, await hs256({ name: 'Vika', exp: now() + 60 }), 'TOKEN_INVALID', 'no sub')
  await refuses(t, verifier, await hs256({ sub: 'a1', name: 'Vika' }), 'TOKEN_INVALID', 'no exp: tokens must expire')
  await refuses(t, verifier, await hs256({ ...good, sub: '' }), 'TOKEN_INVALID', 'an empty sub names nobody')
  // Claims of the wrong kind are refused, not stringified (a sub 42 is not the agent "42").
  await refuses(t, verifier, await hs256({ ...good, sub: 42 as unknown as string }), 'TOKEN_INVALID', 'a numeric sub')
  await refuses(t, verifier, await hs256({ ...good, sub: { id: 'a1' } as unknown as string }), 'TOKEN_INVALID', 'an object sub')
  await refuses(t, verifier, await hs256({ ...good, name: 42 }), 'TOKEN_INVALID', 'a numeric name')
  await refuses(t, verifier, await hs256({ ...good, name: ['Vika'] }), 'TOKEN_INVALID', 'an array name')
  await refuses(t, verifier, await hs256({ ...good, name: null }), 'TOKEN_INVALID', 'a null name')
  await refuses(t, verifier, await hs256({ ...good, sub: 'x'.repeat(129) }), 'TOKEN_INVALID', 'a sub over 128 characters')
  await refuses(t, verifier, await hs256({ ...good, nbf: now() + 3600 }), 'TOKEN_INVALID', 'not valid before an hour from now')
  for (const garbage of ['', 'garbage', 'a.b.c', '...', 'eyJhbGciOiJIUzI1NiJ9', `${b64({ alg: 'HS256' })}.%%%.sig`]) {
    await refuses(t, verifier, garbage, 'TOKEN_INVALID', `garbage ${JSON.stringify(garbage)}`)
  }

  // A payload changed after signing (another name, another sub) fails the signature.
  const token = await hs256(good)
  const [header, , signature] = token.split('.')
  await refuses(t, verifier, `${header}.${b64({ ...good, sub: 'admin' })}.${signature}`, 'TOKEN_INVALID', 'tampered payload')

  // The refusal's message says nothing of the token.
  const err = await verifier.verify(`${header}.${b64({ ...good, sub: 'admin' })}.${signature}`).catch((e: unknown) => e)
  t.type(err, AuthError)
  t.notMatch((err as Error).message, signature!, 'the message does not echo the token')
})

t.test('HS256: a sub longer than 128 is refused, 128 is accepted', async (t) => {
  const verifier = await createAgentVerifier({ kind: 'secret', secret: SECRET })
  const id = 'x'.repeat(128)
  t.equal((await verifier.verify(await hs256({ sub: id, exp: now() + 60 }))).agentId, id)
})

t.test('the name: from `name`, else `sub`; control characters stripped; at most 64 characters', async (t) => {
  const verifier = await createAgentVerifier({ kind: 'secret', secret: SECRET })
  const exp = now() + 60
  const nameOf = async (claims: JWTPayload) => (await verifier.verify(await hs256({ sub: 'agent-9', exp, ...claims }))).name

  t.equal(await nameOf({}), 'agent-9', 'no name: the sub')
  t.equal(await nameOf({ name: '   ' }), 'agent-9', 'a blank name: the sub')
  t.equal(await nameOf({ name: '  Vika  ' }), 'Vika', 'trimmed')
  t.equal(await nameOf({ name: 'Vi\u0000ka\n\u001b[31m\u007f\u009b' }), 'Vika[31m', 'C0, DEL and C1 control characters are removed')
  t.equal(await nameOf({ name: 'v'.repeat(200) }), 'v'.repeat(64), 'cut to 64')
  t.equal(await nameOf({ name: '🙂'.repeat(64) }), '🙂'.repeat(64), '64 emoji are 64 characters: kept whole')
  const cut = await nameOf({ name: `${'a'.repeat(63)}🙂🙂` })
  t.notMatch(cut, LONE_SURROGATE, 'cutting never leaves half an emoji')
  await t.rejects(
    verifier.verify(await hs256({ sub: 'agent-9', exp, name: '\u0000\u0001' })),
    { code: 'TOKEN_INVALID' },
    'a name of nothing but control characters names nobody',
  )
})

t.test('RS256 and ES256: tokens signed by the private key pass; algorithm confusion is refused', async (t) => {
  const keys = {
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }),
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }),
  }
  for (const [alg, pair] of Object.entries(keys)) {
    await t.test(alg, async (t) => {
      const verifier = await createAgentVerifier({ kind: 'public-key', pem: pair.publicKey })
      t.same(verifier.algorithms, [alg], `the algorithm follows the key type`)
      const privateKey = await importPKCS8(pair.privateKey, alg)
      const sign = (claims: JWTPayload, header: Record<string, unknown> = {}) =>
        new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(privateKey)
      const good = { sub: 'agent-rsa', name: 'Vika', exp: now() + 60 }

      t.strictSame(await verifier.verify(await sign(good)), { agentId: 'agent-rsa', name: 'Vika' })
      await refuses(t, verifier, await sign({ ...good, exp: now() - 10 }), 'TOKEN_EXPIRED', 'expired')
      await refuses(t, verifier, await sign({ name: 'Vika', exp: now() + 60 }), 'TOKEN_INVALID', 'no sub')
      // The classic confusion: the public key's PEM text used as an HMAC secret.
      await refuses(t, verifier, await hs256(good, pair.publicKey), 'TOKEN_INVALID', 'HS256 with the PEM as secret')
      await refuses(t, verifier, unsigned(good), 'TOKEN_INVALID', 'alg none')
      // A key pair of the same kind that is not the configured one.
      const other =
        alg === 'RS256'
          ? generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
          : generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
      const forged = await new SignJWT(good).setProtectedHeader({ alg }).sign(await importPKCS8(other.privateKey, alg))
      await refuses(t, verifier, forged, 'TOKEN_INVALID', 'signed by another private key')
    })
  }

  await t.test('RS256 mode refuses PS256, the same RSA key with another padding', async (t) => {
    const verifier = await createAgentVerifier({ kind: 'public-key', pem: keys.RS256.publicKey })
    const token = await new SignJWT({ sub: 'a', exp: now() + 60 }).setProtectedHeader({ alg: 'PS256' }).sign(await importPKCS8(keys.RS256.privateKey, 'PS256'))
    await refuses(t, verifier, token, 'TOKEN_INVALID', 'PS256')
  })
})

t.test('a public key of another type is refused when the verifier is made', async (t) => {
  const ed = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  await t.rejects(createAgentVerifier({ kind: 'public-key', pem: ed.publicKey }), /unsupported key type ed25519/)
  await t.rejects(createAgentVerifier({ kind: 'public-key', pem: '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----' }))
})

t.test('parseTtl', async (t) => {
  t.equal(parseTtl('45s'), 45)
  t.equal(parseTtl('30m'), 1800)
  t.equal(parseTtl('8h'), 28_800)
  t.equal(parseTtl('7d'), 604_800)
  t.equal(parseTtl(' 8h '), 28_800, 'surrounding spaces are trimmed')
  t.equal(parseTtl('8 h'), 28_800, 'a space between number and unit is allowed')
  t.equal(parseTtl('0s'), 0)
  for (const bad of ['', '8', 'h', '8x', '8H', '-1h', '1.5h', '8hours', 'h8', '8h8', 'Infinity']) {
    t.throws(() => parseTtl(bad), /A TTL is a number and a unit/, `${JSON.stringify(bad)} is refused`)
  }
})

t.test('tokenFrom: the Authorization header first, then ?token=', async (t) => {
  t.equal(tokenFrom({ authorization: 'Bearer abc.def.ghi' }, {}), 'abc.def.ghi')
  t.equal(tokenFrom({ authorization: 'bearer abc' }, {}), 'abc', 'the scheme is case-insensitive')
  t.equal(tokenFrom({ authorization: 'BEARER abc' }, {}), 'abc')
  t.equal(tokenFrom({ authorization: 'Bearer    abc' }, {}), 'abc', 'several spaces')
  t.equal(tokenFrom({ authorization: 'Bearer header-token' }, { token: 'query-token' }), 'header-token', 'the header beats the query')
  t.equal(tokenFrom({}, { token: 'query-token' }), 'query-token', 'the query when there is no header')
  t.equal(tokenFrom({ authorization: 'Basic dXNlcjpwYXNz' }, { token: 'q' }), 'q', 'another scheme is no token: the query is used')
  t.equal(tokenFrom({ authorization: 'Bearer a b' }, {}), undefined, 'two words are not a token')
  t.equal(tokenFrom({ authorization: 'Bearer' }, {}), undefined, 'a scheme without token')
  t.equal(tokenFrom({ authorization: 'Bearer ' }, {}), undefined)
  t.equal(tokenFrom({}, {}), undefined, 'none at all')
  t.equal(tokenFrom({}, undefined), undefined, 'no query object')
  t.equal(tokenFrom({}, { token: '' }), undefined, 'an empty ?token=')
  t.equal(tokenFrom({}, { token: ['a', 'b'] }), undefined, 'a repeated ?token= is not a token')
  t.equal(tokenFrom({ authorization: ['Bearer a', 'Bearer b'] }, {}), undefined, 'a repeated header is not a token')
})

t.test('randomSecret: 256 bits, base64url, a new one each time', async (t) => {
  const a = randomSecret()
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.not(randomSecret(), a)
})

t.test('requestForLog never shows a token from the query string', async (t) => {
  const log = (url: string) => requestForLog({ method: 'GET', url, ip: '203.0.113.9' } as FastifyRequest)
  t.strictSame(log('/users?token=SECRET.JWT.VALUE'), { method: 'GET', url: '/users?token=<redacted>', remoteAddress: '203.0.113.9' })
  t.equal(log('/chat/abc?x=1&token=SECRET&y=2').url, '/chat/abc?x=1&token=<redacted>&y=2', 'among other parameters')
  t.equal(log('/users?TOKEN=SECRET').url, '/users?TOKEN=<redacted>', 'whatever the case')
  t.equal(log('/users?token=SECRET#frag').url, '/users?token=<redacted>#frag')
  t.equal(log('/users?token=A&token=B').url, '/users?token=<redacted>&token=<redacted>', 'every occurrence')
  t.equal(log('/users?mytoken=keep').url, '/users?mytoken=keep', 'another parameter ending in token is kept')
  t.equal(log('/health').url, '/health')
  for (const url of ['/users?token=SECRET', '/users?a=1&token=SECRET', '/users?token=SECRET&token=SECRET']) {
    t.notMatch(JSON.stringify(log(url)), 'SECRET', `${url}: no trace of the token`)
  }
  // fastify's query parser decodes names, so `?%74oken=…` is read as the token (tokenFrom takes it).
  t.notMatch(JSON.stringify(log('/users?%74oken=SECRET')), 'SECRET', 'a percent-encoded parameter name is still the token')
})
