import { CloseCodes, PONGS, SUBPROTOCOL_V2, encodeClient, encodeClientV2, parseChatServerFrame } from '@switchboard/protocol'
import { ReconnectingSocket, backoffDelay } from './reconnecting-socket.js'
import { toWebSocketUrl, withToken } from './http.js'
import type { ChatClientOptions, ChatHandlers, ChatIdentity, PendingMessage } from './chat-types.js'

export type * from './chat-types.js'

/** Errors after which the same message is sent again (same clientMessageId, so stored once) after a backoff, on the same socket. */
const RETRY_SEND_ERRORS = new Set(['STORE_UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL_ERROR'])
/** Errors after which retrying the same message cannot help. */
const FINAL_SEND_ERRORS = new Set(['CHAT_ENDED', 'CHAT_EXPIRED', 'MESSAGE_TOO_LONG', 'IDENTITY_MISMATCH', 'INVALID_FRAME', 'NO_AGENT_YET'])

/**
 * One participant's connection to `/chat/{chatId}`: joins on every
 * (re)connect — with the supportId once known, so the history comes back —
 * and turns frames into callbacks. Over v2 it resumes from the last seq it
 * saw, and keeps every message it sends until the server acknowledges it,
 * re-sending it with the same clientMessageId after a reconnect (the server
 * stores it once). Messages are stored in the order typed: once the server
 * refuses one for now (STORE_UNAVAILABLE, RATE_LIMITED), nothing typed after
 * it goes before it is stored; until the queue is empty again they go one at
 * a time, each after the previous one's Ack.
 */
export class ChatClient {
  readonly identity: ChatIdentity
  readonly #handlers: ChatHandlers
  readonly #socket: ReconnectingSocket
  /** Whether to offer v2; whether it is spoken depends on the server's answer (#v2). */
  readonly #offerV2: boolean
  /** Highest seq seen: a reconnect resumes after it. */
  #lastSeq = 0
  /** This connection's Join asked to resume (sent lastSeq): an INVALID_SEQ for it means join again without. */
  #resuming = false
  /** Sent (or to send) and not yet acknowledged, in order. */
  readonly #pending = new Map<string, string>()
  #counter = 0
  #joined = false
  #transferred = false
  readonly #backoff: ChatClientOptions['backoff']
  /** Re-sends of the first pending message after the server could not take it (Redis down, rate limit): one timer, backing off. */
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #retryAttempt = 0
  /**
   * Set by a retryable refusal, cleared when every pending message is stored:
   * meanwhile only the first pending message is sent (`#headSent` is the one
   * awaiting its answer), so a later one cannot be stored before it.
   */
  #held = false
  #headSent: string | undefined

