import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'

/**
 * The field schemas frames share. Options starting with `x-` are read by the
 * AsyncAPI generator (scripts/gen-asyncapi.ts) and ignored by TypeBox:
 *   x-protocol: 'v2'   the field exists only on v2 sockets (see {@link v2Field})
 *   x-v2-required      a v2 field every v2 frame carries (TypeBox sees it optional, as v1 frames lack it)
 *   (an entry's requiredV1 lists fields v2 made optional that v1 still requires: x-required-v1)
 *   x-schema: 'Name'   a shared schema, written once under components.schemas and referenced
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
export const Timestamp = Type.String({ format: 'date-time' })

/**
 * The largest seq a client may name: a seq is a safe integer (a bigger
 * number is not one integer to JavaScript, nor one Redis can index by).
 */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER
export const Seq = Type.Integer({ minimum: 0, maximum: MAX_SEQ })
/** A stored message's seq (they start at 1). */
export const StoredSeq = Type.Integer({ minimum: 1, maximum: MAX_SEQ })
/** A client's own id for a message, to match the Ack and to retry safely. */
export const ClientMessageId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$' })

export const AgentStatus = Type.Union([Type.Literal('online'), Type.Literal('away')])
/** An agent id as tokens carry it (`sub`): 1 to 128 characters. */
export const AgentId = Type.String({ minLength: 1, maxLength: 128 })
/** AgentId as the document references it (components/schemas/AgentId). */
export const AgentIdRef = Type.String({ minLength: 1, maxLength: 128, 'x-schema': 'AgentId', description: "An agent's id, the `sub` of their token." })
export const TypingState = Type.Union([Type.Literal('start'), Type.Literal('stop')])

/** The same schema with a description (for the AsyncAPI document). */
export function described<T extends TSchema>(schema: T, description: string): T {
  return { ...schema, description }
}

/** A field only v2 sockets get or send; `required`: every v2 frame carries it. */
export function v2Field<T extends TSchema>(schema: T, description: string, required = false) {
  return Type.Optional({ ...schema, description, 'x-protocol': 'v2', ...(required ? { 'x-v2-required': true } : {}) } as T)
}

// ---------------------------------------------------------------- shared objects

const visitorFields = {
  username: Type.String({ description: "The visitor's name, as registered." }),
  userId: described(Id, "The visitor's id."),
  chatId: described(Id, "The visitor's chat."),
}

/** A visitor as the queue and the chat know them. */
export const VisitorSchema = Type.Object(visitorFields, {
  'x-schema': 'Visitor',
  description: 'A visitor as the queue and the chat know them.',
})

/** A waiting visitor as the queue lists them: the Visitor fields in the same order, then (v2) since and order. */
export const QueuedVisitorSchema = Type.Object(
  {
    ...visitorFields,
    since: v2Field(Timestamp, 'When the visitor was queued (again, after a transfer back to the queue).', true),
    order: v2Field(
      Type.Integer(),
      'Sort key, the same on every Subscriber: ascending is first come,\nfirst served. A visitor put back in the queue gets the smallest\n`order` (it may be 0 or negative).\n',
      true,
    ),
  },
  {
    'x-schema': 'QueuedVisitor',
    description:
      'A waiting visitor as the queue lists them: the `Visitor` fields in the\nsame order, then (v2) when they were queued and where they stand.\n',
  },
)

/** One stored chat message: the seed-004 args in wire order, then the v2 fields. */
export const StoredMessageSchema = Type.Object(
  {
    userId: described(Id, "The chat's visitor."),
    supportId: described(Id, "The chat's agent (their supportId for this chat)."),
    content: Type.String({ minLength: 1, description: 'The text, as sent. Render it as text, never as HTML.' }),
    timestamp: described(Timestamp, 'When it was stored, server time, ISO-8601 UTC with milliseconds.'),
    from: described(Party, 'Who wrote it.'),
    seq: v2Field(Type.Integer({ minimum: 1 }), 'Its place in the chat, 1, 2, 3, … without gaps; the storage order, which is the delivery order.', true),
    messageId: v2Field(Id, "The server's id for the message.", true),
    clientMessageId: v2Field(ClientMessageId, "The sender's `clientMessageId`, when the message was sent with one."),
  },
  {
    'x-schema': 'StoredMessage',
    description:
      'One stored chat message, exactly as it is delivered live and as it\nappears in a history. v1 sockets get the first five fields in this\norder; v2 sockets also get `seq`, `messageId` and, if the sender gave\none, `clientMessageId`.\n',
  },
)

/** An error code of the Errors table (libs/protocol/src/errors.ts); the generator writes the enum from it. */
export const ErrorCodeField = Type.String({ 'x-schema': 'ErrorCode' })

export type Party = Static<typeof Party>
export type AgentStatus = Static<typeof AgentStatus>
