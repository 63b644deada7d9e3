import {
  PONGS,
  SUBPROTOCOL_V2,
  encodeClient,
  encodeClientV2,
  parseQueueServerFrame,
  type AgentPresence,
  type AgentStatus,
  type MyChat,
  type Visitor,
} from '@switchboard/protocol'
import { ReconnectingSocket, type Backoff, type ConnectionState, type SocketFactory } from './reconnecting-socket.js'
import { toWebSocketUrl, withToken } from './http.js'

/** A waiting visitor; over v2 with when they were queued (ISO-8601) and their place (ascending order is first come). */
export type WaitingVisitor = Visitor & { since?: string; order?: number }

export interface QueueHandlers {
  /** The queue changed: the waiting visitors, first come first. */
  queue?(visitors: readonly WaitingVisitor[]): void
  /** A visitor left the queue (claimed by someone, or gone). */
  removed?(userId: string): void
  /** v2: the agents online, on connect and after every change. */
  agents?(agents: readonly AgentPresence[]): void
  /** v2: the chats this agent holds, on connect and whenever they change. */
  myChats?(chats: readonly MyChat[]): void
  /** v2: another agent handed this agent a chat. */
  assigned?(chat: { chatId: string; userId: string; username: string; fromAgentId: string }): void
  /** v2: this agent handed a chat on (`toAgentId` null: back to the queue). */
  unassigned?(chat: { chatId: string; toAgentId: string | null }): void
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
  /** `v2` (default) offers the switchboard.v2 subprotocol; `v1` speaks seed 004 exactly. */
  protocol?: 'v1' | 'v2'
  /** The Subscriber's HEARTBEAT_INTERVAL_MS: silence for 3 of them is a dead connection (see ReconnectingSocketOptions). @default 1000 */
  heartbeatIntervalMs?: number
}

/**
 * An agent's view of the queue on `/users`: Loads on every (re)connect and
 * keeps the list of waiting visitors up to date from UserJoined / RemoveUser.
 * Over v2 it also follows the team (AgentsOnline), this agent's chats
 * (MyChats) and transfers, and can set the agent's status and transfer chats.
 */
export class QueueClient {
  readonly #visitors = new Map<string, WaitingVisitor>()
  readonly #handlers: QueueHandlers
  readonly #socket: ReconnectingSocket
  readonly #offerV2: boolean

  constructor(opts: QueueClientOptions) {
    this.#handlers = opts.handlers ?? {}
    this.#offerV2 = (opts.protocol ?? 'v2') === 'v2'
    this.#socket = new ReconnectingSocket({
      url: withToken(`${toWebSocketUrl(opts.subscriber)}/users`, opts.token),
      ...(this.#offerV2 ? { protocols: [SUBPROTOCOL_V2] } : {}),
      pong: PONGS.Support,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
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

  /** Waiting visitors, first come first. */
  get visitors(): WaitingVisitor[] {
    const list = [...this.#visitors.values()]
    // v2 says where each stands (a visitor put back in the queue goes first); v1 is arrival order.
    return list.every((v) => v.order !== undefined) ? list.sort((a, b) => a.order! - b.order!) : list
  }

  get isOpen(): boolean {
    return this.#socket.isOpen
  }

  /** The protocol spoken on the current connection. */
  get protocol(): 'v1' | 'v2' {
    return this.#offerV2 && this.#socket.protocol === SUBPROTOCOL_V2 ? 'v2' : 'v1'
  }

  connect(): this {
    this.#socket.start()
    return this
  }

  /** JoinUser: claims a visitor. The outcome arrives as RemoveUser (to everyone) or an Error (to a loser). */
  claim(visitor: Visitor): boolean {
    return this.#socket.send(encodeClient.joinUser({ userId: visitor.userId, chatId: visitor.chatId, username: visitor.username }))
  }

  /** v2: this agent's status on every device; away agents take no new visitors. */
  setStatus(status: AgentStatus): boolean {
    return this.protocol === 'v2' && this.#socket.send(encodeClientV2.setStatus({ status }))
  }

  /** v2: hands a chat to another agent, or (null) back to the head of the queue. */
  transfer(chatId: string, toAgentId: string | null): boolean {
    return this.protocol === 'v2' && this.#socket.send(encodeClientV2.transferChat({ chatId, toAgentId }))
  }

  close(): void {
    this.#socket.close()
  }

  #receive(text: string): void {
    const frame = parseQueueServerFrame(text)
    if (frame === null) return
    switch (frame.type) {
      case 'Visitor':
      case 'UserJoined': {
        const a = frame.args
        this.#visitors.set(a.chatId, {
          username: a.username,
          userId: a.userId,
          chatId: a.chatId,
          ...(typeof a.since === 'string' ? { since: a.since } : {}),
          ...(typeof a.order === 'number' ? { order: a.order } : {}),
        })
        this.#changed()
        break
      }
      case 'RemoveUser': {
        const { userId } = frame.args
        for (const [chatId, v] of this.#visitors) if (v.userId === userId) this.#visitors.delete(chatId)
        this.#handlers.removed?.(userId)
        this.#changed()
        break
      }
      case 'AgentsOnline':
        this.#handlers.agents?.(frame.args.agents)
        break
      case 'MyChats':
        this.#handlers.myChats?.(frame.args.chats)
        break
      case 'ChatAssigned':
        this.#handlers.assigned?.(frame.args)
        break
      case 'ChatUnassigned':
        this.#handlers.unassigned?.(frame.args)
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
