import type { FastifyInstance } from 'fastify'
import { requireAgent } from '@switchboard/server-kit'

/** What the agent console needs to know before it connects. */
export async function agentRoutes(app: FastifyInstance, opts: { maxChatsPerAgent: number }) {
  const maxChats = opts.maxChatsPerAgent
  /** Whether agents need a token here, and how many chats each may hold (0: no limit). */
  app.get('/agent/config', async () => ({ agentAuth: app.agentAuth.enabled, maxChatsPerAgent: maxChats }))

  /** Who the presented token says the agent is (401 if it is not valid). */
  app.get('/agent/me', { preValidation: requireAgent }, async (req) =>
    req.agent ?? { agentId: null, name: null },
  )
}
