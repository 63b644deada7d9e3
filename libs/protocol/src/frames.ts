import type { Static, TSchema } from '@sinclair/typebox'
import {
  Frames,
  frameEncoder,
  argsEncoder,
  v1View,
  type ChatServerFrame,
  type ChatServerFrameV1,
  type QueueServerFrame,
  type QueueServerFrameV1,
} from './registry/index.js'

/**
 * The seed-004 frames of both sockets, as thin wrappers over the registry
 * (libs/protocol/src/registry): the field lists live there. Client frames are
 * `{"type", "args"}` JSON text frames; unknown extra fields are ignored so
 * that later protocol versions can add fields without breaking old servers.
 */

export { ID_PATTERN, isId, MAX_NAME_LENGTH, isDisplayName, Id, Name, Party } from './registry/index.js'

// ---------------------------------------------------------------- client → ChatServer /chat/{chatId}

export const JoinArgs = v1View(Frames.Join)
export type JoinArgs = Static<typeof JoinArgs>

export const ChatMessageArgs = v1View(Frames.ChatMessageSent)
export type ChatMessageArgs = Static<typeof ChatMessageArgs>

/** Frame types a client may send on `/chat/{chatId}`, with the schema of their `args`. */
export const ChatClientFrames = {
  Join: JoinArgs,
  ChatMessage: ChatMessageArgs,
} as const satisfies Record<string, TSchema>

export type ChatClientFrame = { type: 'Join'; args: JoinArgs } | { type: 'ChatMessage'; args: ChatMessageArgs }

// ---------------------------------------------------------------- client → Subscriber /users

/** `Load` carries no arguments; anything in `args` is ignored. */
export const LoadArgs = Frames.Load.args
export type LoadArgs = Static<typeof LoadArgs>

export const JoinUserArgs = Frames.JoinUser.args
export type JoinUserArgs = Static<typeof JoinUserArgs>

/** Frame types an agent may send on `/users`. */
export const QueueClientFrames = {
  Load: LoadArgs,
  JoinUser: JoinUserArgs,
} as const satisfies Record<string, TSchema>

export type QueueClientFrame = { type: 'Load'; args: LoadArgs } | { type: 'JoinUser'; args: JoinUserArgs }

// ---------------------------------------------------------------- heartbeats

/** Text frame the server sends every HEARTBEAT_INTERVAL_MS. */
export const PING = 'ping'
/** Text frames a client answers `ping` with. */
export const PONGS = { User: 'pong:user', Support: 'pong:support' } as const

// ---------------------------------------------------------------- server → client

/** A visitor as the queue and the chat know them. */
export type Visitor = Static<typeof Frames.UserJoined.args>

type V1Message = Static<typeof Frames.ChatMessageDelivered.args>
/** One stored chat message, exactly as it is sent and as it appears in the history (its seed-004 fields). */
export type ChatMessage = Omit<V1Message, 'seq' | 'messageId' | 'clientMessageId'>

export type SupportJoined = Static<typeof Frames.SupportJoinedUser.args>

/** A `{type, args}` server frame of seed 004, either socket (ChatServerFrame / QueueServerFrame: every version). */
export type ServerFrame = Exclude<ChatServerFrameV1 | QueueServerFrameV1, { type: 'Visitor' }>

const userJoined = frameEncoder(Frames.UserJoined)
const visitorArgs = argsEncoder(Frames.UserJoined)
const messageArgs = argsEncoder({ ...Frames.ChatMessageDelivered, args: v1View(Frames.ChatMessageDelivered) })

/**
 * Serialisers for every server frame. Field order follows seed 004's examples
 * (the registry's property order), so a frame is byte-for-byte what a seed
 * client has seen before.
 */
export const encode = {
  visitor: (v: Visitor): string => visitorArgs(v),
  userJoined: (v: Visitor): string => userJoined(v),
  supportJoinedUser: frameEncoder(Frames.SupportJoinedUser) as (s: SupportJoined) => string,
  chatMessageArgs: (m: ChatMessage): string => messageArgs(m),
  /** A stored message as the seed-004 ChatMessage frame, without parsing it again. */
  chatMessageFromStored: (stored: string): string => `{"type":"ChatMessage","args":${storedToV1(stored)}}`,
  /** Seed-004 ChatHistory from stored messages, without parsing them again. */
  chatHistoryFromStored: (user: Visitor, storedMessages: readonly string[]): string =>
    `{"type":"ChatHistory","args":{"user":${visitorArgs(user)},"messages":[${storedMessages.map(storedToV1).join(',')}]}}`,
  chatExpired: ((encode) => (chatId: string): string => encode({ chatId }))(frameEncoder(Frames.ChatExpired)),
  removeUser: ((encode) => (userId: string): string => encode({ userId }))(frameEncoder(Frames.RemoveUser)),
  error: ((encode) => (code: string, message: string): string => encode({ code, message }))(frameEncoder(Frames.ChatError)),
}

/**
 * How a message is stored: the seed-004 args in wire order, then the v2
 * fields (`seq`, `messageId`, optionally `clientMessageId`) appended. v2
 * sockets get it as is; seed-004 sockets get it cut before `,"seq":` — the
 * last one, since any `"` inside the content is escaped.
 */
export function storedToV1(stored: string): string {
  const cut = stored.lastIndexOf(',"seq":')
  return cut < 0 ? stored : `${stored.slice(0, cut)}}`
}

/** The seq of a stored message (0 for one without, which no stored message is). */
export function storedSeq(stored: string): number {
  const at = stored.lastIndexOf(',"seq":')
  return at < 0 ? 0 : Number.parseInt(stored.slice(at + ',"seq":'.length), 10) || 0
}

/** True for a stored message (as opposed to a whole frame) on a chat channel. */
export function isStoredMessage(payload: string): boolean {
  return payload.startsWith('{"userId":')
}

/** A client frame `{type, args}`, args as given (a client's field order is its own). */
function clientFrame<T extends string>(type: T): <A>(args: A) => string {
  return (args) => JSON.stringify({ type, args })
}

/** Serialisers for the frames clients send (both versions), so no client hand-writes one. */
export const encodeClient = {
  join: clientFrame(Frames.Join.type) as (args: JoinArgs) => string,
  chatMessage: clientFrame(Frames.ChatMessageSent.type) as (args: ChatMessageArgs) => string,
  load: (): string => JSON.stringify({ type: Frames.Load.type }),
  joinUser: clientFrame(Frames.JoinUser.type) as (args: JoinUserArgs) => string,
}

/** A frame from either socket, as a client sees it; the bare queue entries of `Load` are `{type: 'Visitor'}`. */
export type ReceivedFrame = ChatServerFrame | QueueServerFrame

/**
 * Parses a server text frame (not `ping`) into the typed union of both
 * sockets. Returns null for text that is not a frame. Not validated: the
 * server is trusted to send what the registry says.
 */
export function parseServerFrame(text: string): ReceivedFrame | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  if (typeof v.type === 'string' && typeof v.args === 'object' && v.args !== null) return v as unknown as ReceivedFrame
  if (typeof v.userId === 'string' && typeof v.chatId === 'string' && typeof v.username === 'string') {
    return { type: 'Visitor', args: v as unknown as Static<typeof Frames.Visitor.args> }
  }
  return null
}
