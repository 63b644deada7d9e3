import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { ProtocolError, encode, encodeV2, type Party, type SupportJoined, type Visitor } from '@switchboard/protocol'
import { channels, keys } from './keys.js'
import { envelope, queueJoinedParts, queueRemovedEvent } from './events.js'
import { refusalOf, retrying, throwRefusal } from './replies.js'
import { redisMillis } from './time.js'

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

/** How long a chat's keys outlive its deadline. */
export function keyGraceMs(opts: ExpiryOptions): number {
  return opts.keyGraceMs ?? DEFAULT_KEY_GRACE_MS
}
const grace = keyGraceMs

/**
 * Who holds a chat (the agent who joined it, else the one who claimed it; ''
 * for nobody) and its visitor, read before a script that frees the holder's
 * seat: the script is given that agent's keys and answers 'retry' if the
 * holder changed meanwhile.
 */
export async function chatHolder(redis: Redis, chatId: string): Promise<{ owner: string; userId: string }> {
  const [agentId, claimedBy, userId] = await redis.hmget(keys.chat(chatId), 'agentId', 'claimedBy', 'userId')
  return { owner: agentId ?? claimedBy ?? '', userId: userId ?? '' }
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
  const result = await redis.sbEnqueue(
    keys.chat(visitor.chatId),
    keys.queue,
    keys.queueSeq,
    keys.deadlines,
    visitor.chatId,
    visitor.userId,
    opts.chatTtlMs,
    grace(opts),
    channels.queue,
    ...queueJoinedParts(visitor),
  )
  if (result === 'expired' || result === 'mismatch') throwRefusal('sbEnqueue', result)
  return result
}

/**
 * Claims a waiting visitor for an agent. Atomic: of any number of concurrent
 * claims, on any instances, exactly one succeeds; the others get
 * ALREADY_CLAIMED. An identified agent takes a seat: an away agent, or one
 * holding `maxChats` chats already (0: no limit), is refused. A claim by the
 * agent who holds the chat already succeeds and changes nothing.
 */
export async function claimVisitor(redis: Redis, chatId: string, userId: string, agentId?: string, maxChats = 0): Promise<void> {
  const agent = agentId ?? ''
  const result = await redis.sbClaim(
    keys.chat(chatId),
    keys.queue,
    keys.deadlines,
    keys.claims,
    keys.agent(agent),
    keys.agentChats(agent),
    chatId,
    userId,
    channels.queue,
    agent,
    maxChats,
    channels.agents,
    queueRemovedEvent(chatId, userId),
  )
  if (result === 'ok' || result === 'same') return
  throw refusalOf('sbClaim', result) ?? new ProtocolError('VISITOR_NOT_FOUND')
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
  const agent = agentId ?? ''
  const result = await redis.sbJoinSupport(
    keys.chat(chat.chatId),
    keys.queue,
    keys.deadlines,
    keys.claims,
    keys.messages(chat.chatId),
    keys.clientIds(chat.chatId),
    keys.receipts(chat.chatId),
    keys.agent(agent),
    keys.agentChats(agent),
    chat.chatId,
    chat.userId,
    joined.supportId,
    supportUserName,
    opts.chatTtlMs,
    grace(opts),
    channels.chat(chat.chatId),
    envelope('all', encode.supportJoinedUser(joined)),
    channels.queue,
    agent,
    maxChats,
    channels.agents,
    queueRemovedEvent(chat.chatId, chat.userId),
  )
  if (result === 'same') {
    const current = await getChat(redis, chat.chatId)
    if (current === null) throw new ProtocolError('CHAT_EXPIRED')
    return { ...supportJoinedOf(current), rejoined: true }
  }
  if (result !== 'ok') throwRefusal('sbJoinSupport', result)
  return joined
}

/** Ends a chat: read-only from now on (CHAT_ENDED), history kept until it expires; v2 sockets get ChatEnded. */
export async function endChat(redis: Redis, chatId: string, by: Party, givenReason: string | null): Promise<boolean> {
  // No reason and an empty one are the same: null, live and after a refresh.
  const reason = givenReason || null
  const ended = envelope('all:v2', encodeV2.chatEnded(chatId, by, reason))
  const result = await retrying('sbEndChat', async () => {
    const { owner, userId } = await chatHolder(redis, chatId)
    return redis.sbEndChat(
      keys.chat(chatId),
      keys.queue,
      keys.deadlines,
      keys.agentChats(owner),
      chatId,
      by,
      reason ?? '',
      channels.chat(chatId),
      ended,
      channels.queue,
      channels.agents,
      owner,
      queueRemovedEvent(chatId, userId),
    )
  })
  if (result === 'expired') throwRefusal('sbEndChat', result)
  return result === 'ok'
}

/** Keeps chats whose visitor is connected and whom no agent has joined yet alive, with every key they hold. */
export async function touchWaiting(redis: Redis, chatIds: Iterable<string>, opts: ExpiryOptions): Promise<void> {
  const pipeline = redis.pipeline()
  let n = 0
  for (const chatId of chatIds) {
    pipeline.sbTouchWaiting(
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
