/**
 * Every error either socket can report, in one table.
 *
 * `code` is what clients switch on (it never changes once published);
 * `message` is for humans; `closeCode` is set when the error ends the socket
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
