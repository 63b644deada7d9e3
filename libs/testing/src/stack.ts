import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp as buildChatServer } from '@switchboard/chat-server'
import { buildApp as buildSubscriber } from '@switchboard/subscriber'
import { loadConfig, randomSecret, signAgentToken, type Config } from '@switchboard/server-kit'
import { freePort, startRedis, type StartRedisOptions, type TestRedis } from './redis-server.js'
import { TestSocket } from './ws-client.js'

/** Anything with tap's `teardown`. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A config for tests: quiet logs, the given Redis, and any overrides
 * (env-style names). Agent authentication is off unless `AGENT_AUTH: 'on'`
 * is passed: most suites play seed-004 clients, which have no tokens. The
 * abuse limits are lifted, since every test client shares one address and
 * sends fast; the suites about limits set the ones they test.
 */
export function testConfig(redisUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ REDIS_URL: redisUrl, LOG_LEVEL: 'silent', ...TEST_ENV, ...env })
}

/** The settings every test instance starts with (in-process or as its own process): no agent auth, limits lifted. */
export const TEST_ENV: Readonly<Record<string, string>> = Object.freeze({
  AGENT_AUTH: 'off',
  JOIN_RATE_LIMIT_PER_MINUTE: '1000000',
  RATE_LIMIT_PER_SECOND: '1000000',
  RATE_LIMIT_BURST: '1000000',
  MAX_SOCKETS_PER_IP: '1000000',
  MAX_SOCKETS_PER_CHAT: '1000',
})

export interface RunningApp {
  app: FastifyInstance
  /** http://127.0.0.1:port */
  http: string
  /** ws://127.0.0.1:port */
  ws: string
}

async function listen(t: Teardown, app: FastifyInstance, port = 0): Promise<RunningApp> {
  try {
    await app.listen({ port, host: '127.0.0.1' })
  } catch (err) {
    await app.close()
    throw err
  }
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { app, http: `http://127.0.0.1:${address.port}`, ws: `ws://127.0.0.1:${address.port}` }
}

export interface WaitingVisitor {
  userId: string
  username: string
  chatId: string
  socket: TestSocket
}

export interface Stack {
  redis: TestRedis
  config: Config
  chatServers: RunningApp[]
  subscribers: RunningApp[]
  /** `GET /user/join/:name` on the first (or given) ChatServer. */
  joinVisitor(name: string, on?: RunningApp): Promise<{ userId: string; username: string; chatId: string }>
  /** A registered visitor who has sent Join (and got UserJoined), with their open socket: waiting in the queue. */
  waitingVisitor(name: string, on?: RunningApp): Promise<WaitingVisitor>
  /** A socket that answers pings and is closed at teardown; with `token`, it presents it as `Authorization: Bearer`. */
  socket(url: string, pong?: string | null, opts?: { token?: string; v2?: boolean }): Promise<TestSocket>
  /** An agent token signed with the stack's secret (auth on only). */
  agentToken(name: string, opts?: { id?: string; ttlSeconds?: number }): Promise<string>
}

/**
 * A private redis-server plus ChatServer and Subscriber instances listening
 * on free ports, all torn down with the test.
 */
