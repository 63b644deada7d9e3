import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

const Port = Type.Integer({ minimum: 0, maximum: 65535 })

/**
 * Every setting, read from the environment once at start. Each default is
 * documented here and in the README's configuration table.
 */
const EnvSchema = Type.Object({
  /** Redis for all shared state and pub/sub. @default redis://127.0.0.1:6379 */
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  /** A Redis Cluster instead of REDIS_URL: some of its nodes, comma-separated, each `host:port` or `redis(s)://[user:password@]host:port`. Unset: not a cluster. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^\\s*(rediss?://([^\\s,@/]+@)?)?[^\\s,/:@]+:\\d+\\s*(,\\s*(rediss?://([^\\s,@/]+@)?)?[^\\s,/:@]+:\\d+\\s*)*$' })),
  /** Interface both services listen on. @default 127.0.0.1 */
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  /** ChatServer's port. @default 9000 */
  CHAT_SERVER_PORT: Type.Integer({ ...Port, default: 9000 }),
  /** Subscriber's port. @default 9001 */
  SUBSCRIBER_PORT: Type.Integer({ ...Port, default: 9001 }),
  /** Where browsers reach ChatServer (the agent console connects there), e.g. https://chat.example.com. Unset: the host the console was loaded from, port CHAT_SERVER_PORT. */
  CHAT_SERVER_PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' })),
  /** How often the server sends `ping`. @default 1000 */
  HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
  /** A socket that sends nothing (not even `pong`) this long is closed with 4408. @default 120 */
  IDLE_TIMEOUT_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 86_400, default: 120 }),
  /** A chat with an agent and no ChatMessage this long expires. @default 120 */
  CHAT_TTL_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 30 * 86_400, default: 120 }),
  /** How long a chat's Redis keys outlive its deadline: a safety net that lets a late sweep still announce the expiry, and removes the keys if no instance sweeps. @default 60 */
  CHAT_KEY_GRACE_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 86_400, default: 60 }),
  /** v2 sockets get ChatExpiring this long before an inactive chat expires (at most half of CHAT_TTL_SECONDS). @default 30 */
  CHAT_EXPIRY_WARNING_SECONDS: Type.Number({ minimum: 0, maximum: 86_400, default: 30 }),
  /** A v2 Typing start without a stop ends by itself after this long. @default 5000 */
  TYPING_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 5000 }),
  /** Waiting v2 visitors' QueuePosition is recomputed at most this often, however busy the queue. @default 1000 */
  QUEUE_POSITION_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
  /** A waiting visitor with no socket left on any instance leaves the queue this long after (a reload keeps the place). @default 20 */
  QUEUE_LEAVE_GRACE_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 30 * 86_400, default: 20 }),
  /** Largest frame accepted; a bigger one closes the socket with 1009. @default 65536 */
  MAX_FRAME_BYTES: Type.Integer({ minimum: 256, maximum: 16 * 1024 * 1024, default: 65_536 }),
  /** Bytes a socket may have waiting to be sent (a client that does not read); past it the socket is closed with 1013. @default 4194304 */
  MAX_BUFFERED_BYTES: Type.Integer({ minimum: 1024, maximum: 1024 * 1024 * 1024, default: 4 * 1024 * 1024 }),
  /** pino level. @default info */
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Agents must present a JWT; `off` only for local demos and unmodified seed-004 clients. @default on */
  AGENT_AUTH: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  /** HS256 secret agent tokens are signed with (at least 32 characters). Unset: a random one per start. */
  AGENT_JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** PEM public key (RSA → RS256, P-256 EC → ES256) for tokens minted elsewhere; `\n` may stand for newlines. */
  AGENT_JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----' })),
  /** Origins allowed to open sockets and call /user/join from a browser, comma-separated, exact; `*` allows any. Unset: the two services' own origins on localhost. */
  ALLOWED_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  /** Longest ChatMessage content, in characters. @default 4000 */
  MAX_MESSAGE_LENGTH: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 4000 }),
  /** Sockets one chat may have open on one instance. @default 8 */
  MAX_SOCKETS_PER_CHAT: Type.Integer({ minimum: 2, maximum: 10_000, default: 8 }),
  /** A chat socket that has not joined its chat (a Join answered without an error) this long after opening is closed with 4408 JOIN_TIMEOUT. @default 10 */
  JOIN_TIMEOUT_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 10 }),
  /** Sockets one client IP may have open on one instance. @default 100 */
  MAX_SOCKETS_PER_IP: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
  /** Frames per second a socket may send, sustained (token bucket refill). @default 10 */
  RATE_LIMIT_PER_SECOND: Type.Number({ exclusiveMinimum: 0, default: 10 }),
  /** Frames a socket may send in a burst (token bucket size). @default 30 */
  RATE_LIMIT_BURST: Type.Integer({ minimum: 1, default: 30 }),
  /** Frames refused in a row before the socket is closed with 1008. @default 100 */
  RATE_LIMIT_CLOSE_AFTER: Type.Integer({ minimum: 1, default: 100 }),
  /** `GET /user/join` calls per client IP per minute, across all instances. @default 20 */
  JOIN_RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 20 }),
  /** Chats an agent may hold at once (claimed or joined, not ended); 0 for no limit. @default 5 */
  MAX_CHATS_PER_AGENT: Type.Integer({ minimum: 0, maximum: 10_000, default: 5 }),
  /** An agent whose last socket closed goes offline this long after (a reload is not a logout). @default 10 */
  AGENT_OFFLINE_AFTER_SECONDS: Type.Number({ minimum: 0.05, maximum: 3600, default: 10 }),
  /** An agent's record (name, status) is deleted this long after they were last online, so ids that never come back do not pile up in Redis. @default 86400 */
  AGENT_FORGET_AFTER_SECONDS: Type.Number({ minimum: 1, maximum: 365 * 86_400, default: 86_400 }),
  /** Trust X-Forwarded-For from a reverse proxy for the client IP. @default false */
  TRUST_PROXY: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
})

