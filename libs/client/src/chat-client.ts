import {
  CloseCodes,
  PONGS,
  SUBPROTOCOL_V2,
  encodeClient,
  parseServerFrame,
  type ChatMessage,
  type ChatMessageV2,
  type Party,
  type SupportJoined,
  type Visitor,
} from '@switchboard/protocol'
import { ReconnectingSocket, backoffDelay, type Backoff, type ConnectionState, type SocketFactory } from './reconnecting-socket.js'
import { toWebSocketUrl, withToken } from './http.js'

/** Who a chat socket speaks for. A visitor is `from: "User"`; an agent `from: "Support"` with a name. */
export interface ChatIdentity {
  chatId: string
  userId: string
  username: string
  from: Party
  /** Required for an agent. */
  supportUserName?: string
  /** Known after SupportJoinedUser; with it a (re)connect asks for the history. */
  supportId?: string
}

/** A message as the client hands it on: v2 fields are there when the server speaks v2. */
export type ReceivedMessage = ChatMessage & Partial<Pick<ChatMessageV2, 'seq' | 'messageId' | 'clientMessageId'>>

export interface HistoryInfo {
  /** v2: the seq of the first message given. */
  fromSeq?: number
  /** v2: older messages exist (see loadMore). */
  hasMore?: boolean
  /** v2: this is a catch-up after a reconnect: only messages after the last one seen. */
  resumed: boolean
}

export interface ChatHandlers {
  /** The visitor is in the queue, waiting for an agent. */
  waiting?(visitor: Visitor): void
  /** An agent joined: the supportId is now known (and kept for re-joins). */
  agentJoined?(joined: SupportJoined): void
  /** The conversation so far (after a (re-)join): replace what is shown, or append when `resumed`. */
  history?(messages: ReceivedMessage[], user: Visitor, info: HistoryInfo): void
  /** A stored message, from either side (one's own too: the server echoes it once stored). */
  message?(message: ReceivedMessage): void
  /** v2: older messages, from loadMore. */
  page?(messages: ReceivedMessage[], hasMore: boolean): void
  /** v2: one's own message is stored. */
  acked?(ack: { clientMessageId: string; messageId: string; seq: number; timestamp: string }): void
  /** v2: the other participant started or stopped typing. */
  typing?(typing: { from: Party; state: 'start' | 'stop' }): void
  /** v2: the other participant received / read up to `seq`. */
  receipt?(receipt: { seq: number; status: 'delivered' | 'read'; from: Party }): void
  /** v2: how many of the other side's messages this participant has not read. */
  unread?(count: number): void
  /** v2: the chat ended; it is read-only until it expires. */
  ended?(ended: { by: Party; reason: string | null }): void
  /** v2: the chat expires in `secondsLeft` unless someone writes. */
  expiring?(secondsLeft: number): void
  /** The chat is over; the socket will not reconnect. */
  expired?(): void
  /** v2, a waiting visitor: where they stand in the queue (again whenever it changes). */
  queuePosition?(position: { position: number; waiting: number; estimatedWaitSeconds: number | null }): void
  /**
   * An agent's socket: the chat was handed to another agent (`toAgentId`; null: back to the queue;
   * undefined: a seed-004 socket, told only by the 4403 close). The socket will not reconnect.
   */
  transferred?(toAgentId: string | null | undefined): void
  error?(error: { code: string; message: string; clientMessageId?: string }): void
  /**
   * v2: one's own messages not stored yet, in the order typed (again whenever
   * that changes): show them as "sending…". `held` is true for every one of
   * them while the server cannot take messages (Redis down, rate limit): they
   * wait, in order, and go by themselves, or now with {@link ChatClient.retryNow}.
   */
  pending?(messages: readonly PendingMessage[], held: boolean): void
  state?(state: ConnectionState, info: { attempt: number; delayMs?: number; code?: number }): void
}

/** A message sent and not yet stored. */
export interface PendingMessage {
  clientMessageId: string
  content: string
}

