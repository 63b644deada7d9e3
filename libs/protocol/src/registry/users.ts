import { Type } from '@sinclair/typebox'
import { defineFrame } from './entry.js'
import { AgentId, AgentIdRef, AgentStatus, ErrorCodeField, Id, QueuedVisitorSchema, Timestamp, described } from './fields.js'

// ---------------------------------------------------------------- agent → Subscriber /users

export const Load = defineFrame({
  key: 'Load',
  type: 'Load',
  sockets: ['users'],
  direction: 'client',
  since: 1,
  argsOptional: true,
  summary: 'Lists the waiting visitors, then streams queue changes.',
  /** `Load` carries no arguments; anything in `args` is ignored. */
  args: Type.Object({}, { description: 'May be omitted; anything in it is ignored.' }),
})

export const JoinUser = defineFrame({
  key: 'JoinUser',
  type: 'JoinUser',
  sockets: ['users'],
  direction: 'client',
  since: 1,
  summary: 'Claims a waiting visitor for this agent.',
  args: Type.Object({
    userId: described(Id, "The visitor's id."),
    chatId: described(Id, "The visitor's chat."),
    username: Type.String({ description: "The visitor's name as listed; not checked." }),
  }),
})

export const SetStatus = defineFrame({
  key: 'SetStatus',
  type: 'SetStatus',
  sockets: ['users'],
  direction: 'client',
  since: 2,
  summary: 'Online or away, for this agent on every device.',
  args: Type.Object({ status: AgentStatus }),
})

export const TransferChat = defineFrame({
  key: 'TransferChat',
  type: 'TransferChat',
  sockets: ['users'],
  direction: 'client',
  since: 2,
  summary: 'Hands a chat this agent holds to another agent, or back to the queue.',
  args: Type.Object({
    chatId: described(Id, 'A chat this agent holds.'),
    /** Another online agent with a free seat; null puts the visitor back at the head of the queue. */
    toAgentId: Type.Union([AgentId, Type.Null()], { description: "The receiving agent's id (`AgentsOnline`), or null for the queue." }),
  }),
})

// ---------------------------------------------------------------- Subscriber → agent

export const Visitor = defineFrame({
  key: 'Visitor',
  type: 'Visitor',
  sockets: ['users'],
  direction: 'server',
  since: 1,
  bare: true,
  summary: 'One waiting visitor, in answer to Load; a bare object without type/args (seed 004).',
  args: QueuedVisitorSchema,
})

export const QueueUserJoined = defineFrame({
  key: 'QueueUserJoined',
  type: 'UserJoined',
  sockets: ['users'],
  direction: 'server',
  since: 1,
  summary: 'A visitor entered the queue.',
  args: QueuedVisitorSchema,
})

export const RemoveUser = defineFrame({
  key: 'RemoveUser',
  type: 'RemoveUser',
  sockets: ['users'],
  direction: 'server',
  since: 1,
  summary: 'A visitor was claimed (JoinUser or an agent\'s first Join) or left the queue (their chat expired or ended).',
  args: Type.Object({ userId: Id }),
})

export const QueueError = defineFrame({
  key: 'QueueError',
  type: 'Error',
  sockets: ['users'],
  direction: 'server',
  since: 1,
  summary: 'A frame was refused; the socket stays open unless the code has a close code.',
  args: Type.Object({ code: ErrorCodeField, message: Type.String({ description: 'For humans.' }) }),
})

export const AgentsOnline = defineFrame({
  key: 'AgentsOnline',
  type: 'AgentsOnline',
  sockets: ['users'],
  direction: 'server',
  since: 2,
  summary: 'Every agent online, with their status and how many chats they hold.',
  args: Type.Object({
    agents: Type.Array(
      Type.Object({
        agentId: AgentIdRef,
        name: Type.String({ description: "The agent's display name (the token's `name`)." }),
        status: AgentStatus,
        /** Chats the agent holds (claimed or joined, not ended). */
        activeChats: Type.Integer({ minimum: 0, description: 'Chats the agent holds (claimed or joined, not ended).' }),
      }),
      { description: 'Sorted by name, then agentId.' },
    ),
  }),
})

export const MyChats = defineFrame({
  key: 'MyChats',
  type: 'MyChats',
  sockets: ['users'],
  direction: 'server',
  since: 2,
  summary: 'The chats this agent holds, oldest first.',
  args: Type.Object({
    chats: Type.Array(
      Type.Object({
        chatId: Id,
        userId: Id,
        username: Type.String({ description: "The visitor's name." }),
        /** When the agent got the chat, ISO-8601. */
        since: described(Timestamp, 'When this agent got the chat.'),
        /** The visitor's messages this agent has not read. */
        unread: Type.Integer({ minimum: 0, description: "The visitor's messages this agent has not read." }),
      }),
      { description: 'Oldest first (by `since`).' },
    ),
  }),
})

export const ChatAssigned = defineFrame({
  key: 'ChatAssigned',
  type: 'ChatAssigned',
  sockets: ['users'],
  direction: 'server',
  since: 2,
  summary: 'Another agent transferred a chat to this agent.',
  args: Type.Object({
    chatId: Id,
    userId: described(Id, "The visitor's id."),
    username: Type.String({ description: "The visitor's name." }),
    fromAgentId: described(AgentId, 'The agent who handed the chat on.'),
  }),
})
