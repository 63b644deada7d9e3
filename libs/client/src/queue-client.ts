import { PONGS, encodeClient, parseServerFrame, type Visitor } from '@switchboard/protocol'
import { ReconnectingSocket, type Backoff, type ConnectionState, type SocketFactory } from './reconnecting-socket.js'
import { toWebSocketUrl, withToken } from './http.js'

export interface QueueHandlers {
  /** The queue changed: the waiting visitors, oldest first. */
  queue?(visitors: readonly Visitor[]): void
  /** A visitor left the queue (claimed by someone, or gone). */
  removed?(userId: string): void
  error?(error: { code: string; message: string }): void
  state?(state: ConnectionState, info: { attempt: number; delayMs?: number; code?: number }): void
}

export interface QueueClientOptions {
  /** Subscriber's base URL, `http(s)://` or `ws(s)://`. */
  subscriber: string
  handlers?: QueueHandlers
  createSocket?: SocketFactory
  backoff?: Backoff
  /** The agent's token (sent as `?token=`). */
  token?: string
}

/**
 * An agent's view of the queue on `/users`: Loads on every (re)connect and
 * keeps the list of waiting visitors up to date from UserJoined / RemoveUser.
 */
export class QueueClient {
  readonly #visitors = new Map<string, Visitor>()
  readonly #handlers: QueueHandlers
  readonly #socket: ReconnectingSocket

  constructor(opts: QueueClientOptions) {
    this.#handlers = opts.handlers ?? {}
    this.#socket = new ReconnectingSocket({
      url: withToken(`${toWebSocketUrl(opts.subscriber)}/users`, opts.token),
      pong: PONGS.Support,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onOpen: () => {
        // A fresh Load re-sends the whole queue: start from nothing.
        this.#visitors.clear()
        this.#changed()
        this.#socket.send(encodeClient.load())
      },
      onText: (text) => this.#receive(text),
      onState: (state, info) => this.#handlers.state?.(state, info),
    })
  }

  /** Waiting visitors, oldest first. */
  get visitors(): Visitor[] {
    return [...this.#visitors.values()]
  }

  get isOpen(): boolean {
    return this.#socket.isOpen
  }

  connect(): this {
    this.#socket.start()
    return this
  }

  /** JoinUser: claims a visitor. The outcome arrives as RemoveUser (to everyone) or an Error (to a loser). */
  claim(visitor: Visitor): boolean {
    return this.#socket.send(encodeClient.joinUser({ userId: visitor.userId, chatId: visitor.chatId, username: visitor.username }))
  }

  close(): void {
    this.#socket.close()
  }

  #receive(text: string): void {
    const frame = parseServerFrame(text)
    if (frame === null) return
    switch (frame.type) {
      case 'Visitor':
      case 'UserJoined':
        this.#visitors.set(frame.args.chatId, frame.args)
        this.#changed()
        break
      case 'RemoveUser':
        for (const [chatId, v] of this.#visitors) if (v.userId === frame.args.userId) this.#visitors.delete(chatId)
        this.#handlers.removed?.(frame.args.userId)
        this.#changed()
        break
      case 'Error':
        this.#handlers.error?.(frame.args)
        break
    }
  }

  #changed(): void {
    this.#handlers.queue?.(this.visitors)
  }
}
