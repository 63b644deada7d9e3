import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { isRedisUnavailable, sweepExpired, warnExpiring } from '@switchboard/domain'

export interface ExpiryPluginOptions {
  /** How often this instance looks for expired chats. @default 500 */
  sweepIntervalMs?: number
  /** How long before its deadline a chat with an agent gets ChatExpiring (v2); 0 for never. @default 0 */
  warnMs?: number
}

/**
 * Expires chats past their deadline. Every instance sweeps; the expiry script
 * makes sure each chat is expired and announced once.
 */
export const expiryPlugin = fp(
  async function expiryPlugin(app: FastifyInstance, opts: ExpiryPluginOptions) {
    let running = false
    const timer = setInterval(async () => {
      if (running) return
      running = true
      try {
        if (opts.warnMs) await warnExpiring(app.redis.commands, opts.warnMs)
        const expired = await sweepExpired(app.redis.commands)
        if (expired > 0) app.log.debug({ expired }, 'chats expired')
      } catch (err) {
        if (!isRedisUnavailable(err)) app.log.error({ err }, 'expiry sweep failed')
      } finally {
        running = false
      }
    }, opts.sweepIntervalMs ?? 500)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'switchboard-expiry', dependencies: ['switchboard-redis'] },
)
