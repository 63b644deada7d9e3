/**
 * Every error either socket can report, in one table.
 *
 * `code` is what clients switch on (it never changes once published);
 * `message` is for developers (logs, API clients; {@link UserMessages} has
 * what pages show people); `closeCode` is set when the error ends the socket
 * (RFC 6455: 1000-1015 are standard, 4000-4999 are ours). An error without a
 * `closeCode` is sent as an `Error` frame and the socket stays open.
 */
export interface ErrorSpec {
  readonly message: string
  /** WebSocket close code, when this error closes the socket. */
  readonly closeCode?: number
  /** HTTP status, for errors an HTTP route can answer with. */
  readonly httpStatus?: number
}

export const CloseCodes = {
  /** The server is shutting down (RFC 6455 "going away"). */
  GOING_AWAY: 1001,
  /** Policy violation, e.g. a chat id that cannot exist. */
  POLICY_VIOLATION: 1008,
  /** A frame larger than MAX_FRAME_BYTES (sent by ws itself). */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server failure. */
  INTERNAL_ERROR: 1011,
  /** The server cannot serve this socket now; reconnecting later may work (RFC 6455 "try again later"). */
  TRY_AGAIN_LATER: 1013,
  /** Nothing received for IDLE_TIMEOUT_SECONDS (mirrors HTTP 408). */
  IDLE_TIMEOUT: 4408,
  /** The chat was handed to another agent: this agent's sockets on it are done (mirrors HTTP 403). */
  CHAT_TRANSFERRED: 4403,
  /** The chat expired or never existed (mirrors HTTP 410 Gone). */
  CHAT_EXPIRED: 4410,
} as const

