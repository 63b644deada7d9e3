import { Type } from '@sinclair/typebox'
import { defineFrame } from './entry.js'
import {
  AgentId,
  ClientMessageId,
  ErrorCodeField,
  Id,
  Name,
  Party,
  Seq,
  StoredMessageSchema,
  StoredSeq,
  Timestamp,
  TypingState,
  VisitorSchema,
  described,
  v2Field,
} from './fields.js'

/** Messages per page of history (a v2 Join without lastSeq, and LoadMore's largest page). */
export const HISTORY_PAGE_SIZE = 50

// ---------------------------------------------------------------- client → ChatServer /chat/{chatId}

export const Join = defineFrame({
  key: 'Join',
  type: 'Join',
  sockets: ['chat'],
  direction: 'client',
  since: 1,
  summary: 'The first frame on a chat socket, from the visitor or the agent.',
  args: Type.Object({
    userId: described(Id, "The chat's visitor (from `/user/join`), on both sides; another id is `IDENTITY_MISMATCH`."),
    username: described(Name, "The visitor's name."),
    from: described(Party, 'The side this socket joins as; `Support` needs an agent token (auth on).'),
    /** Present on a re-join (a browser refresh): asks for the history. */
    supportId: Type.Optional(described(Id, 'Present on a re-join; asks for the history. A wrong one is `IDENTITY_MISMATCH`.')),
    /** Required when an agent joins for the first time (`from: "Support"`, no supportId). */
    supportUserName: Type.Optional(
      described(
        Name,
        "The agent's name; required for an agent's first Join when no token names the agent (with a token, the token's `name` is used instead).",
      ),
    ),
    /** Resume: only the messages after this one are sent back (ChatHistory with fromSeq). */
    lastSeq: v2Field(
      Seq,
      "Resume: the last `seq` this client has. `ChatHistory` then holds\nonly the messages after it (`fromSeq = lastSeq + 1`). Without it a\nv2 re-join gets the last page (50 messages). Ignored on v1 sockets.\nBeyond the chat's last seq: `Error INVALID_SEQ`, and the socket is\nnot joined (join again without it).\n",
    ),
  }),
})

export const ChatMessageSent = defineFrame({
  key: 'ChatMessageSent',
  type: 'ChatMessage',
  sockets: ['chat'],
  direction: 'client',
  since: 1,
  summary: 'A message from the visitor or the agent, after Join.',
  requiredV1: ['supportId'],
  args: Type.Object(
    {
      userId: described(Id, "The chat's visitor."),
      /** Required from an agent; a visitor waiting for an agent has none yet, and their message waits in the history for the agent who joins. */
      supportId: Type.Optional(
        described(Id, "The chat's agent (from `SupportJoinedUser`). Required on v1; on v2 a visitor with no agent yet leaves it out."),
      ),
      content: Type.String({ minLength: 1, description: 'The text; at most `MAX_MESSAGE_LENGTH` characters (default 4000).' }),
      from: described(Party, 'Must be the side this socket joined as.'),
      supportUserName: Type.Optional(described(Name, 'Sent by seed-004 agent UIs; accepted and ignored.')),
      /** Gets an Ack once stored; sending it again stores nothing new and returns the same Ack. */
      clientMessageId: v2Field(
        ClientMessageId,
        'The client\'s own id for the message, to match the `Ack` and to retry safely. Ignored on v1 sockets.',
      ),
    },
  ),
})

export const LoadMore = defineFrame({
  key: 'LoadMore',
  type: 'LoadMore',
  sockets: ['chat'],
  direction: 'client',
  since: 2,
  summary: 'Asks for the page of messages before `beforeSeq`; answered with ChatHistoryPage.',
  args: Type.Object({
    beforeSeq: described(StoredSeq, 'Messages with a smaller `seq` are sent (typically the `fromSeq` of the oldest page held).'),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: HISTORY_PAGE_SIZE, description: 'Largest number of messages; default and maximum 50.' }),
    ),
  }),
})

export const TypingSent = defineFrame({
  key: 'TypingSent',
  type: 'Typing',
  sockets: ['chat'],
  direction: 'client',
  since: 2,
  summary: 'This participant started or stopped typing.',
  args: Type.Object({ state: TypingState }),
})

/** The args of Received and Read. */
export const ReceiptArgsSchema = Type.Object({ seq: StoredSeq })

export const Received = defineFrame({
  key: 'Received',
  type: 'Received',
  sockets: ['chat'],
  direction: 'client',
  since: 2,
  summary: 'This participant has received every message up to `seq`.',
  args: ReceiptArgsSchema,
})

export const Read = defineFrame({
  key: 'Read',
  type: 'Read',
  sockets: ['chat'],
  direction: 'client',
  since: 2,
  summary: 'This participant has read every message up to `seq`.',
  args: ReceiptArgsSchema,
})

export const EndChat = defineFrame({
  key: 'EndChat',
  type: 'EndChat',
  sockets: ['chat'],
  direction: 'client',
  since: 2,
  summary: 'Ends the chat; it stays read-only (history kept) until it expires.',
  args: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200, description: 'Optional, shown to the other participant.' })) }),
})

// ---------------------------------------------------------------- ChatServer → client

export const UserJoined = defineFrame({
  key: 'UserJoined',
  type: 'UserJoined',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'The visitor is in the queue, waiting for an agent.',
  args: VisitorSchema,
})

