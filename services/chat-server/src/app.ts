import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { createServiceApp, type Config, type ServiceOptions } from '@switchboard/server-kit'
import { MAX_NAME_LENGTH } from '@switchboard/protocol'
import { joinRoute } from './routes/join.js'
import { chatRoute } from './routes/chat.js'
import { ChatChannels } from './chat-channels.js'
import { waitingKeepAlivePlugin } from './plugins/waiting-keepalive.js'
import { queuePositionsPlugin } from './plugins/queue-positions.js'

export type BuildOptions = ServiceOptions
export { ChatChannels } from './chat-channels.js'

/** Builds ChatServer without listening: the visitor page at `/`, `GET /user/join/:userName`, `GET /status`, WebSocket `/chat/:chatId`, `GET /health`, `GET /ready`, `GET /metrics`, `GET /docs/openapi.json`. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = await createServiceApp(
    {
      name: 'chat-server',
      description: 'Visitors register, and visitors and agents talk in chats over WebSockets.',
      publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)),
      // A name longer than the limit must reach the route to get a 400, not a 404.
      fastifyOptions: { routerOptions: { maxParamLength: MAX_NAME_LENGTH * 16 } },
    },
    config,
    opts,
  )
  const expiry = { chatTtlMs: config.chatTtlSeconds * 1000, keyGraceMs: config.chatKeyGraceMs }
  app.decorate('chatChannels', new ChatChannels(app.redis.commands, app.pubsub, app.log))
  await app.register(waitingKeepAlivePlugin, { ...expiry, queueLeaveGraceMs: config.queueLeaveGraceMs, holder: app.chatChannels.holder })
  await app.register(queuePositionsPlugin, { intervalMs: config.queuePositionIntervalMs })
  await app.register(joinRoute, { ...expiry, joinsPerMinute: config.limits.joinsPerMinute })
  await app.register(chatRoute, {
    ...expiry,
    maxMessageLength: config.limits.maxMessageLength,
    maxSocketsPerChat: config.limits.maxSocketsPerChat,
    joinTimeoutMs: config.limits.joinTimeoutMs,
    typingTimeoutMs: config.typingTimeoutMs,
    maxChatsPerAgent: config.maxChatsPerAgent,
  })
  return app
}
