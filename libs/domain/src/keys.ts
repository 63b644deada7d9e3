/**
 * Every Redis key and channel Switchboard uses. Keys of one chat share the
 * hash tag `{chatId}`, so on a Redis Cluster they live on one shard and a
 * script can touch them together.
 */
export const keys = {
  /** Hash: chatId, userId, username, state, createdAt, supportId, supportUserName. */
  chat: (chatId: string) => `sb:chat:{${chatId}}`,
  /** List of stored ChatMessage args, as JSON text, in storage order. */
  messages: (chatId: string) => `sb:chat:{${chatId}}:messages`,
  /** Hash: `<from>:<clientMessageId>` → seq, so a retried message is stored once. */
  clientIds: (chatId: string) => `sb:chat:{${chatId}}:client-ids`,
  /** Hash: per participant, messages sent, last delivered / read seq, and how many of the other side's they read. */
  receipts: (chatId: string) => `sb:chat:{${chatId}}:receipts`,
  /** Sorted set of waiting chatIds, scored by arrival order. */
  queue: 'sb:queue',
  /** Counter that gives each queued visitor its place. */
  queueSeq: 'sb:queue:seq',
  /** Sorted set of chatIds scored by the time (ms) they expire. The single source of truth for liveness. */
  deadlines: 'sb:deadlines',
  /** Sorted set of chatIds scored by when they were claimed (ms): the last 100 claims, for the wait estimate. */
  claims: 'sb:claims',
  /** Hash: an agent's name, status ('online' | 'away') and whether they are anonymous. */
  agent: (agentId: string) => `sb:agent:{${agentId}}`,
  /** Set of the chatIds an agent holds: their seats taken. */
  agentChats: (agentId: string) => `sb:agent:{${agentId}}:chats`,
  /** Sorted set of the Subscriber instances holding a socket of this agent, scored by lease end (ms). */
  agentSessions: (agentId: string) => `sb:agent:{${agentId}}:sessions`,
  /** Sorted set of online agentIds scored by their latest lease end (ms). */
  agentsOnline: 'sb:agents:online',
} as const

/** The same key names, for Lua scripts that find an agent's keys from a chat's fields. */
export const LUA_AGENT_KEYS = `
local function agentKey(id) return 'sb:agent:{' .. id .. '}' end
local function agentChats(id) return 'sb:agent:{' .. id .. '}:chats' end
local function agentSessions(id) return 'sb:agent:{' .. id .. '}:sessions' end
`

export const channels = {
  /** Frames for the participants of one chat, as `<to>|<frame>`. */
  chat: (chatId: string) => `sb:chat-events:${chatId}`,
  /** Queue events (visitor joined / removed) for every instance. */
  queue: 'sb:queue-events',
  /** Agent events: `{changed:[agentId…]}` (presence, status or chats changed) or `{to, frame}` (a frame for one agent's sockets). */
  agents: 'sb:agent-events',
} as const
