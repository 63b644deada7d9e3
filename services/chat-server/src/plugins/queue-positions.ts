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

export interface QueuePositionsOptions {
  /** Least time between two recomputations of every watched place, in ms (QUEUE_POSITION_INTERVAL_MS). */
  intervalMs: number
}

/**
 * One subscription to the queue channel per ChatServer. A queue event (anyone
 * joining, claimed or leaving, on any instance) only marks the places stale:
 * they are re-read, all in one round trip, at once if the last re-read is
 * older than `intervalMs`, else when it is. A surge of N visitors joining
 * then costs each waiting visitor one QueuePosition per interval at most,
 * not one per join (which made N joins cost N² frames and N² reads), and each
 * instance reads only its own visitors' places, so the whole costs
 * O(waiting) per interval however many instances there are. A visitor who
 * starts watching is told their place at once, by a read of the newcomers
 * only. Reads run one at a time, so a later answer never overtakes an earlier
 * one; each visitor whose position, queue length or estimate changed is told.
 */
export const queuePositionsPlugin = fp(
  async function queuePositionsPlugin(app: FastifyInstance, opts: QueuePositionsOptions) {
    const watchers = new Map<string, Map<PositionListener, string>>()
    /** Chats watched since the last read, whose listeners have not been told anything yet. */
    const newcomers = new Set<string>()
    let running = false
    let stale = false
    let lastFullRead = -Infinity
    let timer: ReturnType<typeof setTimeout> | undefined
    let closed = false

    const update = async () => {
      if (running || closed) return
      running = true
      try {
        for (;;) {
          const dueIn = lastFullRead + opts.intervalMs - performance.now()
          let chatIds: string[]
          if (stale && dueIn <= 0) {
            stale = false
            lastFullRead = performance.now()
            newcomers.clear()
            chatIds = [...watchers.keys()]
          } else if (newcomers.size > 0) {
            chatIds = [...newcomers]
            newcomers.clear()
          } else {
            if (stale) later(dueIn)
            break
          }
          if (chatIds.length === 0) continue
          const positions = await queuePositions(app.redis.commands, chatIds)
          for (const chatId of chatIds) {
            const listeners = watchers.get(chatId)
            const position = positions.get(chatId)
            if (listeners !== undefined && position !== undefined) tell(listeners, position)
          }
        }
      } catch (err) {
        // Everyone's place is read again an interval later (newcomers included: they were told nothing).
        stale = true
        lastFullRead = performance.now()
        if (!isRedisUnavailable(err)) app.log.error({ err }, 'reading queue positions failed')
      } finally {
        running = false
      }
      if (stale) later(lastFullRead + opts.intervalMs - performance.now())
    }

    /** The next full read, once it is due. */
    const later = (inMs: number) => {
      if (timer !== undefined || closed) return
      timer = setTimeout(() => {
        timer = undefined
        void update()
      }, Math.max(0, inMs))
      timer.unref()
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
        newcomers.add(chatId)
        void update()
        return () => {
          const current = watchers.get(chatId)
          if (!current?.delete(listener) || current.size > 0) return
          watchers.delete(chatId)
          newcomers.delete(chatId)
        }
      },
    })

    const queueMoved = () => {
      stale = true
      void update()
    }
    app.addHook('onClose', async () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
    })
    const subscribed = app.pubsub.subscribe(channels.queue, queueMoved, { waitForRedis: true })
    if (app.redis.subscriber.status === 'ready') await subscribed
    else subscribed.catch((err) => app.log.error({ err }, 'queue subscription failed'))
  },
  { name: 'switchboard-queue-positions', dependencies: ['switchboard-redis'] },
)
