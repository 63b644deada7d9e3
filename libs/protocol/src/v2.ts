import type { Static, TSchema } from '@sinclair/typebox'
import { Frames, argsEncoder, frameEncoder, frameTypes } from './registry/index.js'
import type { Visitor } from './frames.js'

/**
 * Protocol v2: offered by a client as the WebSocket subprotocol
 * `switchboard.v2`. Everything here is additive: a socket without the
 * subprotocol gets exactly the seed-004 frames. Thin wrappers over the
 * registry (libs/protocol/src/registry), where the field lists live.
 */
export const SUBPROTOCOL_V2 = 'switchboard.v2'

export { HISTORY_PAGE_SIZE, MAX_SEQ, ClientMessageId, AgentStatus, AgentId } from './registry/index.js'

export const JoinArgsV2 = Frames.Join.args
export type JoinArgsV2 = Static<typeof JoinArgsV2>

export const ChatMessageArgsV2 = Frames.ChatMessageSent.args
export type ChatMessageArgsV2 = Static<typeof ChatMessageArgsV2>

export const LoadMoreArgs = Frames.LoadMore.args
export type LoadMoreArgs = Static<typeof LoadMoreArgs>

export const TypingArgs = Frames.TypingSent.args
export type TypingArgs = Static<typeof TypingArgs>

export const ReceiptArgs = Frames.Received.args
export type ReceiptArgs = Static<typeof ReceiptArgs>

export const EndChatArgs = Frames.EndChat.args
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

export const SetStatusArgs = Frames.SetStatus.args
export type SetStatusArgs = Static<typeof SetStatusArgs>

export const TransferChatArgs = Frames.TransferChat.args
export type TransferChatArgs = Static<typeof TransferChatArgs>

/** Frame types a v2 agent may send on `/users`. */
export const QueueClientFramesV2 = {
  Load: Frames.Load.args,
  JoinUser: Frames.JoinUser.args,
  SetStatus: SetStatusArgs,
  TransferChat: TransferChatArgs,
} as const satisfies Record<string, TSchema>

export type AgentPresence = Static<typeof Frames.AgentsOnline.args>['agents'][number]
export type MyChat = Static<typeof Frames.MyChats.args>['chats'][number]

type QueuedArgs = Static<typeof Frames.QueueUserJoined.args>
/** A waiting visitor as v2 agents see them: when they were queued and where they stand. */
export type QueuedVisitor = QueuedArgs & Required<Pick<QueuedArgs, 'since' | 'order'>>

export type QueuePositionArgs = Static<typeof Frames.QueuePosition.args>

type StoredArgs = Static<typeof Frames.ChatMessageDelivered.args>
/** A stored message as v2 sockets see it. */
export type ChatMessageV2 = StoredArgs & Required<Pick<StoredArgs, 'seq' | 'messageId'>>

const visitorArgs = argsEncoder(Frames.UserJoined)
const queuedArgs = argsEncoder(Frames.QueueUserJoined)
const receipt = frameEncoder(Frames.Receipt)
const unreadCount = frameEncoder(Frames.UnreadCount)
const chatExpiring = frameEncoder(Frames.ChatExpiring)
const typing = frameEncoder(Frames.TypingDelivered)
const chatEnded = frameEncoder(Frames.ChatEnded)
const error = frameEncoder(Frames.ChatError)
const agentsOnline = frameEncoder(Frames.AgentsOnline)
const myChats = frameEncoder(Frames.MyChats)
const chatUnassigned = frameEncoder(Frames.ChatUnassigned)

/** Serialisers for v2-only server frames (stored messages are v2 args already: no parsing). */
export const encodeV2 = {
  chatMessageFromStored: (stored: string): string => `{"type":"ChatMessage","args":${stored}}`,
  chatHistory: (user: Visitor, stored: readonly string[], fromSeq: number, hasMore: boolean): string =>
    `{"type":"ChatHistory","args":{"user":${visitorArgs(user)},"messages":[${stored.join(',')}],"fromSeq":${fromSeq},"hasMore":${hasMore}}}`,
  chatHistoryPage: (stored: readonly string[], hasMore: boolean): string =>
    `{"type":"ChatHistoryPage","args":{"messages":[${stored.join(',')}],"hasMore":${hasMore}}}`,
  receipt: (chatId: string, seq: number, status: 'delivered' | 'read', from: string): string =>
    receipt({ chatId, seq, status, from: from as 'User' | 'Support' }),
  unreadCount: (chatId: string, count: number): string => unreadCount({ chatId, count }),
  chatExpiring: (chatId: string, secondsLeft: number): string => chatExpiring({ chatId, secondsLeft }),
  ack: frameEncoder(Frames.Ack) as (a: { clientMessageId: string; messageId: string; seq: number; timestamp: string }) => string,
  typing: (chatId: string, from: string, state: 'start' | 'stop'): string => typing({ chatId, from: from as 'User' | 'Support', state }),
  chatEnded: (chatId: string, by: string, reason: string | null): string => chatEnded({ chatId, by: by as 'User' | 'Support', reason }),
  errorFor: (code: string, message: string, clientMessageId: string): string => error({ code, message, clientMessageId }),
  agentsOnline: (agents: readonly AgentPresence[]): string => agentsOnline({ agents: [...agents] }),
  myChats: (chats: readonly MyChat[]): string => myChats({ chats: [...chats] }),
  chatAssigned: frameEncoder(Frames.ChatAssigned) as (a: { chatId: string; userId: string; username: string; fromAgentId: string }) => string,
  chatUnassigned: (chatId: string, toAgentId: string | null): string => chatUnassigned({ chatId, toAgentId }),
  queuePosition: frameEncoder(Frames.QueuePosition) as (p: QueuePositionArgs) => string,
  /** A queued visitor: the seed's fields in the seed's order, then v2's. */
  queuedVisitor: (v: QueuedVisitor): string => queuedArgs(v),
  userJoinedQueued: (v: QueuedVisitor): string => `{"type":"UserJoined","args":${queuedArgs(v)}}`,
}

/**
 * Every frame type of both sockets and both versions, by direction, from the
 * registry. The AsyncAPI document (docs/asyncapi.yaml) is generated from the
 * same registry; a test checks it lists exactly these.
 */
export const FRAME_TYPES = {
  chat: { client: frameTypes('chat', 'client'), server: frameTypes('chat', 'server') },
  queue: { client: frameTypes('users', 'client'), server: frameTypes('users', 'server') },
} as const