/** How agents prove who they are. */
export type AgentAuthConfig =
  | { readonly mode: 'off' }
  | { readonly mode: 'on'; readonly secret?: string; readonly publicKeyPem?: string }

/** Abuse limits; each is per socket or per instance as its name says. */
export interface Limits {
  readonly maxMessageLength: number
  readonly maxSocketsPerChat: number
  /** How long a chat socket may stay open without having joined, in ms. */
  readonly joinTimeoutMs: number
  readonly maxSocketsPerIp: number
  readonly ratePerSecond: number
  readonly rateBurst: number
  readonly rateCloseAfter: number
  readonly joinsPerMinute: number
}

export interface Config {
  readonly redisUrl: string
  /** Cluster nodes as `redis(s)://…` URLs; when set, REDIS_URL is not used. */
  readonly redisClusterNodes?: readonly string[]
  readonly host: string
  readonly chatServerPort: number
  readonly subscriberPort: number
  /** ChatServer's origin as browsers reach it (no trailing slash); unset: derived per request by Subscriber. */
  readonly chatServerPublicUrl?: string
  readonly heartbeatIntervalMs: number
  readonly idleTimeoutSeconds: number
  readonly chatTtlSeconds: number
  /** How long a chat's keys outlive its deadline, in ms. */
  readonly chatKeyGraceMs: number
  readonly maxFrameBytes: number
  /** Bytes waiting to be sent on one socket above which it is closed (SLOW_CONSUMER). */
  readonly maxBufferedBytes: number
  readonly chatExpiryWarningSeconds: number
  readonly typingTimeoutMs: number
  /** Least time between two recomputations of the waiting visitors' QueuePosition on one instance, in ms. */
  readonly queuePositionIntervalMs: number
  /** How long a waiting visitor with no socket keeps their place in the queue, in ms. */
  readonly queueLeaveGraceMs: number
  readonly logLevel: Static<typeof EnvSchema>['LOG_LEVEL']
  readonly agentAuth: AgentAuthConfig
  /** Exact origins allowed besides the server's own; `'*'` for any. */
  readonly allowedOrigins: readonly string[] | '*'
  readonly limits: Limits
  readonly trustProxy: boolean
  /** Chats an agent may hold at once; 0: no limit. */
  readonly maxChatsPerAgent: number
  /** How long after their last socket closes an agent goes offline, in ms. */
  readonly agentOfflineAfterMs: number
  /** How long after going offline an agent's record is deleted, in ms. */
  readonly agentForgetAfterMs: number
}

export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

