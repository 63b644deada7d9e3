import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { connectedRedis, freePort, TestSocket, type Teardown } from '@switchboard/testing'
import { alive, npmStart, redisPidOf, root, type NpmStart } from './npm-start.js'

// npm start with no REDIS_URL and no agent key, on a temp data directory and free ports.

const run = promisify(execFile)
// Two whole starts and stops (two services, a redis-server, each): on a loaded machine this
// takes longer than the suite's 60 s per file; the time is spent starting processes, not waiting.
t.setTimeout(240_000)

interface FirstRun extends NpmStart {
  redisPort: number
  redisPid: number
  consoleToken: string
}

async function startWithoutConfig(t: Teardown, env: Record<string, string>): Promise<FirstRun> {
  const started = await npmStart(t, env)
  const line = started.said.find((l) => l.includes('started a private redis-server'))
  const consoleToken = /\?token=(\S+)/.exec(started.said.join('\n'))?.[1]
  const redisPid = redisPidOf(started.said)
  if (line === undefined || consoleToken === undefined || redisPid === undefined) {
    throw new Error(`npm start did not say which Redis it started or print a console link:\n${started.said.join('\n')}`)
  }
  return { ...started, redisPort: Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(line)![1]), redisPid, consoleToken }
}

/** Who Subscriber says the token's agent is (status and body of `GET /agent/me`). */
async function whoIs(subscriber: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${subscriber}/agent/me`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, body: await res.json() }
}

async function agentToken(dataDir: string, name: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['scripts/agent-token.mjs', '--name', name], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', SWITCHBOARD_DATA_DIR: dataDir },
  })
  return stdout.trim()
}

t.test('npm start keeps its Redis data and agent secret in the data directory, across a restart', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'sb-start-'))
  t.teardown(() => rm(base, { recursive: true, force: true }))
  const dataDir = join(base, 'data')
  const chatPort = await freePort()
  const subscriberPort = await freePort()
  const env = { SWITCHBOARD_DATA_DIR: dataDir, CHAT_SERVER_PORT: String(chatPort), SUBSCRIBER_PORT: String(subscriberPort) }
  const chatServer = `http://127.0.0.1:${chatPort}`
  const subscriber = `http://127.0.0.1:${subscriberPort}`

  const first = await startWithoutConfig(t, env)
  t.not(first.redisPort, 6379, 'a private redis-server, not whatever answers on 6379')
  t.notOk(first.said.some((l) => l.includes('6379')), 'and it never mentions 6379')
  for (const service of ['chat-server', 'subscriber']) {
    t.ok(
      first.logs.some((l) => l.name === service && l.msg === 'using redis' && l.redis === `redis://127.0.0.1:${first.redisPort}`),
      `${service} logs the Redis it uses`,
    )
  }
  const redis = await connectedRedis(t, `redis://127.0.0.1:${first.redisPort}`)
  t.same(await redis.commands.config('GET', 'appendonly'), ['appendonly', 'yes'], 'AOF is on')
  t.same(await redis.commands.config('GET', 'dir'), ['dir', await realpath(join(dataDir, 'redis'))], 'its data is in the data directory')
  await redis.close()

  const secretFile = join(dataDir, 'agent-jwt-secret')
  const secret = await readFile(secretFile, 'utf8')
  t.ok(secret.trim().length >= 32, 'a secret is kept')
  t.equal((await stat(secretFile)).mode & 0o777, 0o600, 'readable by its owner only')

  const vika = await agentToken(dataDir, 'Vika')
  t.same(await whoIs(subscriber, vika), { status: 200, body: { agentId: 'vika', name: 'Vika' } }, 'npm run agent-token works against the running npm start')
  t.equal((await whoIs(subscriber, first.consoleToken)).body.name, 'Agent', 'so does the printed console link')

  // A chat in progress: Vika claimed Nika and wrote to her.
  const visitor = await (await fetch(`${chatServer}/user/join/Nika`)).json()
  const chatUrl = `ws://127.0.0.1:${chatPort}/chat/${visitor.chatId}`
  const user = await TestSocket.open(chatUrl, { pong: 'pong:user' })
  t.teardown(() => user.close())
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const agent = await TestSocket.open(chatUrl, { pong: 'pong:support', headers: { authorization: `Bearer ${vika}` } })
  t.teardown(() => agent.close())
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'Hello Nika, before the restart', from: 'Support' } })
  await user.next((m) => m.json?.type === 'ChatMessage' && m.json.args.content === 'Hello Nika, before the restart')

  t.same(await first.stop(), { code: 0, signal: null }, 'Ctrl+C (SIGTERM) stops npm start cleanly')
  t.notOk(alive(first.redisPid), 'and its redis-server with it')
  await Promise.all([user.closed, agent.closed])

  const second = await startWithoutConfig(t, env)
  t.ok(second.said.some((l) => l.includes(join(dataDir, 'redis'))), 'the restart uses the same data directory')
  t.equal(await readFile(secretFile, 'utf8'), secret, 'and the same secret')
  t.notOk(second.said.some((l) => l.includes('just made')), 'not a new one')
  t.same(await whoIs(subscriber, vika), { status: 200, body: { agentId: 'vika', name: 'Vika' } }, 'a token made before the restart still works')
  t.equal((await whoIs(subscriber, first.consoleToken)).status, 200, 'so does the first console link')

  const back = await TestSocket.open(chatUrl, { pong: 'pong:user' })
  t.teardown(() => back.close())
  back.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportId, from: 'User' } })
  const history = await back.nextOfType('ChatHistory')
  t.same(
    history.json.args.messages.map((m: { content: string; from: string }) => [m.from, m.content]),
    [['Support', 'Hello Nika, before the restart']],
    'the live chat survived the restart, history and all',
  )

  t.same(await second.stop(), { code: 0, signal: null })
})
