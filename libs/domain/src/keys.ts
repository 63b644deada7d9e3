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
} as const

export const channels = {
  /** Frames for the participants of one chat, as `<to>|<frame>`. */
  chat: (chatId: string) => `sb:chat-events:${chatId}`,
  /** Queue events (visitor joined / removed) for every Subscriber instance. */
  queue: 'sb:queue-events',
} as const
