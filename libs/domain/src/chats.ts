import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { ProtocolError, encode, encodeV2, type ChatMessageV2, type ErrorCode, type Party, type SupportJoined, type Visitor } from '@switchboard/protocol'
import { channels, keys } from './keys.js'
import { runScript } from './scripts.js'
import { envelope } from './events.js'
import { nowTimestamp, redisMillis } from './time.js'

/** How long a chat lives without activity, and how long its keys outlive that (a safety net). */
export interface ExpiryOptions {
  /** Inactivity before a chat expires, in ms (CHAT_TTL_SECONDS). */
  chatTtlMs: number
  /**
   * Extra lifetime of the Redis keys past the deadline, so an expiry sweep
   * that runs late still finds the chat to announce it; the keys go anyway
   * if no instance sweeps. @default 60000
   */
  keyGraceMs?: number
}

const DEFAULT_KEY_GRACE_MS = 60_000

/** Where a chat is in its life: created → waiting in the queue → claimed by an agent → active (agent joined). */
export type ChatState = 'new' | 'waiting' | 'claimed' | 'active' | 'ended'

export interface ChatRecord extends Visitor {
  state: ChatState
  createdAt: number
  supportId?: string
  supportUserName?: string
  /** The authenticated agent who joined (absent when agents are anonymous). */
  agentId?: string
  /** The authenticated agent who claimed the visitor from the queue. */
  claimedBy?: string
  /** Set once the chat ended (state 'ended'). */
  endedBy?: Party
  endReason?: string
  /** supportIds the chat had before transfers: a visitor naming one is stale, not someone else. */
  pastSupportIds?: string[]
}

/** A new random id: 32 lowercase hex characters, like seed 004's. */
export function newId(): string {
  return randomUUID().replaceAll('-', '')
}

/** What a script's refusal means to the client. */
function refusal(result: string, table: Record<string, [ErrorCode, string?]>): ProtocolError | null {
  const entry = table[result]
  return entry === undefined ? null : new ProtocolError(entry[0], entry[1])
}

const USER_MISMATCH: [ErrorCode, string] = ['IDENTITY_MISMATCH', 'userId does not belong to this chat']

function grace(opts: ExpiryOptions): number {
  return opts.keyGraceMs ?? DEFAULT_KEY_GRACE_MS
}

/** Registers a visitor: a new chat, not yet in the queue (that happens on Join). */
export async function createChat(redis: Redis, username: string, opts: ExpiryOptions): Promise<Visitor> {
  const visitor: Visitor = { userId: newId(), username, chatId: newId() }
  const now = redisMillis(await redis.time())
  await redis
    .multi()
    .hset(keys.chat(visitor.chatId), {
      chatId: visitor.chatId,
      userId: visitor.userId,
      username,
      state: 'new',
      createdAt: now,
    })
    .pexpire(keys.chat(visitor.chatId), opts.chatTtlMs + grace(opts))
    .zadd(keys.deadlines, now + opts.chatTtlMs, visitor.chatId)
    .exec()
  return visitor
}

/** The chat, or null when it expired or never existed. */
export async function getChat(redis: Redis, chatId: string): Promise<ChatRecord | null> {
  const [[, fields], [, deadline], [, time]] = (await redis
    .multi()
    .hgetall(keys.chat(chatId))
    .zscore(keys.deadlines, chatId)
    .time()
    .exec()) as [[null, Record<string, string>], [null, string | null], [null, string[]]]
  const now = redisMillis(time)
  if (deadline === null || Number(deadline) <= now || !fields.userId) return null
  const chat: ChatRecord = {
    chatId: fields.chatId ?? chatId,
    userId: fields.userId,
    username: fields.username ?? '',
    state: (fields.state ?? 'new') as ChatState,
    createdAt: Number(fields.createdAt),
  }
  if (fields.supportId !== undefined) chat.supportId = fields.supportId
  if (fields.supportUserName !== undefined) chat.supportUserName = fields.supportUserName
  if (fields.agentId !== undefined) chat.agentId = fields.agentId
  if (fields.claimedBy !== undefined) chat.claimedBy = fields.claimedBy
  if (fields.endedBy !== undefined) chat.endedBy = fields.endedBy as Party
  if (fields.endReason) chat.endReason = fields.endReason
  if (fields.pastSupportIds) chat.pastSupportIds = fields.pastSupportIds.split(',')
  return chat
}

