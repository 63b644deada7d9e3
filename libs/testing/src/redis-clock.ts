import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { connectRedis, type RedisConnections } from '@switchboard/domain'
import { coalesceWrites } from '@switchboard/server-kit'

/** Anything with a teardown hook (a tap Test). */
interface Teardown {
  teardown(fn: () => unknown): void
}

const quiet = { warn() {}, info() {} }

/** The domain's two Redis connections to `url`, both ready, closed at teardown. */
export async function connectedRedis(t: Teardown, url: string): Promise<RedisConnections> {
  // As the services connect (server-kit's redis plugin).
  const conn = connectRedis(url, quiet, { onCommandConnection: coalesceWrites })
  t.teardown(() => conn.close())
  // The command connection does not queue commands while connecting.
  const ready = (client: Redis) => (client.status === 'ready' ? null : new Promise((resolve) => client.once('ready', resolve)))
  await Promise.all([ready(conn.commands), ready(conn.subscriber)])
  return conn
}

/** Redis's clock in milliseconds: the one leases, deadlines and claim times go by. */
export async function redisNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time()
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}

/** Polls Redis's clock until it is past `ms`; bounded (2 s of polling). */
export async function redisClockPast(redis: Redis, ms: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if ((await redisNow(redis)) > ms) return
    await delay(2)
  }
  throw new Error(`the Redis clock did not pass ${ms}`)
}
