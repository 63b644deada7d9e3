import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ChatMessageArgs, Id, JoinArgs, JoinUserArgs, LoadArgs, type ChatMessage, type Visitor } from './frames.js'

/**
 * Protocol v2: offered by a client as the WebSocket subprotocol
 * `switchboard.v2`. Everything here is additive: a socket without the
 * subprotocol gets exactly the seed-004 frames.
 */
export const SUBPROTOCOL_V2 = 'switchboard.v2'

/** Messages per page of history (a v2 Join without lastSeq, and LoadMore's largest page). */
export const HISTORY_PAGE_SIZE = 50

/**
 * The largest seq a client may name: a seq is a safe integer (a bigger
 * number is not one integer to JavaScript, nor one Redis can index by).
 */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER
const Seq = Type.Integer({ minimum: 0, maximum: MAX_SEQ })
/** A stored message's seq (they start at 1). */
const StoredSeq = Type.Integer({ minimum: 1, maximum: MAX_SEQ })
/** A client's own id for a message, to match the Ack and to retry safely. */
export const ClientMessageId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' })

export const JoinArgsV2 = Type.Composite([
  JoinArgs,
  Type.Object({
    /** Resume: only the messages after this one are sent back (ChatHistory with fromSeq). */
    lastSeq: Type.Optional(Seq),
  }),
])
export type JoinArgsV2 = Static<typeof JoinArgsV2>

export const ChatMessageArgsV2 = Type.Composite([
  Type.Omit(ChatMessageArgs, ['supportId']),
  Type.Object({
    /** Required from an agent; a visitor waiting for an agent has none yet, and their message waits in the history for the agent who joins. */
    supportId: Type.Optional(Id),
    /** Gets an Ack once stored; sending it again stores nothing new and returns the same Ack. */
    clientMessageId: Type.Optional(ClientMessageId),
  }),
])
export type ChatMessageArgsV2 = Static<typeof ChatMessageArgsV2>

export const LoadMoreArgs = Type.Object({
  beforeSeq: StoredSeq,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: HISTORY_PAGE_SIZE })),
})
export type LoadMoreArgs = Static<typeof LoadMoreArgs>

export const TypingArgs = Type.Object({ state: Type.Union([Type.Literal('start'), Type.Literal('stop')]) })
export type TypingArgs = Static<typeof TypingArgs>

export const ReceiptArgs = Type.Object({ seq: StoredSeq })
export type ReceiptArgs = Static<typeof ReceiptArgs>

export const EndChatArgs = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) })
export type EndChatArgs = Static<typeof EndChatArgs>

/** Frame types a v2 client may send on `/chat/{chatId}`. */
export const ChatClientFramesV2 = {
  Join: JoinArgsV2,
  ChatMessage: ChatMessageArgsV2,
  LoadMore: LoadMoreArgs,
  Typing: TypingArgs,
  Received: ReceiptArgs,
  Read: ReceiptArgs,
  EndChat: EndChatArgs,
} as const satisfies Record<string, TSchema>

// ---------------------------------------------------------------- agent workflow (docs/agent-workflow.md)

export const AgentStatus = Type.Union([Type.Literal('online'), Type.Literal('away')])
export type AgentStatus = Static<typeof AgentStatus>

export const SetStatusArgs = Type.Object({ status: AgentStatus })
export type SetStatusArgs = Static<typeof SetStatusArgs>

/** An agent id as tokens carry it (`sub`): 1 to 128 characters. */
export const AgentId = Type.String({ minLength: 1, maxLength: 128 })

export const TransferChatArgs = Type.Object({
  chatId: Id,
  /** Another online agent with a free seat; null puts the visitor back at the head of the queue. */
  toAgentId: Type.Union([AgentId, Type.Null()]),
})
export type TransferChatArgs = Static<typeof TransferChatArgs>

/** Frame types a v2 agent may send on `/users`. */
export const QueueClientFramesV2 = {
  Load: LoadArgs,
  JoinUser: JoinUserArgs,
  SetStatus: SetStatusArgs,
  TransferChat: TransferChatArgs,
} as const satisfies Record<string, TSchema>

export interface AgentPresence {
  agentId: string
  name: string
  status: AgentStatus
  /** Chats the agent holds (claimed or joined, not ended). */
  activeChats: number
}

export interface MyChat {
  chatId: string
  userId: string
  username: string
  /** When the agent got the chat, ISO-8601. */
  since: string
  /** The visitor's messages this agent has not read. */
  unread: number
}

/** A waiting visitor as v2 agents see them: when they were queued and where they stand. */
export interface QueuedVisitor extends Visitor {
  /** When the visitor was queued, ISO-8601. */
  since: string
  /** Sort key: ascending is first come, first served. */
  order: number
}

export interface QueuePositionArgs {
  chatId: string
  /** 1 for the next visitor to be served. */
  position: number
  /** Visitors waiting in all. */
  waiting: number
  /** null while there is nothing to estimate from (see docs/agent-workflow.md). */
  estimatedWaitSeconds: number | null
}

