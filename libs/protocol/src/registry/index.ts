import type { Static, TSchema } from '@sinclair/typebox'
import * as chat from './chat.js'
import * as users from './users.js'
import { v1View, type FrameDirection, type FrameEntry, type FrameSocket } from './entry.js'

export * from './entry.js'
export * from './fields.js'
export { HISTORY_PAGE_SIZE, ReceiptArgsSchema } from './chat.js'
/** Every entry by its AsyncAPI message key. */
export const Frames = {
  Join: chat.Join,
  ChatMessageSent: chat.ChatMessageSent,
  LoadMore: chat.LoadMore,
  TypingSent: chat.TypingSent,
  Received: chat.Received,
  Read: chat.Read,
  EndChat: chat.EndChat,
  UserJoined: chat.UserJoined,
  SupportJoinedUser: chat.SupportJoinedUser,
  ChatHistory: chat.ChatHistory,
  ChatMessageDelivered: chat.ChatMessageDelivered,
  ChatExpired: chat.ChatExpired,
  ChatError: chat.ChatError,
  Ack: chat.Ack,
  ChatHistoryPage: chat.ChatHistoryPage,
  TypingDelivered: chat.TypingDelivered,
  Receipt: chat.Receipt,
  UnreadCount: chat.UnreadCount,
  ChatEnded: chat.ChatEnded,
  ChatExpiring: chat.ChatExpiring,
  QueuePosition: chat.QueuePosition,
  ChatUnassigned: chat.ChatUnassigned,
  Load: users.Load,
  JoinUser: users.JoinUser,
  SetStatus: users.SetStatus,
  TransferChat: users.TransferChat,
  Visitor: users.Visitor,
  QueueUserJoined: users.QueueUserJoined,
  RemoveUser: users.RemoveUser,
  QueueError: users.QueueError,
  AgentsOnline: users.AgentsOnline,
  MyChats: users.MyChats,
  ChatAssigned: users.ChatAssigned,
} as const

/** Every entry, in document order. */
export const REGISTRY: readonly FrameEntry[] = Object.values(Frames)

/** The entries of one socket and direction (v2: every version; 1: the seed-004 ones). */
export function entriesOf(socket: FrameSocket, direction: FrameDirection, version: 1 | 2 = 2): FrameEntry[] {
  return REGISTRY.filter((e) => e.sockets.includes(socket) && e.direction === direction && e.since <= version)
}

type Entries = typeof Frames
type FrameOf<E> = E extends FrameEntry<infer T, infer A, FrameSocket, FrameDirection, 1 | 2, string> ? { type: T; args: Static<A> } : never
type Select<S extends FrameSocket, D extends FrameDirection, V extends 1 | 2> = {
  [K in keyof Entries]: Entries[K] extends FrameEntry<string, TSchema, infer ES, infer ED, infer EV, string>
    ? S extends ES
      ? ED extends D
        ? EV extends 1 | V
          ? Entries[K]
          : never
        : never
      : never
    : never
}[keyof Entries]

/** What the server sends on /chat/{chatId}, every version (fields a v1 socket lacks are optional). */
export type ChatServerFrame = FrameOf<Select<'chat', 'server', 2>>
/** What the server sends a seed-004 socket on /chat/{chatId}. */
export type ChatServerFrameV1 = FrameOf<Select<'chat', 'server', 1>>
/** What the server sends on /users (the bare queue entry is `{type: 'Visitor'}`), every version. */
export type QueueServerFrame = FrameOf<Select<'users', 'server', 2>>
export type QueueServerFrameV1 = FrameOf<Select<'users', 'server', 1>>
/** What a v2 client may send on /chat/{chatId} (the v1 ones: ChatClientFrame). */
export type ChatClientFrameV2 = FrameOf<Select<'chat', 'client', 2>>
/** What a v2 agent may send on /users (the v1 ones: QueueClientFrame). */
export type QueueClientFrameV2 = FrameOf<Select<'users', 'client', 2>>

/** `{type → args schema}` of the client frames of one socket and version, for compileFrameParser. */
function clientTable(socket: FrameSocket, version: 1 | 2): Record<string, TSchema> {
  return Object.fromEntries(entriesOf(socket, 'client', version).map((e) => [e.type, version === 1 ? (v1View(e) as TSchema) : e.args]))
}
export const chatClientTables = { v1: clientTable('chat', 1), v2: clientTable('chat', 2) }
export const queueClientTables = { v1: clientTable('users', 1), v2: clientTable('users', 2) }

/** Frame types per socket and direction, from the registry (v2: all of them). */
export function frameTypes(socket: FrameSocket, direction: FrameDirection): string[] {
  return [...new Set(entriesOf(socket, direction).map((e) => e.type))]
}

/**
 * The `type` of a frame from its first bytes (`{"type":"X"`), without
 * parsing it: every encoder here writes `type` first. Undefined for anything
 * else (a bare queue entry, a stored message, ping).
 */
export function frameTypeOf(text: string): string | undefined {
  if (!text.startsWith('{"type":"')) return undefined
  const end = text.indexOf('"', 9)
  return end < 0 ? undefined : text.slice(9, end)
}
