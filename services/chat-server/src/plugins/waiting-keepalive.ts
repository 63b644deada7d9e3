import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { isRedisUnavailable, touchWaiting, waitingVisitorGone, waitingVisitorHere, type ExpiryOptions } from '@switchboard/domain'

declare module 'fastify' {
  interface FastifyInstance {
    /** Chats whose visitor is connected here and whom no agent has joined: kept alive while that lasts. */
    waitingVisitors: {
      add(chatId: string): void
      delete(chatId: string): void
    }
  }
}

export interface WaitingKeepAliveOptions extends ExpiryOptions {
  /** QUEUE_LEAVE_GRACE_SECONDS, in ms: how long a waiting visitor with no socket anywhere keeps their place. */
  queueLeaveGraceMs: number
  /** This instance's id (ChatChannels' holder id: new at every start). */
  holder: string
}

/**
 * A visitor still waiting for an agent stays in the queue while their socket
 * is open: this instance pushes their chat's deadline forward a few times per
 * CHAT_TTL. When the visitor's last socket here closes, the chat's hash
 * learns it (sbWaitingVisitor); once no instance has one, the deadline comes
 * forward to QUEUE_LEAVE_GRACE_SECONDS from then, and the chat expires and
 * leaves the queue unless the visitor comes back first (a reload: their first
 * socket here moves the deadline on again at once).
 */
export const waitingKeepAlivePlugin = fp(
  async function waitingKeepAlive(app: FastifyInstance, opts: WaitingKeepAliveOptions) {
    const counts = new Map<string, number>()
    const failed = (what: string) => (err: Error) => {
      // Without it the visitor's place lasts the whole CHAT_TTL instead of the grace: late, never lost.
      if (!isRedisUnavailable(err)) app.log.error({ err }, what)
    }
    app.decorate('waitingVisitors', {
      add(chatId: string) {
        const n = (counts.get(chatId) ?? 0) + 1
        counts.set(chatId, n)
        if (n > 1) return
        const redis = app.redis.commands
        waitingVisitorHere(redis, chatId, opts.holder)
          .then(() => touchWaiting(redis, [chatId], opts))
          .catch(failed('recording a waiting visitor failed'))
      },
      delete(chatId: string) {
        const n = (counts.get(chatId) ?? 0) - 1
        if (n > 0) return void counts.set(chatId, n)
        counts.delete(chatId)
        waitingVisitorGone(app.redis.commands, chatId, opts.holder, opts.queueLeaveGraceMs)
          .then((leaving) => leaving && app.log.debug({ chatId }, 'waiting visitor gone: leaves the queue unless back soon'))
          .catch(failed('recording a waiting visitor leaving failed'))
      },
    })
    const everyMs = Math.max(50, Math.min(opts.chatTtlMs / 4, 15_000))
    const timer = setInterval(() => {
      if (counts.size === 0) return
      touchWaiting(app.redis.commands, counts.keys(), opts).catch(failed('keeping waiting visitors alive failed'))
    }, everyMs)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'switchboard-waiting-keepalive', dependencies: ['switchboard-redis'] },
)
