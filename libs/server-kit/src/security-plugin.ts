import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AuthError, createAgentVerifier, randomSecret, tokenFrom, type AgentIdentity, type AgentVerifier } from './agent-auth.js'
import type { Config } from './config.js'
import { sendHttpError } from './http-errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    agentAuth: {
      /** False when AGENT_AUTH=off. */
      readonly enabled: boolean
      /** Set when no key was configured and this process made one up: tokens only this process accepts. */
      readonly generatedSecret: string | undefined
      readonly verifier: AgentVerifier | undefined
    }
  }
  interface FastifyRequest {
    /** The agent the handshake's token names; null without a (valid) token or with auth off. */
    agent: AgentIdentity | null
  }
}

/**
 * Whether a browser page at `origin` may talk to this server: the allowlist,
 * or the page came from this very server (same origin). The same-origin rule
 * trusts the Host header, which a DNS-rebinding page controls; it is only
 * used while agents need tokens, so such a page can reach nothing a visitor
 * could not.
 */
export function originAllowed(origin: string, host: string | undefined, allowed: Config['allowedOrigins'], sameOrigin = true): boolean {
  if (allowed === '*') return true
  if (allowed.includes(origin)) return true
  if (!sameOrigin) return false
  try {
    return host !== undefined && new URL(origin).host === host
  } catch {
    return false
  }
}

/**
 * Origin allowlist for every request a browser makes (a foreign Origin gets
 * 403 before any upgrade), and agent authentication: a verifier built once,
 * plus `requireAgent` / `acceptAgent` hooks for routes.
 */
export const securityPlugin = fp(
  async function securityPlugin(app: FastifyInstance, opts: { config: Config }) {
    const { config } = opts
    let verifier: AgentVerifier | undefined
    let generatedSecret: string | undefined
    if (config.agentAuth.mode === 'on') {
      const { secret, publicKeyPem } = config.agentAuth
      if (publicKeyPem !== undefined) verifier = await createAgentVerifier({ kind: 'public-key', pem: publicKeyPem })
      else {
        if (secret === undefined) generatedSecret = randomSecret()
        verifier = await createAgentVerifier({ kind: 'secret', secret: secret ?? generatedSecret! })
      }
    }
    app.decorate('agentAuth', { enabled: verifier !== undefined, generatedSecret, verifier })
    if (config.agentAuth.mode === 'off') {
      app.log.warn(
        '*** AGENT_AUTH=off: agent authentication is OFF. Anyone who can reach this server can see every waiting visitor and join any chat as an agent. Use only for local demos and unmodified seed-004 clients. ***',
      )
    } else if (generatedSecret !== undefined) {
      app.log.warn('no AGENT_JWT_SECRET or AGENT_JWT_PUBLIC_KEY: this process made a random secret; tokens from other processes are refused. Set AGENT_JWT_SECRET when running services separately.')
    }
    app.decorateRequest('agent', null)

    app.addHook('onRequest', async (req, reply) => {
      const origin = req.headers.origin
      if (origin === undefined || originAllowed(origin, req.headers.host, config.allowedOrigins, config.agentAuth.mode === 'on')) return
      req.log.warn({ origin }, 'request from a foreign origin refused')
      return sendHttpError(reply, 'ORIGIN_NOT_ALLOWED')
    })
  },
  { name: 'switchboard-security' },
)

async function identify(req: FastifyRequest, reply: FastifyReply, required: boolean): Promise<FastifyReply | undefined> {
  const { verifier } = req.server.agentAuth
  if (verifier === undefined) return undefined
  const token = tokenFrom(req.headers, req.query)
  if (token === undefined) return required ? sendHttpError(reply, 'TOKEN_MISSING') : undefined
  try {
    req.agent = await verifier.verify(token)
    return undefined
  } catch (err) {
    const code = err instanceof AuthError ? err.code : 'TOKEN_INVALID'
    req.log.warn({ code }, 'agent token refused')
    return sendHttpError(reply, code === 'TOKEN_MISSING' ? 'TOKEN_MISSING' : code)
  }
}

/** preValidation: a valid agent token is required (unless AGENT_AUTH=off); 401 before any upgrade. */
export function requireAgent(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  return identify(req, reply, true)
}

/** preValidation: a token is optional, but one that is present must be valid (401 otherwise). */
export function acceptAgent(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  return identify(req, reply, false)
}