  constructor(opts: ChatClientOptions) {
    this.identity = { ...opts.identity }
    this.#handlers = opts.handlers ?? {}
    this.#offerV2 = (opts.protocol ?? 'v2') === 'v2'
    this.#backoff = opts.backoff
    this.#socket = new ReconnectingSocket({
      url: withToken(`${toWebSocketUrl(opts.chatServer)}/chat/${this.identity.chatId}`, opts.token),
      ...(this.#offerV2 ? { protocols: [SUBPROTOCOL_V2] } : {}),
      pong: this.identity.from === 'User' ? PONGS.User : PONGS.Support,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
      onOpen: () => this.#join(),
      onText: (text) => this.#receive(text),
      onState: (state, info) => {
        if (state !== 'open') this.#joined = false
        // A seed-004 socket learns of a transfer only from the close code.
        if (state === 'closed' && info.code === CloseCodes.CHAT_TRANSFERRED && !this.#transferred) {
          this.#transferred = true
          this.#handlers.transferred?.(undefined)
        }
        this.#handlers.state?.(state, info)
      },
    })
  }

  /** True when the server accepted protocol v2 on this connection (an older server may not). */
  get #v2(): boolean {
    return this.#offerV2 && this.#socket.protocol === SUBPROTOCOL_V2
  }

  /** The protocol spoken on the current connection. */
  get protocol(): 'v1' | 'v2' {
    return this.#v2 ? 'v2' : 'v1'
  }

  get supportId(): string | undefined {
    return this.identity.supportId
  }

  get isOpen(): boolean {
    return this.#socket.isOpen
  }

  /** Messages sent and not yet acknowledged (v2). */
  get pendingCount(): number {
    return this.#pending.size
  }

  /** Messages sent and not yet acknowledged (v2), in the order typed. */
  get pendingMessages(): PendingMessage[] {
    return [...this.#pending].map(([clientMessageId, content]) => ({ clientMessageId, content }))
  }

  connect(): this {
    this.#socket.start()
    return this
  }

  /**
   * Sends a message. Over v2 it returns its clientMessageId and the message
   * is kept until acknowledged, even across a reconnect; over v1 it returns
   * false when it could not be sent now. Before an agent joined, only a v2
   * visitor can send (the server keeps it for the agent who joins); else false.
   */
  send(content: string): string | boolean {
    if (this.identity.supportId === undefined && !(this.#v2 && this.identity.from === 'User')) return false
    if (!this.#v2) return this.#socket.send(this.#messageFrame(content))
    const clientMessageId = `${Date.now().toString(36)}-${(++this.#counter).toString(36)}-${Math.random().toString(36).slice(2, 8)}`
    this.#pending.set(clientMessageId, content)
    if (this.#joined && !this.#held) this.#socket.send(this.#messageFrame(content, clientMessageId))
    this.#pendingChanged()
    return clientMessageId
  }

  /** v2: sends the held messages now instead of after the backoff (a "Retry" button); false when nothing is held or the socket is down. */
  retryNow(): boolean {
    if (!this.#held || !this.#joined || this.#headSent !== undefined) return false
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#sendHead()
    return true
  }

  /** v2: tells the other side this participant is typing (`start`) or stopped (`stop`). */
  typing(state: 'start' | 'stop'): boolean {
    return this.#v2 && this.#joined && this.#socket.send(encodeClientV2.typing({ state }))
  }

  /** v2: marks the other side's messages up to `seq` as read (and so delivered). */
  markRead(seq: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(encodeClientV2.read({ seq }))
  }

  /** v2: confirms messages up to `seq` arrived. */
  markReceived(seq: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(encodeClientV2.received({ seq }))
  }

  /** v2: asks for up to `limit` messages before `beforeSeq` (the answer comes to `page`). */
  loadMore(beforeSeq: number, limit?: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(encodeClientV2.loadMore({ beforeSeq, ...(limit ? { limit } : {}) }))
  }

  /** v2: ends the chat for both sides; it stays readable until it expires. */
  endChat(reason?: string): boolean {
    return this.#v2 && this.#joined && this.#socket.send(encodeClientV2.endChat(reason ? { reason } : {}))
  }

  close(): void {
    // Whatever the server says on the way out (a 4403 among them) is no news to a client that closed itself.
    this.#transferred = true
    clearTimeout(this.#retryTimer)
    this.#socket.close()
  }

  /**
   * The server could not take a pending message for now: hold every pending
   * one back and send the first again after a backoff, on the same socket (a
   * reconnect re-sends anyway).
   */
  #refused(clientMessageId: string): void {
    const wasHeld = this.#held
    this.#held = true
    if (wasHeld && clientMessageId !== this.#headSent) return
    // Refused before the hold, or the head refused again: it waits for the timer.
    this.#headSent = undefined
    if (!wasHeld) this.#pendingChanged()
    if (this.#retryTimer !== undefined) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      if (this.#joined && this.#headSent === undefined) this.#sendHead()
    }, backoffDelay(this.#retryAttempt++, this.#backoff))
  }

  /** While held: the first pending message goes, alone. */
  #sendHead(): void {
    const head = this.#pending.entries().next()
    if (head.done) return
    const [clientMessageId, content] = head.value
    this.#headSent = clientMessageId
    this.#socket.send(this.#messageFrame(content, clientMessageId))
  }

  /** A pending message is stored (Ack or echo) or cannot be (a final error): the next one may go. */
  #settled(clientMessageId: string): void {
    if (!this.#pending.delete(clientMessageId)) return
    if (this.#held) {
      if (this.#pending.size === 0) {
        this.#held = false
        this.#headSent = undefined
        clearTimeout(this.#retryTimer)
        this.#retryTimer = undefined
      } else if (this.#headSent === clientMessageId) {
        this.#sendHead()
      }
    }
    this.#pendingChanged()
  }

  #pendingChanged(): void {
    this.#handlers.pending?.(this.pendingMessages, this.#held)
  }

  #messageFrame(content: string, clientMessageId?: string): string {
    const { userId, supportId, from, supportUserName } = this.identity
    const args = {
      userId,
      // Undefined (a v2 visitor still waiting for an agent) leaves it out of the frame.
      ...(supportId !== undefined ? { supportId } : {}),
      content,
      from,
      ...(from === 'Support' && supportUserName !== undefined ? { supportUserName } : {}),
    }
    if (clientMessageId !== undefined) return encodeClientV2.chatMessage({ ...args, clientMessageId })
    // v1 (a seed-004 server): only sent once the supportId is known (see send).
    return encodeClient.chatMessage({ ...args, supportId: supportId ?? '' })
  }

  #join(): void {
    const { userId, username, from, supportId, supportUserName } = this.identity
    this.#resuming = this.#v2 && supportId !== undefined && this.#lastSeq > 0
    this.#socket.send(
      encodeClient.join({
        userId,
        username,
        from,
        ...(supportId !== undefined ? { supportId } : {}),
        ...(supportUserName !== undefined && from === 'Support' ? { supportUserName } : {}),
        ...(this.#resuming ? { lastSeq: this.#lastSeq } : {}),
      }),
    )
  }

  /** Once per connection, after the (re-)join: what was sent and not acknowledged goes again, with the same ids. */
  #joinedNow(): void {
    if (this.#joined) return
    this.#joined = true
    if (this.#held) {
      // Still in order: the first one alone, the rest after its Ack (the retry timer is moot now).
      clearTimeout(this.#retryTimer)
      this.#retryTimer = undefined
      this.#sendHead()
      return
    }
    for (const [clientMessageId, content] of this.#pending) this.#socket.send(this.#messageFrame(content, clientMessageId))
  }

  #seen(seq: number | undefined): void {
    if (seq !== undefined && seq > this.#lastSeq) this.#lastSeq = seq
  }

  #receive(text: string): void {
    const frame = parseChatServerFrame(text)
    if (frame === null) return
    switch (frame.type) {
      case 'UserJoined':
        // Waiting (again, if an agent put the visitor back in the queue): no agent to write to.
        if (this.identity.from === 'User') delete this.identity.supportId
        this.#joinedNow()
        this.#handlers.waiting?.(frame.args)
        break
      case 'QueuePosition':
        this.#handlers.queuePosition?.({ position: frame.args.position, waiting: frame.args.waiting, estimatedWaitSeconds: frame.args.estimatedWaitSeconds })
        break
      case 'ChatUnassigned':
        this.#transferred = true
        this.#handlers.transferred?.(frame.args.toAgentId)
        break
      case 'SupportJoinedUser':
        this.identity.supportId = frame.args.supportId
        this.#handlers.agentJoined?.(frame.args)
        this.#joinedNow()
        break
      case 'ChatHistory': {
        const resumed = this.#v2 && frame.args.fromSeq !== undefined && this.#lastSeq > 0 && frame.args.fromSeq === this.#lastSeq + 1
        for (const m of frame.args.messages) this.#seen(m.seq)
        this.#handlers.history?.(frame.args.messages, frame.args.user, { resumed, ...(frame.args.fromSeq !== undefined ? { fromSeq: frame.args.fromSeq, hasMore: frame.args.hasMore } : {}) })
        this.#joinedNow()
        break
      }
      case 'ChatMessage':
        this.#seen(frame.args.seq)
        this.#handlers.message?.(frame.args)
        // After the message is shown: its "sending…" bubble goes only once the stored one is there.
        if (frame.args.clientMessageId !== undefined && frame.args.from === this.identity.from) this.#settled(frame.args.clientMessageId)
        break
      case 'ChatHistoryPage':
        this.#handlers.page?.(frame.args.messages, frame.args.hasMore)
        break
      case 'Ack':
        // Not #seen: an Ack can overtake the echo of an earlier message from the
        // other side (it comes straight back, the echo through pub/sub), and a
        // resume after it would skip that message. The echo of this one moves lastSeq.
        this.#retryAttempt = 0
        this.#handlers.acked?.(frame.args)
        this.#settled(frame.args.clientMessageId)
        break
      case 'Typing':
        this.#handlers.typing?.({ from: frame.args.from, state: frame.args.state })
        break
      case 'Receipt':
        this.#handlers.receipt?.({ seq: frame.args.seq, status: frame.args.status, from: frame.args.from })
        break
      case 'UnreadCount':
        this.#handlers.unread?.(frame.args.count)
        break
      case 'ChatEnded':
        this.#handlers.ended?.({ by: frame.args.by, reason: frame.args.reason })
        break
      case 'ChatExpiring':
        this.#handlers.expiring?.(frame.args.secondsLeft)
        break
      case 'ChatExpired':
        this.#handlers.expired?.()
        break
      case 'Error':
        // The chat has fewer messages than this client saw (its store lost the last ones): the
        // server refused the resume, and the client starts again from the chat's last page.
        if (frame.args.code === 'INVALID_SEQ' && this.#resuming && !this.#joined && frame.args.clientMessageId === undefined) {
          this.#lastSeq = 0
          this.#join()
          break
        }
        this.#handlers.error?.(frame.args)
        if (frame.args.clientMessageId !== undefined && FINAL_SEND_ERRORS.has(frame.args.code)) this.#settled(frame.args.clientMessageId)
        if (frame.args.clientMessageId !== undefined && RETRY_SEND_ERRORS.has(frame.args.code) && this.#pending.has(frame.args.clientMessageId)) this.#refused(frame.args.clientMessageId)
        break
    }
  }
}
