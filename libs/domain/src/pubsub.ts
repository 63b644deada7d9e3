import type { Redis } from 'ioredis'

type Listener = (message: string) => void

/** A channel's listeners and the SUBSCRIBE they share: every listener waits for it, not just the first. */
interface Channel {
  /**
   * Replaced, never changed in place: a delivery walks the array it started
   * with even if a listener joins or leaves meanwhile. An array, not a Set:
   * a chat's channel has one or two listeners, and a Set's table costs
   * about 300 bytes per channel with ~20,000 channels open.
   */
  listeners: readonly Listener[]
  subscribed: Promise<void>
}

/**
 * Channel subscriptions over one dedicated Redis connection, counted by
 * listener: the first listener subscribes, the last one to leave
 * unsubscribes. ioredis re-subscribes by itself after a reconnect.
 */
export class PubSub {
  readonly #redis: Redis
  readonly #channels = new Map<string, Channel>()

  constructor(subscriber: Redis) {
    this.#redis = subscriber
    subscriber.on('message', (channel: string, message: string) => this.deliverLocally(channel, message))
  }

  /** Gives a message to this process's listeners on `channel`, as if it had been published. */
  deliverLocally(channel: string, message: string): void {
    const entry = this.#channels.get(channel)
    if (entry) for (const listener of entry.listeners) listener(message)
  }

  /**
   * Listens on a channel; resolves once Redis confirmed the subscription
   * (for a listener that joins a channel being subscribed, once that
   * SUBSCRIBE is confirmed). Returns the function that stops listening.
   * While Redis is unreachable it fails at once, unless `waitForRedis` is
   * set: then it resolves when Redis is back and the subscription is made.
   */
  async subscribe(channel: string, listener: Listener, opts: { waitForRedis?: boolean } = {}): Promise<() => Promise<void>> {
    if (!opts.waitForRedis && this.#redis.status !== 'ready') {
      throw new Error('Connection is closed: the Redis subscriber connection is not ready')
    }
    let entry = this.#channels.get(channel)
    if (entry === undefined) {
      const created: Channel = { listeners: [], subscribed: this.#redis.subscribe(channel).then(() => {}) }
      this.#channels.set(channel, created)
      // A failed SUBSCRIBE is forgotten, so the next listener sends another
      // one (rather than joining a channel Redis never subscribed).
      created.subscribed.catch(() => {
        if (this.#channels.get(channel) === created) this.#channels.delete(channel)
      })
      entry = created
    }
    const joined = entry
    // Like a Set: a listener added twice is there once.
    if (!joined.listeners.includes(listener)) joined.listeners = [...joined.listeners, listener]
    const leave = () => {
      joined.listeners = joined.listeners.filter((other) => other !== listener)
    }
    try {
      await joined.subscribed
    } catch (err) {
      leave()
      throw err
    }
    let done = false
    return async () => {
      if (done) return
      done = true
      leave()
      if (joined.listeners.length > 0 || this.#channels.get(channel) !== joined) return
      this.#channels.delete(channel)
      await this.#redis.unsubscribe(channel).catch(() => {})
    }
  }

  /** Channels with at least one listener. */
  get channelCount(): number {
    return this.#channels.size
  }
}
