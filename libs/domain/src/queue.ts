import type { Redis } from 'ioredis'
import type { QueuedVisitor } from '@switchboard/protocol'
import { keys } from './keys.js'
import { redisMillis } from './time.js'

/**
 * The waiting visitors, first come first, with when they were queued and
 * their place. Chats that expired but are not swept yet are left out.
 */
export async function listQueue(redis: Redis): Promise<QueuedVisitor[]> {
  const withScores = await redis.zrange(keys.queue, 0, -1, 'WITHSCORES')
  if (withScores.length === 0) return []
  const chatIds = withScores.filter((_, i) => i % 2 === 0)
  const pipeline = redis.pipeline()
  for (const chatId of chatIds) pipeline.hmget(keys.chat(chatId), 'userId', 'username', 'state', 'queuedAt')
  pipeline.zmscore(keys.deadlines, ...chatIds)
  pipeline.time()
  const results = (await pipeline.exec()) ?? []
  const [, time] = results[results.length - 1] as [null, string[]]
  const [, deadlines] = results[results.length - 2] as [null, (string | null)[]]
  const now = redisMillis(time)
  const visitors: QueuedVisitor[] = []
  chatIds.forEach((chatId, i) => {
    const [err, fields] = results[i] as [Error | null, (string | null)[]]
    if (err) throw err
    const [userId, username, state, queuedAt] = fields
    const deadline = deadlines[i]
    if (!userId || state !== 'waiting' || deadline == null || Number(deadline) <= now) return
    const since = new Date(Number(queuedAt ?? now)).toISOString()
    visitors.push({ username: username ?? '', userId, chatId, since, order: Number(withScores[2 * i + 1]) })
  })
  return visitors
}

/** How many chats are in the queue, including any that expired and are not swept yet (one ZCARD: cheap enough for every metrics scrape). */
export function queueLength(redis: Redis): Promise<number> {
  return redis.zcard(keys.queue)
}

/**
 * This ChatServer instance (`instance`, an id of its own) has a socket of a
 * waiting visitor: while any instance has one, the visitor keeps their place.
 */
export async function waitingVisitorHere(redis: Redis, chatId: string, instance: string): Promise<void> {
  await redis.sbWaitingVisitor(keys.chat(chatId), keys.deadlines, chatId, instance, 'here', 0)
}

/**
 * This instance has no socket of the waiting visitor any more. If no other
 * instance has one, the visitor leaves the queue (their chat expires) in
 * `leaveMs`, unless a socket comes back first. Returns true if that clock
 * started now.
 */
export async function waitingVisitorGone(redis: Redis, chatId: string, instance: string, leaveMs: number): Promise<boolean> {
  return (await redis.sbWaitingVisitor(keys.chat(chatId), keys.deadlines, chatId, instance, 'gone', leaveMs)) === 1
}
