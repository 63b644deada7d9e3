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
