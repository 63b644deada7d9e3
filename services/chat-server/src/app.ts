import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { expiryPlugin, redisPlugin, socketsPlugin, type Config } from '@switchboard/server-kit'
import { MAX_NAME_LENGTH } from '@switchboard/protocol'
import { joinRoute } from './routes/join.js'
import { chatRoute } from './routes/chat.js'
import { waitingKeepAlivePlugin } from './plugins/waiting-keepalive.js'

export interface BuildOptions {
  /** A logger config for fastify; defaults to pino at `config.logLevel`. */
  logger?: FastifyServerOptions['logger']
  /** How often expired chats are looked for. @default 500 */
  sweepIntervalMs?: number
}

/** Builds ChatServer without listening: `GET /user/join/:userName`, WebSocket `/chat/:chatId`, `GET /health`. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel, name: 'chat-server' },
    // A name longer than the limit must reach the route to get a 400, not a 404.
    routerOptions: { maxParamLength: MAX_NAME_LENGTH * 16 },
  })
  await app.register(redisPlugin, { url: config.redisUrl })
  await app.register(socketsPlugin, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxFrameBytes: config.maxFrameBytes,
  })
  await app.register(expiryPlugin, opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs })
  await app.register(waitingKeepAlivePlugin, { chatTtlMs: config.chatTtlSeconds * 1000 })
  await app.register(joinRoute, { chatTtlMs: config.chatTtlSeconds * 1000 })
  await app.register(chatRoute, { chatTtlMs: config.chatTtlSeconds * 1000 })
  return app
}
