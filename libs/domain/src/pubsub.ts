import type { Redis } from 'ioredis'

type Listener = (message: string) => void

/**
 * Channel subscriptions over one dedicated Redis connection, counted by
 * listener: the first listener subscribes, the last one to leave
 * unsubscribes. ioredis re-subscribes by itself after a reconnect.
 */
export class PubSub {
  readonly #redis: Redis
  readonly #listeners = new Map<string, Set<Listener>>()

  constructor(subscriber: Redis) {
    this.#redis = subscriber
    subscriber.on('message', (channel: string, message: string) => {
      const set = this.#listeners.get(channel)
      if (set) for (const listener of set) listener(message)
    })
  }

  /**
   * Listens on a channel; resolves once Redis confirmed the subscription.
   * Returns the function that stops listening. While Redis is unreachable it
   * fails at once, unless `waitForRedis` is set: then it resolves when Redis
   * is back and the subscription is made.
   */
  async subscribe(channel: string, listener: Listener, opts: { waitForRedis?: boolean } = {}): Promise<() => Promise<void>> {
    if (!opts.waitForRedis && this.#redis.status !== 'ready') {
      throw new Error('Connection is closed: the Redis subscriber connection is not ready')
    }
    let set = this.#listeners.get(channel)
    const first = set === undefined
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(channel, set)
    }
    set.add(listener)
    if (first) {
      try {
        await this.#redis.subscribe(channel)
      } catch (err) {
        set.delete(listener)
        if (set.size === 0) this.#listeners.delete(channel)
        throw err
      }
    }
    let done = false
    return async () => {
      if (done) return
      done = true
      const current = this.#listeners.get(channel)
      if (!current) return
      current.delete(listener)
      if (current.size === 0) {
        this.#listeners.delete(channel)
        await this.#redis.unsubscribe(channel).catch(() => {})
      }
    }
  }

  /** Channels with at least one listener. */
  get channelCount(): number {
    return this.#listeners.size
  }
}
