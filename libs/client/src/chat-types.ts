import type { ChatMessage, ChatMessageV2, Party, SupportJoined, Visitor } from '@switchboard/protocol'
import type { Backoff, ConnectionState, SocketFactory } from './reconnecting-socket.js'

/** What a ChatClient is given and what it hands on: its identity, options and callbacks. */

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
   * wait, in order, and go by themselves, or now with ChatClient.retryNow.
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
