import { encodeV2, type Visitor } from '@switchboard/protocol'

/** Who on a chat channel a frame is for; `:v2` limits it to sockets speaking protocol v2. */
export type Audience = 'all' | 'user' | 'support' | 'all:v2' | 'user:v2' | 'support:v2'

/**
 * A frame on a chat channel: `<audience>|<payload>`, cheap to split without
 * parsing. The payload is a whole frame, or a stored message (see
 * `isStoredMessage`), which each socket encodes for its protocol version.
 */
export function envelope(to: Audience, payload: string): string {
  return `${to}|${payload}`
}

/**
 * A stored message for everyone, carrying its recipient's (`reader`'s)
 * unread count for their v2 sockets: one publication per message
 * (`msg:<reader>:<count>|<stored>`, made by the sbAppendMessage script).
 */
export function messageEnvelope(stored: string, reader: 'user' | 'support', unread: number): string {
  return `msg:${reader}:${unread}|${stored}`
}

export interface OpenedEnvelope {
  to: 'all' | 'user' | 'support'
  v2Only: boolean
  frame: string
  /** With a stored message: the unread count of its recipient, for their v2 sockets. */
  unread?: { reader: 'user' | 'support'; count: number }
}

const AUDIENCES = new Set(['all', 'user', 'support', 'all:v2', 'user:v2', 'support:v2'])
const UNREAD = /^msg:(user|support):(\d+)$/

/*
 * Data publications of the Lua scripts, `<what>:<fields>|<chatId>`: openEnvelope
 * turns each into the frame v2 sockets get (the frame is built here, by the
 * protocol's encoders, never in Lua).
 * - `receipt:<to>:<seq>:<status>:<from>|<chatId>` → Receipt, to `to`'s v2 sockets (receipt.lua)
 * - `unread:<reader>:<count>|<chatId>` → UnreadCount, to `reader`'s v2 sockets (receipt.lua)
 * - `expiring:<secondsLeft>|<chatId>` → ChatExpiring, to every v2 socket (warn-expiring.lua)
 */
const RECEIPT = /^receipt:(user|support):(\d+):(delivered|read):(User|Support)$/
const UNREAD_COUNT = /^unread:(user|support):(-?\d+)$/
const EXPIRING = /^expiring:(-?\d+)$/

/** The data publication of a receipt (as receipt.lua writes it). */
export function receiptPublication(chatId: string, to: 'user' | 'support', seq: number, status: 'delivered' | 'read', from: 'User' | 'Support'): string {
  return `receipt:${to}:${seq}:${status}:${from}|${chatId}`
}

/** The data publication of a reader's unread count (as receipt.lua writes it). */
export function unreadPublication(chatId: string, reader: 'user' | 'support', count: number): string {
  return `unread:${reader}:${count}|${chatId}`
}

/** The data publication of an expiry warning (as warn-expiring.lua writes it). */
export function expiringPublication(chatId: string, secondsLeft: number): string {
  return `expiring:${secondsLeft}|${chatId}`
}

function openData(head: string, chatId: string): OpenedEnvelope | null {
  let m: RegExpExecArray | null
  if ((m = RECEIPT.exec(head)) !== null) {
    return { to: m[1] as 'user' | 'support', v2Only: true, frame: encodeV2.receipt(chatId, Number(m[2]), m[3] as 'delivered' | 'read', m[4]!) }
  }
  if ((m = UNREAD_COUNT.exec(head)) !== null) return { to: m[1] as 'user' | 'support', v2Only: true, frame: encodeV2.unreadCount(chatId, Number(m[2])) }
  if ((m = EXPIRING.exec(head)) !== null) return { to: 'all', v2Only: true, frame: encodeV2.chatExpiring(chatId, Number(m[1])) }
  return null
}

