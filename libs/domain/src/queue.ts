import type { Redis } from 'ioredis'
import type { Visitor } from '@switchboard/protocol'
import { keys } from './keys.js'
import { redisMillis } from './time.js'

/** The waiting visitors, first come first. Chats that expired but are not swept yet are left out. */
export async function listQueue(redis: Redis): Promise<Visitor[]> {
  const chatIds = await redis.zrange(keys.queue, 0, -1)
  if (chatIds.length === 0) return []
  const pipeline = redis.pipeline()
  for (const chatId of chatIds) pipeline.hmget(keys.chat(chatId), 'userId', 'username', 'state')
  pipeline.zmscore(keys.deadlines, ...chatIds)
  pipeline.time()
  const results = (await pipeline.exec()) ?? []
  const [, time] = results[results.length - 1] as [null, string[]]
  const [, deadlines] = results[results.length - 2] as [null, (string | null)[]]
  const now = redisMillis(time)
  const visitors: Visitor[] = []
  chatIds.forEach((chatId, i) => {
    const [err, fields] = results[i] as [Error | null, (string | null)[]]
    if (err) throw err
    const [userId, username, state] = fields
    const deadline = deadlines[i]
    if (!userId || state !== 'waiting' || deadline == null || Number(deadline) <= now) return
    visitors.push({ username: username ?? '', userId, chatId })
  })
  return visitors
}
