import { PONGS, encodeClient, parseServerFrame, type ChatMessage, type Party, type SupportJoined, type Visitor } from '@switchboard/protocol'
import { ReconnectingSocket, type Backoff, type ConnectionState, type SocketFactory } from './reconnecting-socket.js'
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

export interface ChatHandlers {
  /** The visitor is in the queue, waiting for an agent. */
  waiting?(visitor: Visitor): void
  /** An agent joined: the supportId is now known (and kept for re-joins). */
  agentJoined?(joined: SupportJoined): void
  /** The whole conversation so far (after a re-join). */
  history?(messages: ChatMessage[], user: Visitor): void
  /** A stored message, from either side (one's own too: the server echoes it once stored). */
  message?(message: ChatMessage): void
  /** The chat is over; the socket will not reconnect. */
  expired?(): void
  error?(error: { code: string; message: string }): void
  state?(state: ConnectionState, info: { attempt: number; delayMs?: number; code?: number }): void
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
}

/**
 * One participant's connection to `/chat/{chatId}`: joins on every
 * (re)connect — with the supportId once known, so the history comes back —
 * and turns frames into callbacks.
 */
export class ChatClient {
  readonly identity: ChatIdentity
  readonly #handlers: ChatHandlers
  readonly #socket: ReconnectingSocket

  constructor(opts: ChatClientOptions) {
    this.identity = { ...opts.identity }
    this.#handlers = opts.handlers ?? {}
    this.#socket = new ReconnectingSocket({
      url: withToken(`${toWebSocketUrl(opts.chatServer)}/chat/${this.identity.chatId}`, opts.token),
      pong: this.identity.from === 'User' ? PONGS.User : PONGS.Support,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onOpen: () => this.#join(),
      onText: (text) => this.#receive(text),
      onState: (state, info) => this.#handlers.state?.(state, info),
    })
  }

  get supportId(): string | undefined {
    return this.identity.supportId
  }

  get isOpen(): boolean {
    return this.#socket.isOpen
  }

  connect(): this {
    this.#socket.start()
    return this
  }

  /** Sends a message; false when it could not be sent (not connected, or no agent yet). */
  send(content: string): boolean {
    const { userId, supportId, from, supportUserName } = this.identity
    if (supportId === undefined) return false
    return this.#socket.send(
      encodeClient.chatMessage({
        userId,
        supportId,
        content,
        from,
        ...(from === 'Support' && supportUserName !== undefined ? { supportUserName } : {}),
      }),
    )
  }

  close(): void {
    this.#socket.close()
  }

  #join(): void {
    const { userId, username, from, supportId, supportUserName } = this.identity
    this.#socket.send(
      encodeClient.join({
        userId,
        username,
        from,
        ...(supportId !== undefined ? { supportId } : {}),
        ...(supportUserName !== undefined && from === 'Support' ? { supportUserName } : {}),
      }),
    )
  }

  #receive(text: string): void {
    const frame = parseServerFrame(text)
    if (frame === null) return
    switch (frame.type) {
      case 'UserJoined':
        this.#handlers.waiting?.(frame.args)
        break
      case 'SupportJoinedUser':
        this.identity.supportId = frame.args.supportId
        this.#handlers.agentJoined?.(frame.args)
        break
      case 'ChatHistory':
        this.#handlers.history?.(frame.args.messages, frame.args.user)
        break
      case 'ChatMessage':
        this.#handlers.message?.(frame.args)
        break
      case 'ChatExpired':
        this.#handlers.expired?.()
        break
      case 'Error':
        this.#handlers.error?.(frame.args)
        break
    }
  }
}
