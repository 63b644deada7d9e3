import { createPublicKey, randomBytes } from 'node:crypto'
import { SignJWT, errors as joseErrors, importSPKI, jwtVerify, type CryptoKey, type JWTPayload } from 'jose'

/** Who an agent is, as their token says: `sub` and `name`. */
export interface AgentIdentity {
  agentId: string
  name: string
}

/** Why a token was refused; the code is stable, the message is for logs and the 401 body. */
export class AuthError extends Error {
  constructor(
    readonly code: 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED',
    message: string,
  ) {
    super(message)
    this.name = 'AuthError'
  }
}

export type AgentKey =
  | { kind: 'secret'; secret: string }
  | { kind: 'public-key'; pem: string }

export interface AgentVerifier {
  /** The algorithms a token may use; anything else (`none` included) is refused. */
  readonly algorithms: readonly string[]
  verify(token: string): Promise<AgentIdentity>
}

const MAX_AGENT_ID = 128
const MAX_AGENT_NAME = 64
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/** A random HS256 secret (256 bits, base64url), for a start without a configured key. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Verifies agent JWTs: HS256 with a shared secret, or RS256/ES256 with a
 * public key (the algorithm follows the key's type). `sub` (a string) and
 * `exp` are required; `name`, a string when present, defaults to `sub`.
 */
export async function createAgentVerifier(key: AgentKey): Promise<AgentVerifier> {
  let verifyKey: CryptoKey | Uint8Array
  let algorithms: string[]
  if (key.kind === 'secret') {
    verifyKey = new TextEncoder().encode(key.secret)
    algorithms = ['HS256']
  } else {
    const type = createPublicKey(key.pem).asymmetricKeyType
    const alg = type === 'rsa' ? 'RS256' : type === 'ec' ? 'ES256' : undefined
    if (alg === undefined) throw new Error(`AGENT_JWT_PUBLIC_KEY: unsupported key type ${type}; use an RSA or P-256 EC public key`)
    verifyKey = await importSPKI(key.pem, alg)
    algorithms = [alg]
  }
  return {
    algorithms,
    async verify(token) {
      let payload: JWTPayload
      try {
        ;({ payload } = await jwtVerify(token, verifyKey, { algorithms, requiredClaims: ['sub', 'exp'] }))
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) throw new AuthError('TOKEN_EXPIRED', 'The agent token has expired')
        throw new AuthError('TOKEN_INVALID', 'The agent token is not valid')
      }
      // Claims are taken as they are, never converted: a numeric `sub` (42) would
      // otherwise name the same agent as the string "42" minted by someone else.
      if (typeof payload.sub !== 'string') throw new AuthError('TOKEN_INVALID', 'The agent token\'s sub is not a string')
      if (payload.name !== undefined && typeof payload.name !== 'string') throw new AuthError('TOKEN_INVALID', 'The agent token\'s name is not a string')
      const agentId = payload.sub
      const rawName = payload.name?.trim() ? payload.name : agentId
      // Cut by characters (code points), never inside an emoji.
      const name = Array.from(rawName.replace(CONTROL, '').trim()).slice(0, MAX_AGENT_NAME).join('').trim()
      if (!agentId || agentId.length > MAX_AGENT_ID || !name) throw new AuthError('TOKEN_INVALID', 'The agent token names no usable agent')
      return { agentId, name }
    },
  }
}

/** `8h`, `30m`, `7d`, `45s` → seconds. */
export function parseTtl(ttl: string): number {
  const m = /^(\d+)\s*([smhd])$/.exec(ttl.trim())
  if (!m) throw new Error(`A TTL is a number and a unit (s, m, h, d), e.g. 8h; got ${JSON.stringify(ttl)}`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd']
}

/** Signs an HS256 agent token. */
export async function signAgentToken(secret: string, agent: { id: string; name: string; ttlSeconds: number }): Promise<string> {
  return new SignJWT({ name: agent.name })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(agent.id)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + agent.ttlSeconds)
    .sign(new TextEncoder().encode(secret))
}

/** The token a request carries: `Authorization: Bearer …`, else a `token` query parameter (browsers cannot set headers on WebSockets). */
export function tokenFrom(headers: Record<string, string | string[] | undefined>, query: unknown): string | undefined {
  const auth = headers.authorization
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)$/i.exec(auth)
    if (m) return m[1]
  }
  const fromQuery = (query as { token?: unknown } | undefined)?.token
  return typeof fromQuery === 'string' && fromQuery.length > 0 ? fromQuery : undefined
}
