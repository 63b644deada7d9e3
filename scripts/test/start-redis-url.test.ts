import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedis } from '@switchboard/testing'
import { npmStart } from './npm-start.js'

// A whole start and stop: on a loaded machine, more than the suite's 60 s per file.
t.setTimeout(120_000)

t.test('with REDIS_URL, npm start uses that Redis and says which, without its password', async (t) => {
  const password = 'hunter2-do-not-log'
  const redis = await startRedis({ args: ['--requirepass', password] })
  t.teardown(() => redis.stop())
  const base = await mkdtemp(join(tmpdir(), 'sb-start-url-'))
  t.teardown(() => rm(base, { recursive: true, force: true }))

  const started = await npmStart(t, {
    REDIS_URL: `redis://:${password}@127.0.0.1:${redis.port}`,
    AGENT_AUTH: 'off',
    SWITCHBOARD_DATA_DIR: join(base, 'data'),
    CHAT_SERVER_PORT: String(await freePort()),
    SUBSCRIBER_PORT: String(await freePort()),
  })
  const shown = `redis://:***@127.0.0.1:${redis.port}`
  t.ok(started.said.some((l) => l.includes(`Redis: ${shown} (from REDIS_URL)`)), 'npm start names the Redis in use')
  for (const service of ['chat-server', 'subscriber']) {
    t.ok(started.logs.some((l) => l.name === service && l.msg === 'using redis' && l.redis === shown), `${service} logs it too`)
  }
  const everything = [...started.said, ...started.logs.map((l) => JSON.stringify(l))].join('\n')
  t.notMatch(everything, password, 'the password appears nowhere')
  t.notOk(started.said.some((l) => l.includes('private redis-server')), 'no private redis-server beside it')
  t.notOk(existsSync(join(base, 'data', 'redis')), 'and nothing of one in the data directory')
  t.same(await started.stop(), { code: 0, signal: null })
})
