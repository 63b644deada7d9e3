import type { Visitor } from '@switchboard/protocol'

/** Who on a chat channel a frame is for. */
export type Audience = 'all' | 'user' | 'support'

/** A frame on a chat channel: `<audience>|<frame>`, cheap to split without parsing the frame. */
export function envelope(to: Audience, frame: string): string {
  return `${to}|${frame}`
}

export function openEnvelope(message: string): { to: Audience; frame: string } | null {
  const bar = message.indexOf('|')
  if (bar < 0) return null
  const to = message.slice(0, bar)
  if (to !== 'all' && to !== 'user' && to !== 'support') return null
  return { to, frame: message.slice(bar + 1) }
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
