import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { isRedisUnavailable, touchWaiting, type ExpiryOptions } from '@switchboard/domain'

declare module 'fastify' {
  interface FastifyInstance {
    /** Chats whose visitor is connected here and whom no agent has joined: kept alive while that lasts. */
    waitingVisitors: {
      add(chatId: string): void
      delete(chatId: string): void
    }
  }
}

/**
 * A visitor still waiting for an agent stays in the queue while their socket
 * is open: this instance pushes their chat's deadline forward a few times per
 * CHAT_TTL. Once they leave, the deadline runs out and the chat expires.
 */
export const waitingKeepAlivePlugin = fp(
  async function waitingKeepAlive(app: FastifyInstance, opts: ExpiryOptions) {
    const counts = new Map<string, number>()
    app.decorate('waitingVisitors', {
      add(chatId: string) {
        counts.set(chatId, (counts.get(chatId) ?? 0) + 1)
      },
      delete(chatId: string) {
        const n = (counts.get(chatId) ?? 0) - 1
        if (n > 0) counts.set(chatId, n)
        else counts.delete(chatId)
      },
    })
    const everyMs = Math.max(50, Math.min(opts.chatTtlMs / 4, 15_000))
    const timer = setInterval(() => {
      if (counts.size === 0) return
      touchWaiting(app.redis.commands, counts.keys(), opts).catch((err) => {
        if (!isRedisUnavailable(err)) app.log.error({ err }, 'keeping waiting visitors alive failed')
      })
    }, everyMs)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'switchboard-waiting-keepalive', dependencies: ['switchboard-redis'] },
)