/** Reads, defaults, validates and freezes the configuration. Throws {@link ConfigError} listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // `raw` keeps each value as set, for the error message; `typed` reads
  // numbers whole (no truncation: "80.5" for a port is an error, not 80).
  const raw: Record<string, string> = {}
  const typed: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const value = env[key]
    // An empty variable means "use the default", as in most shells' ${VAR:-default}.
    if (value === undefined || value === '') continue
    raw[key] = value
    const numeric = schema.type === 'integer' || schema.type === 'number'
    typed[key] = numeric && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value
  }
  const value = Value.Default(EnvSchema, typed) as Static<typeof EnvSchema>
  const problems: string[] = []
  if (!Value.Check(EnvSchema, value)) {
    for (const e of Value.Errors(EnvSchema, value)) {
      const key = e.path.slice(1)
      // Never echo a secret back, even a bad one.
      const shown = key === 'AGENT_JWT_SECRET' ? '<hidden>' : JSON.stringify(raw[key])
      problems.push(`${key}=${shown}: ${e.message}`)
    }
  }
  if (value.AGENT_JWT_SECRET !== undefined && value.AGENT_JWT_PUBLIC_KEY !== undefined) {
    problems.push('AGENT_JWT_SECRET and AGENT_JWT_PUBLIC_KEY: set one, not both')
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(fromEnv(value))
}

function fromEnv(env: Static<typeof EnvSchema>): Config {
  return {
    redisUrl: env.REDIS_URL,
    ...(env.REDIS_CLUSTER_NODES !== undefined
      ? {
          redisClusterNodes: Object.freeze(
            env.REDIS_CLUSTER_NODES.split(',')
              .map((n) => n.trim())
              .map((n) => (/^rediss?:\/\//.test(n) ? n : `redis://${n}`)),
          ),
        }
      : {}),
    host: env.HOST,
    chatServerPort: env.CHAT_SERVER_PORT,
    subscriberPort: env.SUBSCRIBER_PORT,
    ...(env.CHAT_SERVER_PUBLIC_URL !== undefined ? { chatServerPublicUrl: env.CHAT_SERVER_PUBLIC_URL.replace(/\/+$/, '') } : {}),
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    idleTimeoutSeconds: env.IDLE_TIMEOUT_SECONDS,
    chatTtlSeconds: env.CHAT_TTL_SECONDS,
    chatKeyGraceMs: Math.round(env.CHAT_KEY_GRACE_SECONDS * 1000),
    maxFrameBytes: env.MAX_FRAME_BYTES,
    maxBufferedBytes: env.MAX_BUFFERED_BYTES,
    chatExpiryWarningSeconds: env.CHAT_EXPIRY_WARNING_SECONDS,
    typingTimeoutMs: env.TYPING_TIMEOUT_MS,
    queuePositionIntervalMs: env.QUEUE_POSITION_INTERVAL_MS,
    queueLeaveGraceMs: Math.round(env.QUEUE_LEAVE_GRACE_SECONDS * 1000),
    logLevel: env.LOG_LEVEL,
    agentAuth: Object.freeze(
      env.AGENT_AUTH === 'off'
        ? { mode: 'off' as const }
        : {
            mode: 'on' as const,
            ...(env.AGENT_JWT_SECRET !== undefined ? { secret: env.AGENT_JWT_SECRET } : {}),
            ...(env.AGENT_JWT_PUBLIC_KEY !== undefined ? { publicKeyPem: env.AGENT_JWT_PUBLIC_KEY.replaceAll('\\n', '\n') } : {}),
          },
    ),
    allowedOrigins: allowedOrigins(env),
    limits: Object.freeze({
      maxMessageLength: env.MAX_MESSAGE_LENGTH,
      maxSocketsPerChat: env.MAX_SOCKETS_PER_CHAT,
      joinTimeoutMs: Math.round(env.JOIN_TIMEOUT_SECONDS * 1000),
      maxSocketsPerIp: env.MAX_SOCKETS_PER_IP,
      ratePerSecond: env.RATE_LIMIT_PER_SECOND,
      rateBurst: env.RATE_LIMIT_BURST,
      rateCloseAfter: env.RATE_LIMIT_CLOSE_AFTER,
      joinsPerMinute: env.JOIN_RATE_LIMIT_PER_MINUTE,
    }),
    trustProxy: env.TRUST_PROXY === 'true',
    maxChatsPerAgent: env.MAX_CHATS_PER_AGENT,
    agentOfflineAfterMs: Math.round(env.AGENT_OFFLINE_AFTER_SECONDS * 1000),
    agentForgetAfterMs: Math.round(env.AGENT_FORGET_AFTER_SECONDS * 1000),
  }
}

/**
 * The default allowlist is what works out of the box and nothing more: the
 * two services' own origins on this machine (so the console on one port can
 * reach ChatServer on the other). Same-origin requests are always allowed.
 */
function allowedOrigins(env: Static<typeof EnvSchema>): readonly string[] | '*' {
  if (env.ALLOWED_ORIGINS !== undefined) {
    const list = env.ALLOWED_ORIGINS.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean)
    return list.includes('*') ? '*' : Object.freeze(list)
  }
  const hosts = new Set(['localhost', '127.0.0.1', '[::1]'])
  if (env.HOST !== '0.0.0.0' && env.HOST !== '::') hosts.add(env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST)
  const origins: string[] = []
  for (const host of hosts) for (const port of [env.CHAT_SERVER_PORT, env.SUBSCRIBER_PORT]) origins.push(`http://${host}:${port}`)
  return Object.freeze(origins)
}