export function openEnvelope(message: string): OpenedEnvelope | null {
  const bar = message.indexOf('|')
  if (bar < 0) return null
  const audience = message.slice(0, bar)
  if (audience.startsWith('msg:')) {
    const unread = UNREAD.exec(audience)
    if (unread === null) return null
    return { to: 'all', v2Only: false, frame: message.slice(bar + 1), unread: { reader: unread[1] as 'user' | 'support', count: Number(unread[2]) } }
  }
  if (audience.startsWith('receipt:') || audience.startsWith('unread:') || audience.startsWith('expiring:')) return openData(audience, message.slice(bar + 1))
  if (!AUDIENCES.has(audience)) return null
  const v2Only = audience.endsWith(':v2')
  return { to: (v2Only ? audience.slice(0, -3) : audience) as 'all' | 'user' | 'support', v2Only, frame: message.slice(bar + 1) }
}

/**
 * What the queue channel carries between instances. A visitor who joined
 * comes with their place (`order`: ascending is first come) and when they
 * were queued (`since`, ms on the Redis clock).
 */
export type QueueEvent =
  | { kind: 'joined'; visitor: Visitor; order: number; since: number }
  | { kind: 'removed'; chatId: string; userId: string }

/** The visitor as queue events carry it: the seed's fields in the seed's order. */
function visitorJson(v: Visitor): string {
  return JSON.stringify({ username: v.username, userId: v.userId, chatId: v.chatId })
}

/** A visitor left the queue (claimed, joined, ended, expired). */
export function queueRemovedEvent(chatId: string, userId: string): string {
  return `{"kind":"removed","chatId":${JSON.stringify(chatId)},"userId":${JSON.stringify(userId)}}`
}

/** A visitor joined the queue at `order`, `since` (ms on the Redis clock). */
export function queueJoinedEvent(visitor: Visitor, order: number, since: number): string {
  return joinedText(visitor, String(order), String(since))
}

function joinedText(visitor: Visitor, order: string, since: string): string {
  return `{"kind":"joined","order":${order},"since":${since},"visitor":${visitorJson(visitor)}}`
}

/**
 * The 'joined' event cut around its order and since (which only the script
 * knows): the script writes `[0] .. order .. [1] .. since .. [2]`, every
 * other byte as queueJoinedEvent makes it.
 */
export function queueJoinedParts(visitor: Visitor): [string, string, string] {
  return splitAt(joinedText(visitor, SLOT, SLOT), 3)
}

/** A marker no JSON text written here contains (JSON escapes control characters). */
export const SLOT = '\u0000'

/** `text` cut at its SLOT markers into exactly `n` parts. */
export function splitAt(text: string, n: 2): [string, string]
export function splitAt(text: string, n: 3): [string, string, string]
export function splitAt(text: string, n: number): string[] {
  const parts = text.split(SLOT)
  if (parts.length !== n) throw new Error(`expected ${n - 1} slots, found ${parts.length - 1}`)
  return parts
}

export function parseQueueEvent(message: string): QueueEvent | null {
  try {
    const event = JSON.parse(message) as QueueEvent
    if (event.kind === 'joined') {
      const v = event.visitor
      if (typeof v?.chatId === 'string' && typeof v.userId === 'string' && typeof v.username === 'string' && typeof event.order === 'number' && typeof event.since === 'number') {
        return event
      }
    }
    if (event.kind === 'removed' && typeof event.chatId === 'string' && typeof event.userId === 'string') return event
  } catch {
    // A message we cannot read is dropped by the caller.
  }
  return null
}

/** What the agent channel carries: agents whose presence, status or chats changed, or a frame for one agent's sockets. */
export type AgentEvent = { kind: 'changed'; agentIds: string[] } | { kind: 'frame'; to: string; frame: string }

/** A frame for every socket of one agent, on whichever instance. */
export function agentFrameEvent(to: string, frame: string): string {
  return JSON.stringify({ to, frame })
}

export function parseAgentEvent(message: string): AgentEvent | null {
  try {
    const e = JSON.parse(message) as { changed?: unknown; to?: unknown; frame?: unknown }
    if (Array.isArray(e.changed) && e.changed.every((id) => typeof id === 'string')) return { kind: 'changed', agentIds: e.changed as string[] }
    if (typeof e.to === 'string' && typeof e.frame === 'string') return { kind: 'frame', to: e.to, frame: e.frame }
  } catch {
    // Dropped by the caller.
  }
  return null
}
