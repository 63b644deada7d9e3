import type { Visitor } from '@switchboard/protocol'

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

export function openEnvelope(message: string): OpenedEnvelope | null {
  const bar = message.indexOf('|')
  if (bar < 0) return null
  const audience = message.slice(0, bar)
  if (audience.startsWith('msg:')) {
    const unread = UNREAD.exec(audience)
    if (unread === null) return null
    return { to: 'all', v2Only: false, frame: message.slice(bar + 1), unread: { reader: unread[1] as 'user' | 'support', count: Number(unread[2]) } }
  }
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