/**
 * Puts the visitor in the agents' queue (once: a visitor who joins again keeps
 * their place). Returns 'queued' when this call queued them, else the state
 * the chat was already in.
 */
export async function enqueueVisitor(
  redis: Redis,
  visitor: Visitor,
  opts: ExpiryOptions,
): Promise<'queued' | Exclude<ChatState, 'new'>> {
  const result = await runScript(
    redis,
    'sbEnqueue',
    [keys.chat(visitor.chatId), keys.queue, keys.queueSeq, keys.deadlines],
    [visitor.chatId, visitor.userId, opts.chatTtlMs, grace(opts), channels.queue, visitorJson(visitor)],
  )
  const refused = refusal(result, { expired: ['CHAT_EXPIRED'], mismatch: USER_MISMATCH })
  if (refused) throw refused
  return result as 'queued' | Exclude<ChatState, 'new'>
}

/** The visitor as queue events carry it: the seed's fields in the seed's order. */
function visitorJson(v: Visitor): string {
  return JSON.stringify({ username: v.username, userId: v.userId, chatId: v.chatId })
}

/** Refusals of a claim that are about the agent's seats. */
const SEAT_REFUSALS: Record<string, [ErrorCode, string?]> = {
  away: ['AGENT_AWAY'],
  capacity: ['AGENT_AT_CAPACITY'],
}

/**
 * Claims a waiting visitor for an agent. Atomic: of any number of concurrent
 * claims, on any instances, exactly one succeeds; the others get
 * ALREADY_CLAIMED. An identified agent takes a seat: an away agent, or one
 * holding `maxChats` chats already (0: no limit), is refused. A claim by the
 * agent who holds the chat already succeeds and changes nothing.
 */
export async function claimVisitor(redis: Redis, chatId: string, userId: string, agentId?: string, maxChats = 0): Promise<void> {
  const result = await runScript(
    redis,
    'sbClaim',
    [keys.chat(chatId), keys.queue, keys.deadlines, keys.claims],
    [chatId, userId, channels.queue, agentId ?? '', maxChats, channels.agents],
  )
  if (result === 'ok' || result === 'same') return
  throw refusal(result, { claimed: ['ALREADY_CLAIMED'], notqueued: ['NOT_IN_QUEUE'], ...SEAT_REFUSALS }) ?? new ProtocolError('VISITOR_NOT_FOUND')
}

/**
 * An agent joins the chat for the first time: the server makes their
 * supportId, takes the visitor off the queue if no claim did so already, and
 * announces SupportJoinedUser to both participants. With authenticated
 * agents, a visitor claimed by one agent cannot be joined by another, and an
 * agent who has the chat already gets it back (`rejoined`, nothing announced).
 */
export async function joinSupport(
  redis: Redis,
  chat: Visitor,
  supportUserName: string,
  opts: ExpiryOptions,
  agentId?: string,
  maxChats = 0,
): Promise<SupportJoined & { rejoined?: true }> {
  const joined: SupportJoined = {
    supportId: newId(),
    supportUserName,
    username: chat.username,
    userId: chat.userId,
    chatId: chat.chatId,
  }
  const result = await runScript(
    redis,
    'sbJoinSupport',
    [keys.chat(chat.chatId), keys.queue, keys.deadlines, keys.claims, keys.messages(chat.chatId), keys.clientIds(chat.chatId), keys.receipts(chat.chatId)],
    [
      chat.chatId,
      chat.userId,
      joined.supportId,
      supportUserName,
      opts.chatTtlMs,
      grace(opts),
      channels.chat(chat.chatId),
      envelope('all', encode.supportJoinedUser(joined)),
      channels.queue,
      agentId ?? '',
      maxChats,
      channels.agents,
    ],
  )
  if (result === 'same') {
    const current = await getChat(redis, chat.chatId)
    if (current === null) throw new ProtocolError('CHAT_EXPIRED')
    return { ...supportJoinedOf(current), rejoined: true }
  }
  const refused = refusal(result, {
    expired: ['CHAT_EXPIRED'],
    mismatch: USER_MISMATCH,
    ended: ['CHAT_ENDED'],
    claimed: ['ALREADY_CLAIMED', 'Another agent has already joined this chat'],
    ...SEAT_REFUSALS,
  })
  if (refused) throw refused
  return joined
}

