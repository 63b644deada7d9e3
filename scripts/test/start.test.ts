import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { connectedRedis, freePort, launchChromium, TestSocket, type Teardown } from '@switchboard/testing'

// `npm start` as a new user runs it: scripts/start.mjs as its own process, with
// no REDIS_URL and no agent key, over the built dist/ (run `npm run build` after
// changing sources). Its data directory is a temp dir; its ports are free ones.

const root = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface NpmStart {
  child: ChildProcess
  /** The `[switchboard] …` lines (stderr). */
  said: string[]
  /** The services' pino lines (stdout), parsed. */
  logs: Record<string, unknown>[]
  redisPort: number
  redisPid: number
  consoleToken: string
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

async function npmStart(t: Teardown, env: Record<string, string>): Promise<NpmStart> {
  // Only what a shell would pass, and deliberately no REDIS_URL: the machine's own Redis must stay untouched.
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const said: string[] = []
  const logs: Record<string, unknown>[] = []
  let listening = 0
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      said.push(line)
      if (listening === 2 && said.some((l) => l.includes('?token='))) resolve()
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line))
      } catch {
        return
      }
      if (line.includes('Server listening at') && ++listening === 2 && said.some((l) => l.includes('?token='))) resolve()
    })
    void exited.then(({ code, signal }) => reject(new Error(`npm start exited (${code ?? signal}) before both services listened:\n${said.join('\n')}`)))
  })
  // Whatever the test did, nothing it started outlives it.
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    for (const pid of [...logs.map((l) => l.pid), redisPidOf(said)]) if (typeof pid === 'number' && alive(pid)) process.kill(pid, 'SIGKILL')
  })
  await ready
  const started = said.find((l) => l.includes('started a private redis-server'))
  const consoleToken = /\?token=(\S+)/.exec(said.join('\n'))?.[1]
  if (started === undefined || consoleToken === undefined) throw new Error(`npm start did not say which Redis or print a console link:\n${said.join('\n')}`)
  return {
    child,
    said,
    logs,
    redisPort: Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(started)![1]),
    redisPid: redisPidOf(said)!,
    consoleToken,
    stop: async () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}

function redisPidOf(said: string[]): number | undefined {
  const m = /redis-server on \S+ \(pid (\d+)\)/.exec(said.join('\n'))
  return m ? Number(m[1]) : undefined
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

  const first = await npmStart(t, env)
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

  const second = await npmStart(t, env)
  t.ok(second.said.some((l) => l.includes(join(dataDir, 'redis'))), 'the restart uses the same data directory')
  t.equal(await readFile(secretFile, 'utf8'), secret, 'and the same secret')
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

  // What a new user opening the console without a link reads: a command to copy, not Markdown.
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  await page.goto(`${subscriber}/`)
  const hint = (await page.getByText('npm run agent-token').textContent()) ?? ''
  t.match(hint, 'npm run agent-token -- --name <you>', 'the console hint names the command')
  t.notMatch(hint, '`', 'without literal backticks')

  t.same(await second.stop(), { code: 0, signal: null })
})