export interface ChatClientOptions {
  /** ChatServer's base URL, `http(s)://` or `ws(s)://`. */
  chatServer: string
  identity: ChatIdentity
  handlers?: ChatHandlers
  createSocket?: SocketFactory
  backoff?: Backoff
  /** An agent's token (sent as `?token=`); the agent's name then comes from it. */
  token?: string
  /** `v2` (default) offers the switchboard.v2 subprotocol; `v1` speaks seed 004 exactly. */
  protocol?: 'v1' | 'v2'
  /** The server's HEARTBEAT_INTERVAL_MS: silence for 3 of them is a dead connection (see ReconnectingSocketOptions). @default 1000 */
  heartbeatIntervalMs?: number
}

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
    return this.#v2 && this.#joined && this.#socket.send(JSON.stringify({ type: 'Typing', args: { state } }))
  }

  /** v2: marks the other side's messages up to `seq` as read (and so delivered). */
  markRead(seq: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(JSON.stringify({ type: 'Read', args: { seq } }))
  }

  /** v2: confirms messages up to `seq` arrived. */
  markReceived(seq: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(JSON.stringify({ type: 'Received', args: { seq } }))
  }

  /** v2: asks for up to `limit` messages before `beforeSeq` (the answer comes to `page`). */
  loadMore(beforeSeq: number, limit?: number): boolean {
    return this.#v2 && this.#joined && this.#socket.send(JSON.stringify({ type: 'LoadMore', args: { beforeSeq, ...(limit ? { limit } : {}) } }))
  }

  /** v2: ends the chat for both sides; it stays readable until it expires. */
  endChat(reason?: string): boolean {
    return this.#v2 && this.#joined && this.#socket.send(JSON.stringify({ type: 'EndChat', args: reason ? { reason } : {} }))
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
    return encodeClient.chatMessage({
      userId,
      // Undefined (a v2 visitor still waiting for an agent) leaves it out of the frame.
      supportId: supportId!,
      content,
      from,
      ...(from === 'Support' && supportUserName !== undefined ? { supportUserName } : {}),
      ...(clientMessageId !== undefined ? ({ clientMessageId } as object) : {}),
    })
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
        ...(this.#resuming ? ({ lastSeq: this.#lastSeq } as object) : {}),
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
    const frame = parseServerFrame(text) as { type: string; args: any } | null
    if (frame === null) return
    const a = frame.args
    switch (frame.type) {
      case 'UserJoined':
        // Waiting (again, if an agent put the visitor back in the queue): no agent to write to.
        if (this.identity.from === 'User') delete this.identity.supportId
        this.#joinedNow()
        this.#handlers.waiting?.(a)
        break
      case 'QueuePosition':
        this.#handlers.queuePosition?.({ position: a.position, waiting: a.waiting, estimatedWaitSeconds: a.estimatedWaitSeconds })
        break
      case 'ChatUnassigned':
        this.#transferred = true
        this.#handlers.transferred?.(a.toAgentId)
        break
      case 'SupportJoinedUser':
        this.identity.supportId = a.supportId
        this.#handlers.agentJoined?.(a)
        this.#joinedNow()
        break
      case 'ChatHistory': {
        const resumed = this.#v2 && a.fromSeq !== undefined && this.#lastSeq > 0 && a.fromSeq === this.#lastSeq + 1
        for (const m of a.messages as ReceivedMessage[]) this.#seen(m.seq)
        this.#handlers.history?.(a.messages, a.user, { resumed, ...(a.fromSeq !== undefined ? { fromSeq: a.fromSeq, hasMore: a.hasMore } : {}) })
        this.#joinedNow()
        break
      }
      case 'ChatMessage':
        this.#seen(a.seq)
        this.#handlers.message?.(a)
        // After the message is shown: its "sending…" bubble goes only once the stored one is there.
        if (a.clientMessageId !== undefined && a.from === this.identity.from) this.#settled(a.clientMessageId)
        break
      case 'ChatHistoryPage':
        this.#handlers.page?.(a.messages, a.hasMore)
        break
      case 'Ack':
        // Not #seen: an Ack can overtake the echo of an earlier message from the
        // other side (it comes straight back, the echo through pub/sub), and a
        // resume after it would skip that message. The echo of this one moves lastSeq.
        this.#retryAttempt = 0
        this.#handlers.acked?.(a)
        this.#settled(a.clientMessageId)
        break
      case 'Typing':
        this.#handlers.typing?.({ from: a.from, state: a.state })
        break
      case 'Receipt':
        this.#handlers.receipt?.({ seq: a.seq, status: a.status, from: a.from })
        break
      case 'UnreadCount':
        this.#handlers.unread?.(a.count)
        break
      case 'ChatEnded':
        this.#handlers.ended?.({ by: a.by, reason: a.reason })
        break
      case 'ChatExpiring':
        this.#handlers.expiring?.(a.secondsLeft)
        break
      case 'ChatExpired':
        this.#handlers.expired?.()
        break
      case 'Error':
        // The chat has fewer messages than this client saw (its store lost the last ones): the
        // server refused the resume, and the client starts again from the chat's last page.
        if (a.code === 'INVALID_SEQ' && this.#resuming && !this.#joined && a.clientMessageId === undefined) {
          this.#lastSeq = 0
          this.#join()
          break
        }
        this.#handlers.error?.(a)
        if (a.clientMessageId !== undefined && FINAL_SEND_ERRORS.has(a.code)) this.#settled(a.clientMessageId)
        if (a.clientMessageId !== undefined && RETRY_SEND_ERRORS.has(a.code) && this.#pending.has(a.clientMessageId)) this.#refused(a.clientMessageId)
        break
    }
  }
}