export interface NewMessage {
  chatId: string
  userId: string
  supportId: string
  content: string
  from: Party
  /** The client's id for the message: a retry with the same id stores nothing new. */
  clientMessageId?: string
  /** The sending agent, when identified: only the agent who holds the chat may write as Support. */
  agentId?: string
  /** A v2 visitor's message: it may come before an agent joined (with supportId ''), and waits in the history for them. */
  beforeAgent?: boolean
}

/** Publishing a message can be skipped by the instance that is the only one listening to its chat: see holdChat. */
export interface AppendOptions extends ExpiryOptions {
  /** The sending instance's holder id (holdChat); without one, every message is published. */
  holder?: string
}

export interface StoredMessage {
  /**
   * Set when the sending instance is the only holder of the chat: the
   * publication, not published, for that instance to give its own listeners.
   */
  local?: string
  /** The message as stored: the seed-004 args with seq and messageId appended (see storedToV1). */
  stored: string
  /** The stored message, parsed (on each read). */
  readonly message: ChatMessageV2
  /** True when clientMessageId had been stored before: nothing new was stored or announced. */
  duplicate: boolean
}

/**
 * Stores a message under the chat's next seq and, in the same atomic step,
 * announces it to both participants (and the recipient's unread count to v2
 * sockets). Nobody sees a message that was not stored.
 */
export async function appendMessage(redis: Redis, input: NewMessage, opts: AppendOptions): Promise<StoredMessage> {
  // The seed-004 args in wire order; the script appends seq and messageId.
  const v1 = encode.chatMessageArgs({
    userId: input.userId,
    supportId: input.supportId,
    content: input.content,
    timestamp: nowTimestamp(),
    from: input.from,
  })
  const clientId = input.clientMessageId ?? ''
  // The supportId is cut out: the script stores the chat's current one (see sbAppendMessage).
  const head = `{"userId":${JSON.stringify(input.userId)},"supportId":"`
  const tail = v1.slice(head.length + input.supportId.length, -1)
  if (!v1.startsWith(head) || !tail.startsWith('",')) throw new Error('ChatMessage args are not in seed-004 order')
  const result = await runScript<string | [string, string, string?]>(
    redis,
    'sbAppendMessage',
    [keys.chat(input.chatId), keys.messages(input.chatId), keys.deadlines, keys.clientIds(input.chatId), keys.receipts(input.chatId)],
    [
      input.chatId,
      input.supportId,
      head,
      newId(),
      clientId,
      clientId ? `,"clientMessageId":${JSON.stringify(clientId)}` : '',
      opts.chatTtlMs,
      grace(opts),
      channels.chat(input.chatId),
      input.from,
      tail,
      input.agentId ?? '',
      opts.holder ?? '',
      input.beforeAgent ? '1' : '',
    ],
  )
  if (Array.isArray(result)) {
    const [outcome, stored, local] = result
    const appended: StoredMessage = {
      stored,
      // Parsed only when asked for (a v2 Ack); a seed-004 message never needs it.
      get message() {
        return JSON.parse(stored) as ChatMessageV2
      },
      duplicate: outcome === 'dup',
    }
    if (local !== undefined) appended.local = local
    return appended
  }
  throw (
    refusal(result, {
      expired: ['CHAT_EXPIRED'],
      noagent: ['NO_AGENT_YET'],
      mismatch: ['IDENTITY_MISMATCH', 'supportId does not belong to this chat'],
      ended: ['CHAT_ENDED'],
    }) ?? new Error(`unexpected script result ${String(result)}`)
  )
}

/**
 * This instance (`holder`, an id of its own) has sockets listening on the
 * chat's channel: messages sent from elsewhere must be published to it. Held
 * once per instance, however many sockets; a chat that is gone is not
 * recreated.
 */
export async function holdChat(redis: Redis, chatId: string, holder: string): Promise<void> {
  await runScript(redis, 'sbHoldChat', [keys.chat(chatId)], [holder, 'hold'])
}

/** This instance has no socket listening on the chat any more. */
export async function releaseChat(redis: Redis, chatId: string, holder: string): Promise<void> {
  await runScript(redis, 'sbHoldChat', [keys.chat(chatId)], [holder, 'release'])
}