/** A stored message as v2 sockets see it. */
export interface ChatMessageV2 extends ChatMessage {
  seq: number
  messageId: string
  clientMessageId?: string
}

/** Serialisers for v2-only server frames (stored messages are v2 args already: no parsing). */
export const encodeV2 = {
  chatMessageFromStored: (stored: string): string => `{"type":"ChatMessage","args":${stored}}`,
  chatHistory: (user: Visitor, stored: readonly string[], fromSeq: number, hasMore: boolean): string =>
    `{"type":"ChatHistory","args":{"user":${JSON.stringify({ username: user.username, userId: user.userId, chatId: user.chatId })},"messages":[${stored.join(',')}],"fromSeq":${fromSeq},"hasMore":${hasMore}}}`,
  chatHistoryPage: (stored: readonly string[], hasMore: boolean): string =>
    `{"type":"ChatHistoryPage","args":{"messages":[${stored.join(',')}],"hasMore":${hasMore}}}`,
  receipt: (chatId: string, seq: number, status: 'delivered' | 'read', from: string): string =>
    JSON.stringify({ type: 'Receipt', args: { chatId, seq, status, from } }),
  unreadCount: (chatId: string, count: number): string => JSON.stringify({ type: 'UnreadCount', args: { chatId, count } }),
  chatExpiring: (chatId: string, secondsLeft: number): string => JSON.stringify({ type: 'ChatExpiring', args: { chatId, secondsLeft } }),
  ack: (a: { clientMessageId: string; messageId: string; seq: number; timestamp: string }): string =>
    JSON.stringify({ type: 'Ack', args: { clientMessageId: a.clientMessageId, messageId: a.messageId, seq: a.seq, timestamp: a.timestamp } }),
  typing: (chatId: string, from: string, state: 'start' | 'stop'): string => JSON.stringify({ type: 'Typing', args: { chatId, from, state } }),
  chatEnded: (chatId: string, by: string, reason: string | null): string => JSON.stringify({ type: 'ChatEnded', args: { chatId, by, reason } }),
  errorFor: (code: string, message: string, clientMessageId: string): string =>
    JSON.stringify({ type: 'Error', args: { code, message, clientMessageId } }),
  agentsOnline: (agents: readonly AgentPresence[]): string =>
    JSON.stringify({
      type: 'AgentsOnline',
      args: { agents: agents.map((a) => ({ agentId: a.agentId, name: a.name, status: a.status, activeChats: a.activeChats })) },
    }),
  myChats: (chats: readonly MyChat[]): string =>
    JSON.stringify({
      type: 'MyChats',
      args: { chats: chats.map((c) => ({ chatId: c.chatId, userId: c.userId, username: c.username, since: c.since, unread: c.unread })) },
    }),
  chatAssigned: (a: { chatId: string; userId: string; username: string; fromAgentId: string }): string =>
    JSON.stringify({ type: 'ChatAssigned', args: { chatId: a.chatId, userId: a.userId, username: a.username, fromAgentId: a.fromAgentId } }),
  chatUnassigned: (chatId: string, toAgentId: string | null): string => JSON.stringify({ type: 'ChatUnassigned', args: { chatId, toAgentId } }),
  queuePosition: (p: QueuePositionArgs): string =>
    JSON.stringify({
      type: 'QueuePosition',
      args: { chatId: p.chatId, position: p.position, waiting: p.waiting, estimatedWaitSeconds: p.estimatedWaitSeconds },
    }),
  /** A queued visitor: the seed's fields in the seed's order, then v2's. */
  queuedVisitor: (v: QueuedVisitor): string =>
    JSON.stringify({ username: v.username, userId: v.userId, chatId: v.chatId, since: v.since, order: v.order }),
  userJoinedQueued: (v: QueuedVisitor): string => `{"type":"UserJoined","args":${encodeV2.queuedVisitor(v)}}`,
}

/**
 * Every frame type of both sockets and both versions, by direction. The
 * AsyncAPI document (docs/asyncapi.yaml) must list exactly these; a test
 * checks it.
 */
export const FRAME_TYPES = {
  chat: {
    client: Object.keys(ChatClientFramesV2),
    server: [
      'UserJoined',
      'SupportJoinedUser',
      'ChatHistory',
      'ChatMessage',
      'ChatExpired',
      'Error',
      'Ack',
      'ChatHistoryPage',
      'Typing',
      'Receipt',
      'UnreadCount',
      'ChatEnded',
      'ChatExpiring',
      'QueuePosition',
      'ChatUnassigned',
    ],
  },
  queue: {
    client: Object.keys(QueueClientFramesV2),
    server: ['Visitor', 'UserJoined', 'RemoveUser', 'Error', 'AgentsOnline', 'MyChats', 'ChatAssigned', 'ChatUnassigned'],
  },
} as const
