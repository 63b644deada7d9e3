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
  /** Interface both services listen on. @default 127.0.0.1 */
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  /** ChatServer's port. @default 9000 */
  CHAT_SERVER_PORT: Type.Integer({ ...Port, default: 9000 }),
  /** Subscriber's port. @default 9001 */
  SUBSCRIBER_PORT: Type.Integer({ ...Port, default: 9001 }),
  /** How often the server sends `ping`. @default 1000 */
  HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
  /** A socket that sends nothing (not even `pong`) this long is closed with 4408. @default 120 */
  IDLE_TIMEOUT_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 86_400, default: 120 }),
  /** A chat with an agent and no ChatMessage this long expires. @default 120 */
  CHAT_TTL_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 30 * 86_400, default: 120 }),
  /** Largest frame accepted; a bigger one closes the socket with 1009. @default 65536 */
  MAX_FRAME_BYTES: Type.Integer({ minimum: 256, maximum: 16 * 1024 * 1024, default: 65_536 }),
  /** pino level. @default info */
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
})

export interface Config {
  readonly redisUrl: string
  readonly host: string
  readonly chatServerPort: number
  readonly subscriberPort: number
  readonly heartbeatIntervalMs: number
  readonly idleTimeoutSeconds: number
  readonly chatTtlSeconds: number
  readonly maxFrameBytes: number
  readonly logLevel: Static<typeof EnvSchema>['LOG_LEVEL']
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
  const value = Value.Default(EnvSchema, typed)
  if (!Value.Check(EnvSchema, value)) {
    const problems = [...Value.Errors(EnvSchema, value)].map((e) => {
      const key = e.path.slice(1)
      return `${key}=${JSON.stringify(raw[key])}: ${e.message}`
    })
    throw new ConfigError(problems)
  }
  return Object.freeze(fromEnv(value))
}

function fromEnv(env: Static<typeof EnvSchema>): Config {
  return {
    redisUrl: env.REDIS_URL,
    host: env.HOST,
    chatServerPort: env.CHAT_SERVER_PORT,
    subscriberPort: env.SUBSCRIBER_PORT,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    idleTimeoutSeconds: env.IDLE_TIMEOUT_SECONDS,
    chatTtlSeconds: env.CHAT_TTL_SECONDS,
    maxFrameBytes: env.MAX_FRAME_BYTES,
    logLevel: env.LOG_LEVEL,
  }
}
