import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'

/**
 * The frames of both sockets, as in seed 004's README. Client frames are
 * `{"type", "args"}` JSON text frames; unknown extra fields are ignored so
 * that later protocol versions can add fields without breaking old servers.
 */

/** Ids the server issues: 32 lowercase hex characters (a v4 UUID without dashes). */
export const ID_PATTERN = '^[0-9a-f]{32}$'
const idPattern = new RegExp(ID_PATTERN)

export function isId(value: string): boolean {
  return idPattern.test(value)
}

/** Longest visitor or agent name, in characters (code points). */
export const MAX_NAME_LENGTH = 64

// Control characters (C0, DEL, C1) would corrupt logs and the pages.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * A visitor's or agent's name: 1 to 64 characters counted as code points (an
 * emoji is one), not blank, no control characters. The one rule for names,
 * wherever they come in.
 */
export function isDisplayName(name: string): boolean {
  if (name.trim().length === 0 || CONTROL.test(name)) return false
  let count = 0
  for (const _ of name) if (++count > MAX_NAME_LENGTH) return false
  return true
}

FormatRegistry.Set('display-name', isDisplayName)

export const Id = Type.String({ pattern: ID_PATTERN })
export const Name = Type.String({ format: 'display-name' })
export const Party = Type.Union([Type.Literal('User'), Type.Literal('Support')])
export type Party = Static<typeof Party>

// ---------------------------------------------------------------- client → ChatServer /chat/{chatId}

export const JoinArgs = Type.Object({
  userId: Id,
  username: Name,
  from: Party,
  /** Present on a re-join (a browser refresh): asks for the history. */
  supportId: Type.Optional(Id),
  /** Required when an agent joins for the first time (`from: "Support"`, no supportId). */
  supportUserName: Type.Optional(Name),
})
export type JoinArgs = Static<typeof JoinArgs>

export const ChatMessageArgs = Type.Object({
  userId: Id,
  supportId: Id,
  content: Type.String({ minLength: 1 }),
  from: Party,
  supportUserName: Type.Optional(Name),
})
export type ChatMessageArgs = Static<typeof ChatMessageArgs>

/** Frame types a client may send on `/chat/{chatId}`, with the schema of their `args`. */
export const ChatClientFrames = {
  Join: JoinArgs,
  ChatMessage: ChatMessageArgs,
} as const satisfies Record<string, TSchema>

export type ChatClientFrame =
  | { type: 'Join'; args: JoinArgs }
  | { type: 'ChatMessage'; args: ChatMessageArgs }

// ---------------------------------------------------------------- client → Subscriber /users

/** `Load` carries no arguments; anything in `args` is ignored. */
export const LoadArgs = Type.Object({})
export type LoadArgs = Static<typeof LoadArgs>

export const JoinUserArgs = Type.Object({
  userId: Id,
  chatId: Id,
  username: Type.String(),
})
export type JoinUserArgs = Static<typeof JoinUserArgs>

/** Frame types an agent may send on `/users`. */
export const QueueClientFrames = {
  Load: LoadArgs,
  JoinUser: JoinUserArgs,
} as const satisfies Record<string, TSchema>

export type QueueClientFrame =
  | { type: 'Load'; args: LoadArgs }
  | { type: 'JoinUser'; args: JoinUserArgs }

// ---------------------------------------------------------------- heartbeats

/** Text frame the server sends every HEARTBEAT_INTERVAL_MS. */
export const PING = 'ping'
/** Text frames a client answers `ping` with. */
export const PONGS = { User: 'pong:user', Support: 'pong:support' } as const

// ---------------------------------------------------------------- server → client

/** A visitor as the queue and the chat know them. */
export interface Visitor {
  username: string
  userId: string
  chatId: string
}

/** One stored chat message, exactly as it is sent and as it appears in the history. */
export interface ChatMessage {
  content: string
  from: Party
  userId: string
  supportId: string
  timestamp: string
}

export interface SupportJoined {
  supportId: string
  supportUserName: string
  username: string
  userId: string
  chatId: string
}

export type ServerFrame =
  | { type: 'UserJoined'; args: Visitor }
  | { type: 'SupportJoinedUser'; args: SupportJoined }
  | { type: 'ChatHistory'; args: { user: Visitor; messages: ChatMessage[] } }
  | { type: 'ChatMessage'; args: ChatMessage }
  | { type: 'ChatExpired'; args: { chatId: string } }
  | { type: 'RemoveUser'; args: { userId: string } }
  | { type: 'Error'; args: { code: string; message: string } }

function frame(type: string, args: unknown): string {
  return JSON.stringify({ type, args })
}

/**
 * Serialisers for every server frame. Field order follows seed 004's examples,
 * so a frame is byte-for-byte what a seed client has seen before.
 */
export const encode = {
  visitor: (v: Visitor): string => JSON.stringify(visitorArgs(v)),
  userJoined: (v: Visitor): string => frame('UserJoined', visitorArgs(v)),
  supportJoinedUser: (s: SupportJoined): string =>
    frame('SupportJoinedUser', {
      supportId: s.supportId,
      supportUserName: s.supportUserName,
      username: s.username,
      userId: s.userId,
      chatId: s.chatId,
    }),
  chatMessageArgs: (m: ChatMessage): string =>
    JSON.stringify({
      userId: m.userId,
      supportId: m.supportId,
      content: m.content,
      timestamp: m.timestamp,
      from: m.from,
    }),
  /** A stored message as the seed-004 ChatMessage frame, without parsing it again. */
  chatMessageFromStored: (stored: string): string => `{"type":"ChatMessage","args":${storedToV1(stored)}}`,
  /** Seed-004 ChatHistory from stored messages, without parsing them again. */
  chatHistoryFromStored: (user: Visitor, storedMessages: readonly string[]): string =>
    `{"type":"ChatHistory","args":{"user":${JSON.stringify(visitorArgs(user))},"messages":[${storedMessages.map(storedToV1).join(',')}]}}`,
  chatExpired: (chatId: string): string => frame('ChatExpired', { chatId }),
  removeUser: (userId: string): string => frame('RemoveUser', { userId }),
  error: (code: string, message: string): string => frame('Error', { code, message }),
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

function visitorArgs(v: Visitor): Visitor {
  return { username: v.username, userId: v.userId, chatId: v.chatId }
}

/** Serialisers for the frames clients send, so no client hand-writes one. */
export const encodeClient = {
  join: (args: JoinArgs): string => frame('Join', args),
  chatMessage: (args: ChatMessageArgs): string => frame('ChatMessage', args),
  load: (): string => JSON.stringify({ type: 'Load' }),
  joinUser: (args: JoinUserArgs): string => frame('JoinUser', args),
}

/** A frame from either socket, as a client sees it; the bare queue entries of `Load` are `Visitor`. */
export type ReceivedFrame = ServerFrame | { type: 'Visitor'; args: Visitor }

/** Parses a server text frame (not `ping`). Returns null for text that is not a frame. */
export function parseServerFrame(text: string): ReceivedFrame | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  if (typeof v.type === 'string' && typeof v.args === 'object' && v.args !== null) return v as unknown as ServerFrame
  if (typeof v.userId === 'string' && typeof v.chatId === 'string' && typeof v.username === 'string') {
    return { type: 'Visitor', args: { username: v.username, userId: v.userId, chatId: v.chatId } }
  }
  return null
}
