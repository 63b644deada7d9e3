import t from 'tap'
import { once } from 'node:events'
import { keys } from '@switchboard/domain'
import { connectedRedis, startStack } from '@switchboard/testing'

/*
 * An agent's record ({sb}:agent:<id>: name, status) lives while they are
 * online and AGENT_FORGET_AFTER_SECONDS after: ids that never come back do
 * not pile up in Redis (docs/operations.md).
 */

const FORGET_SECONDS = 1
const OFFLINE_SECONDS = 0.2

t.test("an agent's record is renewed while they are connected and deleted AGENT_FORGET_AFTER_SECONDS after they went offline", async (t) => {
  const stack = await startStack(t, {
    env: { AGENT_AUTH: 'on', AGENT_OFFLINE_AFTER_SECONDS: String(OFFLINE_SECONDS), AGENT_FORGET_AFTER_SECONDS: String(FORGET_SECONDS) },
  })
  const redis = (await connectedRedis(t, stack.redis.url)).commands
  const events = (await connectedRedis(t, stack.redis.url)).subscriber
  await events.config('SET', 'notify-keyspace-events', 'Ex')
  await events.subscribe('__keyevent@0__:expired')
  const record = keys.agent('agent-vika')
  const expired: string[] = []
  events.on('message', (_channel: string, key: string) => expired.push(key))

  const token = await stack.agentToken('Vika', { id: 'agent-vika' })
  const users = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support', { token, v2: true })
  await users.next((m) => m.json?.type === 'AgentsOnline' && m.json.args.agents.some((a: { agentId: string }) => a.agentId === 'agent-vika'))
  t.equal(await redis.hget(record, 'name'), 'Vika', 'the record is there')
  const limit = (OFFLINE_SECONDS + FORGET_SECONDS) * 1000
  const first = await redis.pttl(record)
  t.ok(first > 0 && first <= limit, `with a lifetime: at most the lease plus AGENT_FORGET_AFTER_SECONDS (${first} ms)`)

  /** Resolves once `key` expired (a Redis keyspace event). */
  const expiry = (key: string) => (async () => {
    while (!expired.includes(key)) await once(events, 'message')
  })()

  // Connected for longer than that lifetime: a marker given it (and a little more) expires first.
  await redis.set('marker:connected', '1', 'PX', limit + 300)
  await expiry('marker:connected')
  t.same(expired.filter((k) => k === record), [], 'the renewals keep the record while the agent is connected')
  t.equal(await redis.hget(record, 'name'), 'Vika')

  // The last socket closes: the lease runs out, then the record's lifetime. A marker bounds the wait.
  await users.close()
  await redis.set('marker:gone', '1', 'PX', limit + 1000)
  await Promise.race([expiry(record), expiry('marker:gone')])
  t.ok(expired.includes(record), 'the record expired within the lease plus AGENT_FORGET_AFTER_SECONDS of the last socket closing')
  t.equal(await redis.exists(record), 0, 'the record is gone')
})