/** The stored messages of a chat, in storage order (stored form: see storedToV1). */
export async function readHistory(redis: Redis, chatId: string): Promise<string[]> {
  return redis.lrange(keys.messages(chatId), 0, -1)
}

/** Stored messages with seq in [fromSeq, toSeq] (1-based, inclusive; toSeq -1 for "to the end"). */
export async function readMessages(redis: Redis, chatId: string, fromSeq: number, toSeq = -1): Promise<string[]> {
  if (toSeq !== -1 && toSeq < fromSeq) return []
  return redis.lrange(keys.messages(chatId), Math.max(0, fromSeq - 1), toSeq === -1 ? -1 : toSeq - 1)
}

/** How many messages a chat has stored: the last seq. */
export async function lastSeq(redis: Redis, chatId: string): Promise<number> {
  return redis.llen(keys.messages(chatId))
}

export type Reader = 'user' | 'support'

/** Delivered / read receipt from one participant. Returns false when it was not newer than the last one. */
export async function markReceipt(redis: Redis, chatId: string, reader: Reader, kind: 'delivered' | 'read', seq: number): Promise<boolean> {
  const result = await runScript(
    redis,
    'sbReceipt',
    [keys.chat(chatId), keys.messages(chatId), keys.deadlines, keys.receipts(chatId)],
    [chatId, reader, kind, seq, channels.chat(chatId)],
  )
  if (result === 'expired') throw new ProtocolError('CHAT_EXPIRED')
  if (result === 'badseq') throw new ProtocolError('INVALID_SEQ', `No message with seq ${seq} in this chat yet`)
  return result === 'ok'
}

export interface ReadState {
  /** Last seq each participant confirmed delivered / read (0: none). */
  delivered: Record<Reader, number>
  read: Record<Reader, number>
  /** Messages of the other side each participant has not read. */
  unread: Record<Reader, number>
}

/** Receipts and unread counts as stored, so ticks survive a refresh. */
export async function readState(redis: Redis, chatId: string): Promise<ReadState> {
  const f = await redis.hgetall(keys.receipts(chatId))
  const n = (k: string) => Number(f[k] ?? 0)
  return {
    delivered: { user: n('delivered:user'), support: n('delivered:support') },
    read: { user: n('read:user'), support: n('read:support') },
    unread: { user: n('sent:Support') - n('readn:user'), support: n('sent:User') - n('readn:support') },
  }
}

/** Ends a chat: read-only from now on (CHAT_ENDED), history kept until it expires; v2 sockets get ChatEnded. */
export async function endChat(redis: Redis, chatId: string, by: Party, givenReason: string | null): Promise<boolean> {
  // No reason and an empty one are the same: null, live and after a refresh.
  const reason = givenReason || null
  const result = await runScript(
    redis,
    'sbEndChat',
    [keys.chat(chatId), keys.queue, keys.deadlines],
    [chatId, by, reason ?? '', channels.chat(chatId), encodeV2.chatEnded(chatId, by, reason), channels.queue, channels.agents],
  )
  if (result === 'expired') throw new ProtocolError('CHAT_EXPIRED')
  return result === 'ok'
}

/** Keeps chats whose visitor is connected and whom no agent has joined yet alive, with every key they hold. */
export async function touchWaiting(redis: Redis, chatIds: Iterable<string>, opts: ExpiryOptions): Promise<void> {
  const pipeline = redis.pipeline()
  let n = 0
  for (const chatId of chatIds) {
    ;(pipeline as unknown as Record<string, (...a: unknown[]) => void>).sbTouchWaiting!(
      keys.chat(chatId),
      keys.deadlines,
      keys.messages(chatId),
      keys.clientIds(chatId),
      keys.receipts(chatId),
      chatId,
      opts.chatTtlMs,
      grace(opts),
    )
    n++
  }
  if (n > 0) await pipeline.exec()
}

/** SupportJoinedUser's args for a chat an agent has joined. */
export function supportJoinedOf(chat: ChatRecord): SupportJoined {
  return {
    supportId: chat.supportId ?? '',
    supportUserName: chat.supportUserName ?? '',
    username: chat.username,
    userId: chat.userId,
    chatId: chat.chatId,
  }
}
