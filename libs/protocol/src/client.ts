import type { Static, TSchema } from '@sinclair/typebox'
import { parseServerFrame } from './frames.js'
import { Frames, frameTypes, type ChatServerFrame, type QueueServerFrame } from './registry/index.js'

/** A client frame `{type, args}`, args as given (a client's field order is its own, as with encodeClient). */
function clientFrame<E extends { readonly type: string; readonly args: unknown }>(entry: E) {
  return (args: E['args'] extends infer A extends TSchema ? Static<A> : never): string =>
    JSON.stringify({ type: entry.type, args })
}

/** Serialisers for the frames only v2 clients send (the v1 ones are encodeClient), typed by the registry. */
export const encodeClientV2 = {
  join: clientFrame(Frames.Join),
  chatMessage: clientFrame(Frames.ChatMessageSent),
  loadMore: clientFrame(Frames.LoadMore),
  typing: clientFrame(Frames.TypingSent),
  received: clientFrame(Frames.Received),
  read: clientFrame(Frames.Read),
  endChat: clientFrame(Frames.EndChat),
  setStatus: clientFrame(Frames.SetStatus),
  transferChat: clientFrame(Frames.TransferChat),
}

const chatTypes: ReadonlySet<string> = new Set(frameTypes('chat', 'server'))
const queueTypes: ReadonlySet<string> = new Set(frameTypes('users', 'server'))

/** A frame from /chat/{chatId}, typed; null for text that is not one of that socket's server frames. */
export function parseChatServerFrame(text: string): ChatServerFrame | null {
  const frame = parseServerFrame(text)
  return frame !== null && chatTypes.has(frame.type) ? (frame as ChatServerFrame) : null
}

/** A frame from /users, typed (the bare queue entries are `{type: 'Visitor'}`); null for anything else. */
export function parseQueueServerFrame(text: string): QueueServerFrame | null {
  const frame = parseServerFrame(text)
  return frame !== null && queueTypes.has(frame.type) ? (frame as QueueServerFrame) : null
}
