import type { Redis } from 'ioredis'
import { encode, type ChatMessageV2, type Party } from '@switchboard/protocol'
import { channels, keys } from './keys.js'
import { SLOT, splitAt } from './events.js'
import { keyGraceMs, newId, type ExpiryOptions } from './chats.js'
import { throwRefusal } from './replies.js'
import { nowTimestamp } from './time.js'

/*
 * A chat's messages: storing one (seq, messageId, clientMessageId
 * deduplication), who holds the chat's channel, reading the history, and
 * delivered / read receipts.
 */

/**
 * A stored message, as the history keeps it: the seed-004 ChatMessage args
 * in wire order (their seed-004 cut: storedToV1), then seq, messageId and the
 * clientMessageId if any.
 */
export function encodeStoredMessage(m: ChatMessageV2): string {
  return storedText(m, m.supportId, String(m.seq))
}

function storedText(m: Omit<ChatMessageV2, 'supportId' | 'seq'>, supportId: string, seq: string): string {
  const v1 = encode.chatMessageArgs({ userId: m.userId, supportId, content: m.content, timestamp: m.timestamp, from: m.from })
  const clientId = m.clientMessageId === undefined ? '' : `,"clientMessageId":${JSON.stringify(m.clientMessageId)}`
  return `${v1.slice(0, -1)},"seq":${seq},"messageId":${JSON.stringify(m.messageId)}${clientId}}`
}

/**
 * The stored message cut around the two values only append-message.lua
 * knows, the chat's current supportId and the seq: the script writes
 * `[0] .. supportId .. [1] .. seq .. [2]`, every other byte as
 * encodeStoredMessage makes it. (A supportId is 32 hex characters, which
 * JSON writes as they are: the script puts it between the quotes unescaped.)
 */
export function storedMessageParts(m: Omit<ChatMessageV2, 'supportId' | 'seq'>): [string, string, string] {
  // JSON.stringify writes the marker escaped inside the supportId's quotes: cut there, keeping the quotes.
  const text = storedText(m, SLOT, SLOT).replace(`"supportId":${JSON.stringify(SLOT)}`, `"supportId":"${SLOT}"`)
  return splitAt(text, 3)
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
  const clientId = input.clientMessageId ?? ''
  // Every byte of the stored message but the chat's current supportId and the seq, which the script fills in.
  const parts = storedMessageParts({
    userId: input.userId,
    content: input.content,
    timestamp: nowTimestamp(),
    from: input.from,
    messageId: newId(),
    ...(clientId ? { clientMessageId: clientId } : {}),
  })
  const result = await redis.sbAppendMessage(
    keys.chat(input.chatId),
    keys.messages(input.chatId),
    keys.deadlines,
    keys.clientIds(input.chatId),
    keys.receipts(input.chatId),
    input.chatId,
    input.supportId,
    ...parts,
    clientId,
    opts.chatTtlMs,
    keyGraceMs(opts),
    channels.chat(input.chatId),
    input.from,
    input.agentId ?? '',
    opts.holder ?? '',
    input.beforeAgent ? '1' : '',
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
  throwRefusal('sbAppendMessage', result)
}

/**
 * This instance (`holder`, an id of its own) has sockets listening on the
 * chat's channel: messages sent from elsewhere must be published to it. Held
 * once per instance, however many sockets; a chat that is gone is not
 * recreated.
 */
export async function holdChat(redis: Redis, chatId: string, holder: string): Promise<void> {
  await redis.sbHoldChat(keys.chat(chatId), holder, 'hold')
}

/** This instance has no socket listening on the chat any more. */
export async function releaseChat(redis: Redis, chatId: string, holder: string): Promise<void> {
  await redis.sbHoldChat(keys.chat(chatId), holder, 'release')
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
  const result = await redis.sbReceipt(keys.chat(chatId), keys.messages(chatId), keys.deadlines, keys.receipts(chatId), chatId, reader, kind, seq, channels.chat(chatId))
  if (result === 'expired') throwRefusal('sbReceipt', result)
  if (result === 'badseq') throwRefusal('sbReceipt', result, `No message with seq ${seq} in this chat yet`)
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

