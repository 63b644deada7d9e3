import type { FastifyInstance } from 'fastify'
import { buildApp as buildChatServer } from '@switchboard/chat-server'
import { buildApp as buildSubscriber } from '@switchboard/subscriber'
import { loadConfig, type Config } from '@switchboard/server-kit'
import { startRedis, type TestRedis } from './redis-server.js'
import { TestSocket } from './ws-client.js'

/** Anything with tap's `teardown`. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/** A config for tests: quiet logs, the given Redis, and any overrides (env-style names). */
export function testConfig(redisUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ REDIS_URL: redisUrl, LOG_LEVEL: 'silent', ...env })
}

export interface RunningApp {
  app: FastifyInstance
  /** http://127.0.0.1:port */
  http: string
  /** ws://127.0.0.1:port */
  ws: string
}

async function listen(t: Teardown, app: FastifyInstance): Promise<RunningApp> {
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { app, http: `http://127.0.0.1:${address.port}`, ws: `ws://127.0.0.1:${address.port}` }
}

export interface Stack {
  redis: TestRedis
  config: Config
  chatServers: RunningApp[]
  subscribers: RunningApp[]
  /** `GET /user/join/:name` on the first (or given) ChatServer. */
  joinVisitor(name: string, on?: RunningApp): Promise<{ userId: string; username: string; chatId: string }>
  /** A socket that answers pings and is closed at teardown. */
  socket(url: string, pong?: string | null): Promise<TestSocket>
}

/**
 * A private redis-server plus ChatServer and Subscriber instances listening
 * on free ports, all torn down with the test.
 */
export async function startStack(
  t: Teardown,
  opts: { chatServers?: number; subscribers?: number; env?: Record<string, string>; sweepIntervalMs?: number } = {},
): Promise<Stack> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const config = testConfig(redis.url, opts.env)
  const appOpts = opts.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: opts.sweepIntervalMs }
  const chatServers: RunningApp[] = []
  const subscribers: RunningApp[] = []
  for (let i = 0; i < (opts.chatServers ?? 1); i++) chatServers.push(await listen(t, await buildChatServer(config, appOpts)))
  for (let i = 0; i < (opts.subscribers ?? 1); i++) subscribers.push(await listen(t, await buildSubscriber(config, appOpts)))
  return {
    redis,
    config,
    chatServers,
    subscribers,
    async joinVisitor(name, on = chatServers[0]!) {
      const res = await fetch(`${on.http}/user/join/${encodeURIComponent(name)}`)
      if (res.status !== 200) throw new Error(`join failed: ${res.status} ${await res.text()}`)
      return (await res.json()) as { userId: string; username: string; chatId: string }
    },
    async socket(url, pong) {
      const socket = await TestSocket.open(url, { pong: pong === undefined ? 'pong:user' : pong })
      t.teardown(() => socket.close())
      return socket
    },
  }
}
