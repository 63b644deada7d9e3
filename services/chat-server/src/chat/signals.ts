import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { ProtocolError, encodeV2, type Party } from '@switchboard/protocol'
import { channels, endChat, envelope, markReceipt } from '@switchboard/domain'
import { otherParty, sideOf } from './party.js'

/** What the conversation signals need from their socket's session. */
export interface SignalsHost {
  readonly redis: Redis
  readonly chatId: string
  readonly log: FastifyBaseLogger
  readonly opts: { readonly typingTimeoutMs: number }
  /** Who the socket joins or joined as. */
  readonly party: Party | undefined
  /** Who the socket joined as; throws NOT_JOINED before its Join is answered. */
  joinedParty(): Party
  readonly waiting: { stop(): void }
}

/**
 * What a participant signals besides messages: typing (to the other
 * participant's v2 sockets, not stored), receipts, and ending the chat.
 */
export class ConversationSignals {
  /** A Typing start that has not been stopped; it stops by itself when the timer fires. */
  #typingTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly host: SignalsHost) {}

  /** A repeated start only keeps it alive; a start without a stop ends by itself. */
  async typing(state: 'start' | 'stop'): Promise<void> {
    const party = this.host.joinedParty()
    if (state === 'stop') return this.stopTyping()
    const wasTyping = this.#typingTimer !== undefined
    if (wasTyping) clearTimeout(this.#typingTimer)
    this.#typingTimer = setTimeout(() => void this.stopTyping().catch(() => {}), this.host.opts.typingTimeoutMs)
    this.#typingTimer.unref()
    if (!wasTyping) await this.#publishTyping(party, 'start')
  }

  /** Stops a Typing start (if any) and tells the other participant. */
  async stopTyping(): Promise<void> {
    if (this.#typingTimer === undefined) return
    clearTimeout(this.#typingTimer)
    this.#typingTimer = undefined
    await this.#publishTyping(this.host.party!, 'stop')
  }

  async receipt(kind: 'delivered' | 'read', seq: number): Promise<void> {
    const party = this.host.joinedParty()
    await markReceipt(this.host.redis, this.host.chatId, sideOf(party), kind, seq)
  }

  async end(reason: string | null): Promise<void> {
    const party = this.host.joinedParty()
    const ended = await endChat(this.host.redis, this.host.chatId, party, reason)
    if (!ended) throw new ProtocolError('CHAT_ENDED', 'This chat has already ended')
    this.host.log.info({ by: party }, 'chat ended')
    this.host.waiting.stop()
  }

  /** The socket closed: a typing start ends with it. */
  close(): void {
    if (this.#typingTimer !== undefined) void this.stopTyping().catch(() => {})
  }

  async #publishTyping(party: Party, state: 'start' | 'stop'): Promise<void> {
    await this.host.redis.publish(
      channels.chat(this.host.chatId),
      envelope(`${sideOf(otherParty(party))}:v2`, encodeV2.typing(this.host.chatId, party, state)),
    )
  }
}
