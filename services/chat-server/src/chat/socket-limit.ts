/**
 * The per-chat socket limit on this instance (MAX_SOCKETS_PER_CHAT): a socket
 * is admitted to a chat once its Join has proved who it is. Sockets that never
 * join are not admitted, and a Join that is refused (IDENTITY_MISMATCH,
 * ALREADY_CLAIMED, …) gives its admission back, so neither a leaked chatId nor
 * a userId read off the queue can be used to fill a chat and lock its visitor
 * or agent out; such sockets are bounded per IP, and closed once
 * JOIN_TIMEOUT_SECONDS pass without a Join that succeeded.
 * (Not to be confused with an agent's seats, MAX_CHATS_PER_AGENT: the chats one agent may hold.)
 */
export class ChatSocketLimit {
  readonly #admitted = new Map<string, number>()
  constructor(private readonly max: number) {}

  /** Admits one more socket to the chat; false when `max` are admitted already. */
  admit(chatId: string): boolean {
    const n = this.#admitted.get(chatId) ?? 0
    if (n >= this.max) return false
    this.#admitted.set(chatId, n + 1)
    return true
  }

  /** A socket admitted to the chat leaves it (its Join failed, or it closed). */
  release(chatId: string): void {
    const n = (this.#admitted.get(chatId) ?? 1) - 1
    if (n > 0) this.#admitted.set(chatId, n)
    else this.#admitted.delete(chatId)
  }

  /** Sockets admitted to the chat now. */
  admitted(chatId: string): number {
    return this.#admitted.get(chatId) ?? 0
  }
}
