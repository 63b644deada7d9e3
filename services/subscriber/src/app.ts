import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { createServiceApp, type Config, type ServiceOptions } from '@switchboard/server-kit'
import { queueFeedPlugin } from './plugins/queue-feed.js'
import { agentsPlugin } from './plugins/agents.js'
import { usersRoute } from './routes/users.js'
import { agentRoutes } from './routes/agent.js'

export type BuildOptions = ServiceOptions

/** Builds Subscriber without listening: the agent console at `/`, WebSocket `/users` for agents, `GET /agent/config`, `GET /agent/me`, `GET /health`, `GET /ready`, `GET /metrics`, `GET /docs/openapi.json`. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = await createServiceApp(
    { name: 'subscriber', description: 'Agents see the queue of waiting visitors, claim them, and see each other over WebSockets.', publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)) },
    config,
    opts,
  )
  await app.register(queueFeedPlugin)
  await app.register(agentsPlugin, { offlineAfterMs: config.agentOfflineAfterMs, forgetAfterMs: config.agentForgetAfterMs })
  await app.register(usersRoute, { maxChatsPerAgent: config.maxChatsPerAgent, chatTtlMs: config.chatTtlSeconds * 1000, keyGraceMs: config.chatKeyGraceMs, agentForgetAfterMs: config.agentForgetAfterMs })
  await app.register(agentRoutes, {
    maxChatsPerAgent: config.maxChatsPerAgent,
    chatServerPort: config.chatServerPort,
    ...(config.chatServerPublicUrl !== undefined ? { chatServerPublicUrl: config.chatServerPublicUrl } : {}),
  })
  return app
}