export const SupportJoinedUser = defineFrame({
  key: 'SupportJoinedUser',
  type: 'SupportJoinedUser',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'An agent joined the chat; carries the supportId both sides use from now on.',
  args: Type.Object({
    supportId: described(Id, "The agent's id in this chat; both sides put it in `ChatMessage` and re-joins."),
    supportUserName: Type.String({ description: "The agent's name (the token's `name` when agents are authenticated)." }),
    username: Type.String({ description: "The visitor's name." }),
    userId: described(Id, "The visitor's id."),
    chatId: Id,
  }),
})

export const ChatHistory = defineFrame({
  key: 'ChatHistory',
  type: 'ChatHistory',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'The answer to a re-join (and to a Join on a chat an agent has already joined).',
  args: Type.Object({
    user: VisitorSchema,
    messages: Type.Array(StoredMessageSchema, { description: 'Oldest first, in storage order.' }),
    fromSeq: v2Field(Type.Integer({ minimum: 1 }), 'The `seq` of the first message listed (or the next one, if none).', true),
    hasMore: v2Field(Type.Boolean(), 'Older messages exist (ask with `LoadMore` `beforeSeq = fromSeq`).', true),
  }),
})

export const ChatMessageDelivered = defineFrame({
  key: 'ChatMessageDelivered',
  type: 'ChatMessage',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'A message stored in the chat, sent to both participants (the sender too).',
  args: StoredMessageSchema,
})

export const ChatExpired = defineFrame({
  key: 'ChatExpired',
  type: 'ChatExpired',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'The chat expired (or never existed); the socket is closed with 4410.',
  args: Type.Object({ chatId: Id }),
})

export const ChatError = defineFrame({
  key: 'ChatError',
  type: 'Error',
  sockets: ['chat'],
  direction: 'server',
  since: 1,
  summary: 'A frame was refused; the socket stays open unless the code has a close code.',
  args: Type.Object({
    code: ErrorCodeField,
    message: Type.String({ description: 'For humans; may name the field or limit.' }),
    clientMessageId: v2Field(
      ClientMessageId,
      'Set when the refused frame was a `ChatMessage` with a `clientMessageId` (that message was not stored, and gets no `Ack`).',
    ),
  }),
})

export const Ack = defineFrame({
  key: 'Ack',
  type: 'Ack',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: "The sender's ChatMessage with a clientMessageId is stored (to the sending socket only).",
  args: Type.Object({ clientMessageId: ClientMessageId, messageId: Id, seq: Type.Integer({ minimum: 1 }), timestamp: Timestamp }),
})

export const ChatHistoryPage = defineFrame({
  key: 'ChatHistoryPage',
  type: 'ChatHistoryPage',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'The answer to LoadMore.',
  args: Type.Object({
    messages: Type.Array(StoredMessageSchema, { description: 'Up to `limit` messages just before `beforeSeq`, oldest first.' }),
    hasMore: Type.Boolean({ description: 'Still older messages exist.' }),
  }),
})

export const TypingDelivered = defineFrame({
  key: 'TypingDelivered',
  type: 'Typing',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'The other participant started or stopped typing.',
  args: Type.Object({ chatId: Id, from: described(Party, 'Who is typing.'), state: TypingState }),
})

export const Receipt = defineFrame({
  key: 'Receipt',
  type: 'Receipt',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'The other participant received or read every message up to `seq`.',
  args: Type.Object({
    chatId: Id,
    seq: Type.Integer({ minimum: 1 }),
    status: Type.Union([Type.Literal('delivered'), Type.Literal('read')]),
    from: described(Party, 'The participant who received / read (the other side).'),
  }),
})

export const UnreadCount = defineFrame({
  key: 'UnreadCount',
  type: 'UnreadCount',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: "How many of the other side's messages this participant has not read.",
  args: Type.Object({ chatId: Id, count: Type.Integer({ minimum: 0 }) }),
})

export const ChatEnded = defineFrame({
  key: 'ChatEnded',
  type: 'ChatEnded',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'A participant ended the chat; it is read-only until it expires.',
  args: Type.Object({
    chatId: Id,
    by: described(Party, 'Who ended it.'),
    reason: Type.Union([Type.String({ maxLength: 200 }), Type.Null()], { description: 'The `EndChat` reason, or null.' }),
  }),
})

export const ChatExpiring = defineFrame({
  key: 'ChatExpiring',
  type: 'ChatExpiring',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'The chat expires in `secondsLeft` unless someone writes.',
  args: Type.Object({ chatId: Id, secondsLeft: Type.Integer({ minimum: 1 }) }),
})

export const QueuePosition = defineFrame({
  key: 'QueuePosition',
  type: 'QueuePosition',
  sockets: ['chat'],
  direction: 'server',
  since: 2,
  summary: 'Where this waiting visitor stands, and how long they may wait.',
  args: Type.Object({
    chatId: Id,
    position: Type.Integer({ minimum: 1, description: '1 for the next visitor to be served.' }),
    waiting: Type.Integer({ minimum: 1, description: 'Visitors waiting in all (this one included).' }),
    estimatedWaitSeconds: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description: 'The estimated wait in seconds, or null while there is nothing to estimate from (no claim in the last 30 minutes).',
    }),
  }),
})

/** On both sockets: /users tells the agent, /chat tells the agent's chat sockets (then closed with 4403). */
export const ChatUnassigned = defineFrame({
  key: 'ChatUnassigned',
  type: 'ChatUnassigned',
  sockets: ['chat', 'users'],
  direction: 'server',
  since: 2,
  summary: 'This agent no longer holds the chat; it went to another agent or back to the queue.',
  args: Type.Object({
    chatId: Id,
    toAgentId: Type.Union([AgentId, Type.Null()], { description: 'The agent who has the chat now, or null when it went back to the queue.' }),
  }),
})
