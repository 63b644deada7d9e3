import type { ExpiryOptions } from '@switchboard/domain'

export interface ChatRouteOptions extends ExpiryOptions {
  /** Longest ChatMessage content, in characters. */
  maxMessageLength: number
  /** Sockets that have joined one chat, on this instance (ChatSocketLimit). */
  maxSocketsPerChat: number
  /** A socket that has not joined this long after opening is closed (JOIN_TIMEOUT). */
  joinTimeoutMs: number
  /** How long a Typing start lasts without a stop. */
  typingTimeoutMs: number
  /** Chats an agent may hold (0: no limit): an agent's first Join of a waiting visitor takes a seat. */
  maxChatsPerAgent: number
  /** This instance's holder id (ChatChannels), given to appendMessage; set by the route. */
  holder?: string
}
