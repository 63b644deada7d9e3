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

const AUDIENCES = new Set(['all', 'user', 'support', 'all:v2', 'user:v2', 'support:v2'])

export function openEnvelope(message: string): { to: 'all' | 'user' | 'support'; v2Only: boolean; frame: string } | null {
  const bar = message.indexOf('|')
  if (bar < 0) return null
  const audience = message.slice(0, bar)
  if (!AUDIENCES.has(audience)) return null
  const v2Only = audience.endsWith(':v2')
  return { to: (v2Only ? audience.slice(0, -3) : audience) as 'all' | 'user' | 'support', v2Only, frame: message.slice(bar + 1) }
}

/** What the queue channel carries between instances. */
export type QueueEvent =
  | { kind: 'joined'; visitor: Visitor }
  | { kind: 'removed'; chatId: string; userId: string }

export function parseQueueEvent(message: string): QueueEvent | null {
  try {
    const event = JSON.parse(message) as QueueEvent
    const v = event.kind === 'joined' ? event.visitor : undefined
    if (v !== undefined && typeof v?.chatId === 'string' && typeof v.userId === 'string' && typeof v.username === 'string') return event
    if (event.kind === 'removed' && typeof event.chatId === 'string' && typeof event.userId === 'string') return event
  } catch {
    // A message we cannot read is dropped by the caller.
  }
  return null
}
