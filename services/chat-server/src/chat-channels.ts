import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { channels, holdChat, newId, releaseChat, type PubSub } from '@switchboard/domain'

declare module 'fastify' {
  interface FastifyInstance {
    /** The chat channels this instance listens on, and its hold on each chat. */
    chatChannels: ChatChannels
  }
}

/** This instance's hold on one chat: the sockets listening, and the hold in Redis they share. */
interface Hold {
  sockets: number
  held: Promise<void>
}

/**
 * The chat channels this instance listens on, and its hold on each chat in
 * Redis (holdChat): while this is the only instance holding a chat, its
 * messages are not published; the store's reply brings each one back and it
 * is given to the listeners here, as if it had come from Redis. As soon as a
 * socket of the chat listens on another instance, that instance holds it too
 * and every message is published again. A hold is taken after the
 * subscription and before the joining socket reads anything, so no message
 * falls between the two.
 */
export class ChatChannels {
  /** This instance's id as a holder: new at every start, so a crashed instance's holds only ever cause extra publishing. */
  readonly holder = newId()
  readonly #holds = new Map<string, Hold>()

  constructor(
    private readonly redis: Redis,
    private readonly pubsub: PubSub,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Listens on the chat's channel and holds the chat; resolves once both are in effect. Returns the function that stops. */
  async listen(chatId: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    const unsubscribe = await this.pubsub.subscribe(channels.chat(chatId), listener)
    try {
      await this.#hold(chatId)
    } catch (err) {
      await unsubscribe()
      throw err
    }
    let done = false
    return async () => {
      if (done) return
      done = true
      this.#release(chatId)
      await unsubscribe()
    }
  }

  /** A message of a chat only this instance holds: to its listeners here. */
  deliverLocally(chatId: string, publication: string): void {
    this.pubsub.deliverLocally(channels.chat(chatId), publication)
  }

  /** Holds every chat again, after Redis was away (a failover may have lost the latest holds). */
  async holdAgain(): Promise<void> {
    await Promise.all([...this.#holds.keys()].map((chatId) => holdChat(this.redis, chatId, this.holder)))
  }

  /** Chats this instance holds. */
  get size(): number {
    return this.#holds.size
  }

  #hold(chatId: string): Promise<void> {
    let hold = this.#holds.get(chatId)
    if (hold === undefined) {
      const created: Hold = { sockets: 0, held: holdChat(this.redis, chatId, this.holder) }
      // A failed hold is forgotten, so the next socket tries again.
      created.held.catch(() => {
        if (this.#holds.get(chatId) === created) this.#holds.delete(chatId)
      })
      this.#holds.set(chatId, created)
      hold = created
    }
    hold.sockets++
    const joined = hold
    return joined.held.catch((err: unknown) => {
      joined.sockets--
      throw err
    })
  }

  #release(chatId: string): void {
    const hold = this.#holds.get(chatId)
    if (hold === undefined || --hold.sockets > 0) return
    this.#holds.delete(chatId)
    // A release that fails leaves a hold behind: the chat's messages are published when they need not be, never the reverse.
    releaseChat(this.redis, chatId, this.holder).catch((err: Error) => this.log.debug({ chatId, err: err.message }, 'could not release a chat'))
  }
}
