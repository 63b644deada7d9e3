import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { defineScripts } from './scripts.js'

export interface RedisLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

/**
 * The two connections a service needs: `commands` fails fast while Redis is
 * unreachable (callers answer STORE_UNAVAILABLE instead of hanging, and no
 * write is replayed twice after a reconnect); `subscriber` is for pub/sub
 * only and re-subscribes by itself when Redis comes back.
 */
export interface RedisConnections {
  commands: Redis
  subscriber: Redis
  close(): Promise<void>
}

/** Milliseconds a command may take before it fails. @default 2000 */
const COMMAND_TIMEOUT_MS = 2000

/** Where Redis is: one server's URL, or some nodes of a Redis Cluster (as `redis(s)://` URLs). */
export type RedisTarget = string | { readonly clusterNodes: readonly string[] }

export interface ConnectRedisOptions {
  /**
   * Called with each connection commands are sent over: the command client
   * of one server, or each node's connection of a cluster client as it
   * appears. server-kit passes its `coalesceWrites` here (domain knows no
   * private ioredis APIs). @default none
   */
  onCommandConnection?(client: Redis): void
}

export function connectRedis(target: RedisTarget, log: RedisLogger, options: ConnectRedisOptions = {}): RedisConnections {
  const shared: RedisOptions = {
    // Reconnect forever, backing off to at most 2 s between attempts.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
  }
  const commandOptions: RedisOptions = {
    ...shared,
    connectionName: 'switchboard:commands',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
  }
  const subscriberOptions: RedisOptions = { ...shared, connectionName: 'switchboard:subscriber' }
  let commands: Redis
  let subscriber: Redis
  if (typeof target === 'string') {
    commands = new Redis(target, commandOptions)
    subscriber = new Redis(target, subscriberOptions)
  } else {
    // Every key shares one hash tag (keys.ts), so every command and script goes to one node; the
    // cluster client finds it and follows a failover. It has the same commands as a client of one server.
    commands = clusterClient(target.clusterNodes, commandOptions, { enableOfflineQueue: false }) as unknown as Redis
    subscriber = clusterClient(target.clusterNodes, subscriberOptions, {}) as unknown as Redis
  }
  defineScripts(commands)
  const onCommandConnection = options.onCommandConnection
  if (onCommandConnection !== undefined) {
    if (commands instanceof Redis) onCommandConnection(commands)
    // A cluster client sends each command through the connection of the node that serves it.
    else (commands as unknown as Cluster).on('+node', (node: Redis) => onCommandConnection(node))
  }

  for (const [role, client] of [['commands', commands], ['subscriber', subscriber]] as const) {
    let down = false
    client.on('error', (err: Error) => {
      if (!down) log.warn({ role, err: err.message }, 'redis connection error')
      down = true
    })
    client.on('ready', () => {
      if (down) log.info({ role }, 'redis connection restored')
      down = false
    })
  }

  return {
    commands,
    subscriber,
    async close() {
      // QUIT only over a live connection: queued behind a reconnect it would wait for Redis.
      await Promise.allSettled(
        [commands, subscriber].map((client) => (client.status === 'ready' ? client.quit() : Promise.resolve(client.disconnect()))),
      )
      commands.disconnect()
      subscriber.disconnect()
    },
  }
}

function clusterClient(nodes: readonly string[], nodeOptions: RedisOptions, options: ClusterOptions): Cluster {
  const urls = nodes.map((n) => new URL(n))
  const first = urls[0]!
  const { retryStrategy, ...perNode } = nodeOptions
  return new Cluster(
    urls.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
    {
      ...options,
      clusterRetryStrategy: (times) => (retryStrategy ? (retryStrategy(times) ?? null) : null),
      redisOptions: {
        ...perNode,
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    },
  )
}

/** Resolves when the client is ready, or after `timeoutMs` (then the service runs degraded until Redis answers). */
export function waitUntilReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      resolve(false)
    }, timeoutMs)
    const onReady = () => {
      clearTimeout(timer)
      resolve(true)
    }
    client.once('ready', onReady)
  })
}

/** True when the error means Redis could not be reached (as opposed to a bug). */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|Command timed out|ETIMEDOUT|EPIPE|enableOfflineQueue|MaxRetriesPerRequest|LOADING/i.test(
    err.message,
  )
}