export async function startStack(
  t: Teardown,
  opts: { chatServers?: number; subscribers?: number; env?: Record<string, string>; sweepIntervalMs?: number; redis?: StartRedisOptions } = {},
): Promise<Stack> {
  const redis = await startRedis(opts.redis)
  t.teardown(() => redis.stop())
  const secret = randomSecret()
  const appOpts = opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs }
  let config!: Config
  let chatServers: RunningApp[] = []
  let subscribers: RunningApp[] = []
  // The first instance of each service listens on the configured port, so the
  // default origin allowlist (the services' own origins) is what browsers meet.
  // A port found free can be taken by another test file before we listen on
  // it: then everything starts again on new ports.
  for (let attempt = 1; ; attempt++) {
    const env: Record<string, string> = {
      CHAT_SERVER_PORT: String(await freePort()),
      SUBSCRIBER_PORT: String(await freePort()),
      ...opts.env,
    }
    if (env.AGENT_AUTH === 'on' && env.AGENT_JWT_SECRET === undefined && env.AGENT_JWT_PUBLIC_KEY === undefined) {
      env.AGENT_JWT_SECRET = secret
    }
    config = testConfig(redis.url, env)
    const started: RunningApp[] = []
    const local: Teardown = { teardown: () => {} }
    try {
      chatServers = []
      subscribers = []
      for (let i = 0; i < (opts.chatServers ?? 1); i++) {
        chatServers.push(await listen(local, await buildChatServer(config, appOpts), i === 0 ? config.chatServerPort : 0))
        started.push(chatServers.at(-1)!)
      }
      for (let i = 0; i < (opts.subscribers ?? 1); i++) {
        subscribers.push(await listen(local, await buildSubscriber(config, appOpts), i === 0 ? config.subscriberPort : 0))
        started.push(subscribers.at(-1)!)
      }
      for (const { app } of started) t.teardown(() => app.close())
      break
    } catch (err) {
      await Promise.all(started.map(({ app }) => app.close()))
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err
    }
  }
  const stack: Stack = {
    redis,
    config,
    chatServers,
    subscribers,
    async joinVisitor(name, on = chatServers[0]!) {
      const res = await fetch(`${on.http}/user/join/${encodeURIComponent(name)}`)
      if (res.status !== 200) throw new Error(`join failed: ${res.status} ${await res.text()}`)
      return (await res.json()) as { userId: string; username: string; chatId: string }
    },
    async waitingVisitor(name, on = chatServers[0]!) {
      const visitor = await stack.joinVisitor(name, on)
      const socket = await stack.socket(`${on.ws}/chat/${visitor.chatId}`, 'pong:user')
      socket.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })
      await socket.nextOfType('UserJoined')
      return { ...visitor, socket }
    },
    async socket(url, pong, socketOpts = {}) {
      const socket = await TestSocket.open(url, {
        pong: pong === undefined ? 'pong:user' : pong,
        ...(socketOpts.token ? { headers: { authorization: `Bearer ${socketOpts.token}` } } : {}),
        ...(socketOpts.v2 ? { protocols: ['switchboard.v2'] } : {}),
      })
      t.teardown(() => socket.close())
      return socket
    },
    async agentToken(name, tokenOpts = {}) {
      if (config.agentAuth.mode !== 'on' || config.agentAuth.secret === undefined) throw new Error('agentToken needs AGENT_AUTH on with a secret')
      return signAgentToken(config.agentAuth.secret, {
        id: tokenOpts.id ?? `agent-${name.toLowerCase()}`,
        name,
        ttlSeconds: tokenOpts.ttlSeconds ?? 3600,
      })
    },
  }
  return stack
}

/** Resolves once both of an app's Redis connections are ready again (after an outage): an event, not a poll. */
export async function redisReady(app: FastifyInstance): Promise<void> {
  for (const client of [app.redis.commands, app.redis.subscriber]) {
    if (client.status !== 'ready') await new Promise<void>((resolve) => client.once('ready', () => resolve()))
  }
}

/**
 * The server side of every upgrade request on every instance of the stack,
 * so a test can check that the server closes a refused one; any left are
 * destroyed before the apps close (teardowns run last-in first-out, so this
 * one, added after startStack's, runs first).
 */
export function trackUpgrades(t: Teardown, stack: Stack): Duplex[] {
  const sockets: Duplex[] = []
  for (const { app } of [...stack.chatServers, ...stack.subscribers]) {
    app.server.on('upgrade', (_req, socket: Duplex) => sockets.push(socket))
  }
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
  })
  return sockets
}

/** True if the connection closes within `ms` (a bounded wait on the close event). */
export function closesWithin(socket: Duplex, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}