export const Errors = {
  INVALID_JSON: { message: 'Frame is not valid JSON' },
  INVALID_FRAME: { message: 'Frame is missing a field or has a field of the wrong kind' },
  UNKNOWN_TYPE: { message: 'Unknown frame type' },
  BINARY_NOT_SUPPORTED: { message: 'Binary frames are not supported; send JSON text frames' },
  NOT_JOINED: { message: 'Send Join on this socket before anything else' },
  ALREADY_JOINED: { message: 'This socket has already joined the chat' },
  IDENTITY_MISMATCH: {
    message: 'The ids or the sender in this frame do not match the chat or the role this socket joined as',
  },
  NO_AGENT_YET: { message: 'No agent has joined this chat yet' },
  ALREADY_CLAIMED: { message: 'This visitor has already been claimed by an agent' },
  VISITOR_NOT_FOUND: { message: 'No such visitor: the chat is unknown, expired, or belongs to someone else' },
  NOT_IN_QUEUE: { message: 'This visitor has not joined the queue yet' },
  STORE_UNAVAILABLE: { message: 'Storage is unavailable; this may not have taken effect: try again shortly (a v2 message with the same clientMessageId)', httpStatus: 503 },
  CHAT_ENDED: { message: 'This chat has ended; it is read-only until it expires' },
  AGENT_AT_CAPACITY: { message: 'This agent already holds MAX_CHATS_PER_AGENT chats; end or transfer one first' },
  AGENT_AWAY: { message: 'An away agent cannot take visitors; set your status to online first' },
  AGENT_UNAVAILABLE: { message: 'That agent is not online, is away, or is you' },
  NOT_ASSIGNED: { message: 'This chat is not assigned to you' },
  CHAT_TRANSFERRED: {
    message: 'This chat was handed to another agent',
    closeCode: CloseCodes.CHAT_TRANSFERRED,
  },
  INVALID_SEQ: { message: 'No message has that seq in this chat' },
  UNAUTHORIZED: { message: 'Joining as Support needs an agent token at the handshake' },
  MESSAGE_TOO_LONG: { message: 'Message content is longer than MAX_MESSAGE_LENGTH' },
  RATE_LIMITED: { message: 'Too many frames or requests; slow down', httpStatus: 429 },
  FLOODING: { message: 'Too many frames over the rate limit', closeCode: CloseCodes.POLICY_VIOLATION },
  TOKEN_MISSING: { message: 'An agent token is required (Authorization: Bearer …, or ?token=…)', httpStatus: 401 },
  TOKEN_INVALID: { message: 'The agent token is not valid', httpStatus: 401 },
  TOKEN_EXPIRED: { message: 'The agent token has expired', httpStatus: 401 },
  ORIGIN_NOT_ALLOWED: { message: 'This origin is not allowed (ALLOWED_ORIGINS)', httpStatus: 403 },
  TOO_MANY_CONNECTIONS: {
    message: 'Too many open sockets for this chat or from this address',
    httpStatus: 429,
    closeCode: CloseCodes.POLICY_VIOLATION,
  },
  INTERNAL_ERROR: { message: 'Internal server error' },
  INVALID_CHAT_ID: {
    message: 'A chat id is 32 lowercase hex characters',
    closeCode: CloseCodes.POLICY_VIOLATION,
  },
  CHAT_EXPIRED: {
    message: 'The chat expired or does not exist (sent as a ChatExpired frame)',
    closeCode: CloseCodes.CHAT_EXPIRED,
  },
  FRAME_TOO_LARGE: {
    message: 'Frame larger than MAX_FRAME_BYTES',
    closeCode: CloseCodes.MESSAGE_TOO_BIG,
  },
  IDLE_TIMEOUT: {
    message: 'Nothing received for IDLE_TIMEOUT_SECONDS',
    closeCode: CloseCodes.IDLE_TIMEOUT,
  },
  JOIN_TIMEOUT: {
    message: 'No successful Join within JOIN_TIMEOUT_SECONDS of opening the socket',
    closeCode: CloseCodes.IDLE_TIMEOUT,
  },
  SHUTTING_DOWN: { message: 'Server is shutting down', closeCode: CloseCodes.GOING_AWAY },
  SLOW_CONSUMER: {
    message: 'The client read too slowly: more than MAX_BUFFERED_BYTES were waiting to be sent; reconnect and resume',
    closeCode: CloseCodes.TRY_AGAIN_LATER,
  },
  INVALID_USERNAME: {
    message: 'A name is 1 to 64 characters, not blank, without control characters',
    httpStatus: 400,
  },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof Errors

/**
 * What a page shows a visitor or an agent for each code: short, plain words,
 * no setting names or protocol terms (the table's `message` is for
 * developers and logs). Kept beside the table so a new code cannot be added
 * without one (the type requires every code).
 */
export const UserMessages = {
  INVALID_JSON: 'Something went wrong. Please reload the page.',
  INVALID_FRAME: 'Something went wrong. Please reload the page.',
  UNKNOWN_TYPE: 'Something went wrong. Please reload the page.',
  BINARY_NOT_SUPPORTED: 'Something went wrong. Please reload the page.',
  NOT_JOINED: 'Still connecting… please wait a moment.',
  ALREADY_JOINED: 'This chat is already open.',
  IDENTITY_MISMATCH: 'This chat belongs to someone else.',
  NO_AGENT_YET: 'No agent has joined yet. Your message will be sent when one does.',
  ALREADY_CLAIMED: 'Another agent is already helping this visitor.',
  VISITOR_NOT_FOUND: 'This visitor is no longer waiting.',
  NOT_IN_QUEUE: 'This visitor is not waiting yet.',
  STORE_UNAVAILABLE: 'Reconnecting… your message will be sent.',
  CHAT_ENDED: 'This chat has ended.',
  AGENT_AT_CAPACITY: 'You have as many chats open as you can take. Finish or transfer one first.',
  AGENT_AWAY: 'You are set to away. Set yourself online to take visitors.',
  AGENT_UNAVAILABLE: 'That agent cannot take the chat right now.',
  NOT_ASSIGNED: 'This chat is not yours any more.',
  CHAT_TRANSFERRED: 'This chat was handed to another agent.',
  INVALID_SEQ: 'Something went wrong. Please reload the page.',
  UNAUTHORIZED: 'Please sign in again.',
  MESSAGE_TOO_LONG: 'This message is too long. Please shorten it.',
  RATE_LIMITED: 'You are sending messages very fast. Your message will be sent in a moment.',
  FLOODING: 'Too many messages at once. Reconnecting…',
  TOKEN_MISSING: 'Please sign in.',
  TOKEN_INVALID: 'Your sign-in is not valid. Please sign in again.',
  TOKEN_EXPIRED: 'Your sign-in has expired. Please sign in again.',
  ORIGIN_NOT_ALLOWED: 'This page is not allowed to connect to the support service.',
  TOO_MANY_CONNECTIONS: 'This chat is open in too many tabs. Close some and try again.',
  INTERNAL_ERROR: 'Something went wrong on our side. Trying again…',
  INVALID_CHAT_ID: 'This chat link is not valid.',
  CHAT_EXPIRED: 'This chat has expired.',
  FRAME_TOO_LARGE: 'This message is too long. Please shorten it.',
  IDLE_TIMEOUT: 'Reconnecting…',
  JOIN_TIMEOUT: 'Reconnecting…',
  SHUTTING_DOWN: 'Reconnecting…',
  SLOW_CONSUMER: 'Reconnecting…',
  INVALID_USERNAME: 'Please enter a name of up to 64 characters.',
} as const satisfies Record<ErrorCode, string>

/** What to show a person for `code` (a code this client does not know, e.g. from a newer server, gets a general text). */
export function userMessage(code: string): string {
  return Object.hasOwn(UserMessages, code) ? UserMessages[code as ErrorCode] : 'Something went wrong. Please try again.'
}

/**
 * An error meant for the client: its code is in {@link Errors}. Domain code
 * throws it; the socket layer turns it into an `Error` frame.
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message?: string) {
    super(message ?? Errors[code].message)
    this.name = 'ProtocolError'
    this.code = code
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError
}
