import type { Redis } from 'ioredis'
import { encode } from '@switchboard/protocol'
import { channels, keys } from './keys.js'
import { envelope, queueRemovedEvent } from './events.js'
import { chatHolder } from './chats.js'
import { retrying } from './replies.js'
import { redisMillis } from './time.js'

/** Chats expired per sweep at most; the next sweep takes the rest. */
const SWEEP_BATCH = 200

/**
 * Expires every chat whose deadline has passed: deletes its keys, takes its
 * visitor off the queue, and tells the participants (ChatExpired) and the
 * agents (RemoveUser). Safe to run on every instance at once: each chat is
 * expired and announced exactly once. Returns how many this call expired.
 */
export async function sweepExpired(redis: Redis): Promise<number> {
  const now = redisMillis(await redis.time())
  const due = await redis.zrangebyscore(keys.deadlines, '-inf', now, 'LIMIT', 0, SWEEP_BATCH)
  let expired = 0
  for (const chatId of due) {
    const won = await retrying('sbExpire', async () => {
      const { owner, userId } = await chatHolder(redis, chatId)
      return redis.sbExpire(
        keys.deadlines,
        keys.chat(chatId),
        keys.messages(chatId),
        keys.queue,
        keys.clientIds(chatId),
        keys.receipts(chatId),
        keys.agentChats(owner),
        chatId,
        channels.chat(chatId),
        envelope('all', encode.chatExpired(chatId)),
        channels.queue,
        channels.agents,
        owner,
        queueRemovedEvent(chatId, userId),
      )
    })
    expired += won
  }
  return expired
}

/**
 * Warns the participants (v2 sockets) of chats whose deadline is within
 * `warnMs` — once per deadline, however many instances sweep.
 */
export async function warnExpiring(redis: Redis, warnMs: number): Promise<number> {
  if (warnMs <= 0) return 0
  const now = redisMillis(await redis.time())
  const soon = await redis.zrangebyscore(keys.deadlines, now + 1, now + warnMs, 'LIMIT', 0, SWEEP_BATCH)
  let warned = 0
  for (const chatId of soon) {
    warned += await redis.sbWarnExpiring(keys.deadlines, keys.chat(chatId), chatId, warnMs, channels.chat(chatId))
  }
  return warned
}
