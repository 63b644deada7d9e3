import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { encode, encodeV2 } from '@switchboard/protocol'
import { channels, parseQueueEvent, type QueueEvent } from '@switchboard/domain'

/** A queue event as each protocol version sends it, encoded once per event. */
export interface QueueFrames {
  v1: string
  v2: string
}

/** Something that wants every queue event: an agent's socket after Load. */
export type QueueListener = (event: QueueEvent, frames: QueueFrames) => void

/** The frames for a queue event: v2's UserJoined also says when the visitor was queued and where they stand. */
export function queueFrames(event: QueueEvent): QueueFrames {
  if (event.kind === 'removed') {
    const frame = encode.removeUser(event.userId)
    return { v1: frame, v2: frame }
  }
  return {
    v1: encode.userJoined(event.visitor),
    v2: encodeV2.userJoinedQueued({ ...event.visitor, since: new Date(event.since).toISOString(), order: event.order }),
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Queue events from every instance, encoded once and fanned out to this instance's agents. */
    queueFeed: {
      add(listener: QueueListener): void
      delete(listener: QueueListener): void
    }
  }
}

/** One subscription to the queue channel per instance, however many agents are connected. */
export const queueFeedPlugin = fp(
  async function queueFeed(app: FastifyInstance) {
    const listeners = new Set<QueueListener>()
    app.decorate('queueFeed', {
      add: (listener: QueueListener) => void listeners.add(listener),
      delete: (listener: QueueListener) => void listeners.delete(listener),
    })
    const subscribed = app.pubsub.subscribe(channels.queue, (message) => {
      const event = parseQueueEvent(message)
      if (event === null) {
        app.log.warn('unreadable queue event dropped')
        return
      }
      const frames = queueFrames(event)
      for (const listener of listeners) listener(event, frames)
    }, { waitForRedis: true })
    // With Redis up, start-up waits for the subscription; with Redis down the
    // service starts anyway and subscribes as soon as Redis answers.
    if (app.redis.subscriber.status === 'ready') await subscribed
    else subscribed.catch((err) => app.log.error({ err }, 'queue subscription failed'))
    // No unsubscribe on close: closing the connection ends the subscription,
    // and an UNSUBSCRIBE sent while Redis is down would wait for it to return.
  },
  { name: 'switchboard-queue-feed', dependencies: ['switchboard-redis'] },
)
