import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { encodeV2, type QueuePositionArgs } from '@switchboard/protocol'
import { channels, isRedisUnavailable, queuePositions } from '@switchboard/domain'

/** Gets a waiting visitor's QueuePosition frame, whenever it changed. */
export type PositionListener = (frame: string) => void

declare module 'fastify' {
  interface FastifyInstance {
    /** Waiting v2 visitors here, told where they stand whenever the queue moves. */
    queuePositions: {
      /** Watches a chat's place; the listener gets the current one at once, then every change. Returns the function that stops watching. */
      watch(chatId: string, listener: PositionListener): () => void
    }
  }
}

/**
 * One subscription to the queue channel per ChatServer. Every queue event
 * (anyone joining, claimed or leaving, on any instance) re-reads the places
 * of the visitors waiting here, in one round trip however many they are, and
 * each visitor whose position, queue length or estimate changed is told.
 */
export const queuePositionsPlugin = fp(
  async function queuePositionsPlugin(app: FastifyInstance) {
    const watchers = new Map<string, Map<PositionListener, string>>()
    let running = false
    let dirty = false

    const update = async () => {
      if (running) {
        dirty = true
        return
      }
      running = true
      try {
        do {
          dirty = false
          if (watchers.size === 0) break
          const positions = await queuePositions(app.redis.commands, [...watchers.keys()])
          for (const [chatId, listeners] of watchers) {
            const position = positions.get(chatId)
            if (position !== undefined) tell(listeners, position)
          }
        } while (dirty)
      } catch (err) {
        if (!isRedisUnavailable(err)) app.log.error({ err }, 'reading queue positions failed')
      } finally {
        running = false
      }
    }

    const tell = (listeners: Map<PositionListener, string>, position: QueuePositionArgs) => {
      const frame = encodeV2.queuePosition(position)
      for (const [listener, last] of listeners) {
        if (last === frame) continue
        listeners.set(listener, frame)
        listener(frame)
      }
    }

    app.decorate('queuePositions', {
      watch(chatId: string, listener: PositionListener) {
        let listeners = watchers.get(chatId)
        if (listeners === undefined) watchers.set(chatId, (listeners = new Map()))
        listeners.set(listener, '')
        void update()
        return () => {
          const current = watchers.get(chatId)
          if (!current?.delete(listener) || current.size > 0) return
          watchers.delete(chatId)
        }
      },
    })

    const subscribed = app.pubsub.subscribe(channels.queue, () => void update(), { waitForRedis: true })
    if (app.redis.subscriber.status === 'ready') await subscribed
    else subscribed.catch((err) => app.log.error({ err }, 'queue subscription failed'))
  },
  { name: 'switchboard-queue-positions', dependencies: ['switchboard-redis'] },
)
