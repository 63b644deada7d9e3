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

/** What a listener was last told. */
interface Told {
  position: number
  estimate: number | null
}

/** An estimate that moved by less than this fraction of the one last told is not news on its own. */
const ESTIMATE_STEP = 0.1

/**
 * A visitor is told again when their place changed, or their estimate
 * appeared, went, or moved by a tenth or more. Visitors joining behind
 * (`waiting` alone) are not news: in a surge every join changes it for
 * everyone, which is what made a surge cost N² frames. `waiting` rides along
 * at its current value whenever a frame is sent.
 */
function worthTelling(told: Told, now: QueuePositionArgs): boolean {
  if (now.position !== told.position) return true
  if (now.estimatedWaitSeconds === null || told.estimate === null) return now.estimatedWaitSeconds !== told.estimate
  return Math.abs(now.estimatedWaitSeconds - told.estimate) >= ESTIMATE_STEP * told.estimate
}

export interface QueuePositionsOptions {
  /** Least time between two recomputations of every watched place, in ms (QUEUE_POSITION_INTERVAL_MS). */
  intervalMs: number
}

/**
 * One subscription to the queue channel per ChatServer. A queue event (anyone
 * joining, claimed or leaving, on any instance) only marks the places stale:
 * they are re-read, all in one round trip, at once if the last re-read is
 * older than `intervalMs`, else when it is. Each instance reads only its own
 * visitors' places, so the whole costs O(waiting) per interval however many
 * events and instances there are (one read per event made N joins cost N²
 * reads), and a visitor gets one QueuePosition per interval at most, only
 * when it is news to them (worthTelling). A visitor who starts watching is
 * told their place at once, by a read of the newcomers only. Reads run one at
 * a time, so a later answer never overtakes an earlier one.
 */
export const queuePositionsPlugin = fp(
  async function queuePositionsPlugin(app: FastifyInstance, opts: QueuePositionsOptions) {
    const watchers = new Map<string, Map<PositionListener, Told | null>>()
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

    const tell = (listeners: Map<PositionListener, Told | null>, position: QueuePositionArgs) => {
      let frame: string | undefined
      for (const [listener, told] of listeners) {
        if (told !== null && !worthTelling(told, position)) continue
        frame ??= encodeV2.queuePosition(position)
        listeners.set(listener, { position: position.position, estimate: position.estimatedWaitSeconds })
        listener(frame)
      }
    }

    app.decorate('queuePositions', {
      watch(chatId: string, listener: PositionListener) {
        let listeners = watchers.get(chatId)
        if (listeners === undefined) watchers.set(chatId, (listeners = new Map()))
        listeners.set(listener, null)
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
