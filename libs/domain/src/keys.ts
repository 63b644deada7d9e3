/**
 * Every Redis key and channel Switchboard uses. Every key carries the hash
 * tag `{sb}`: on a Redis Cluster they all live in one slot, so each Lua
 * script (which changes a chat together with the queue, the deadlines and
 * the agents' seats, atomically) runs on one node. A cluster then gives
 * failover and a cluster-only Redis service, not write scaling: see
 * docs/operations.md. Channels are not keys; they are not tagged.
 */
const TAG = '{sb}'

export const keys = {
  /** Hash: chatId, userId, username, state, createdAt, supportId, supportUserName. */
  chat: (chatId: string) => `${TAG}:chat:${chatId}`,
  /** List of stored ChatMessage args, as JSON text, in storage order. */
  messages: (chatId: string) => `${TAG}:chat:${chatId}:messages`,
  /** Hash: `<from>:<clientMessageId>` → seq, so a retried message is stored once. */
  clientIds: (chatId: string) => `${TAG}:chat:${chatId}:client-ids`,
  /** Hash: per participant, messages sent, last delivered / read seq, and how many of the other side's they read. */
  receipts: (chatId: string) => `${TAG}:chat:${chatId}:receipts`,
  /** Sorted set of waiting chatIds, scored by arrival order. */
  queue: `${TAG}:queue`,
  /** Counter that gives each queued visitor its place. */
  queueSeq: `${TAG}:queue:seq`,
  /** Sorted set of chatIds scored by the time (ms) they expire. The single source of truth for liveness. */
  deadlines: `${TAG}:deadlines`,
  /** Sorted set of chatIds scored by when they were claimed (ms): the last 100 claims, for the wait estimate. */
  claims: `${TAG}:claims`,
  /** Hash: an agent's name, status ('online' | 'away') and whether they are anonymous. */
  agent: (agentId: string) => `${TAG}:agent:${agentId}`,
  /** Set of the chatIds an agent holds: their seats taken. */
  agentChats: (agentId: string) => `${TAG}:agent-chats:${agentId}`,
  /** Sorted set of the Subscriber instances holding a socket of this agent, scored by lease end (ms). */
  agentSessions: (agentId: string) => `${TAG}:agent-sessions:${agentId}`,
  /** Sorted set of online agentIds scored by their latest lease end (ms). */
  agentsOnline: `${TAG}:agents:online`,
} as const

export const channels = {
  /** Frames for the participants of one chat, as `<to>|<frame>`. */
  chat: (chatId: string) => `sb:chat-events:${chatId}`,
  /** Queue events (visitor joined / removed) for every instance. */
  queue: 'sb:queue-events',
  /** Agent events: `{changed:[agentId…]}` (presence, status or chats changed) or `{to, frame}` (a frame for one agent's sockets). */
  agents: 'sb:agent-events',
} as const
