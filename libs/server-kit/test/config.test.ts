import t from 'tap'
import { ConfigError, loadConfig, type Config } from '@switchboard/server-kit'

const DEFAULTS: Config = {
  redisUrl: 'redis://127.0.0.1:6379',
  host: '127.0.0.1',
  chatServerPort: 9000,
  subscriberPort: 9001,
  heartbeatIntervalMs: 1000,
  idleTimeoutSeconds: 120,
  chatTtlSeconds: 120,
  chatKeyGraceMs: 60_000,
  maxFrameBytes: 65536,
  maxBufferedBytes: 4194304,
  chatExpiryWarningSeconds: 30,
  typingTimeoutMs: 5000,
  queuePositionIntervalMs: 1000,
  queueLeaveGraceMs: 20_000,
  logLevel: 'info',
  agentAuth: { mode: 'on' },
  allowedOrigins: [
    'http://localhost:9000',
    'http://localhost:9001',
    'http://127.0.0.1:9000',
    'http://127.0.0.1:9001',
    'http://[::1]:9000',
    'http://[::1]:9001',
  ],
  limits: {
    maxMessageLength: 4000,
    maxSocketsPerChat: 8,
    joinTimeoutMs: 10_000,
    maxSocketsPerIp: 100,
    ratePerSecond: 10,
    rateBurst: 30,
    rateCloseAfter: 100,
    joinsPerMinute: 20,
  },
  trustProxy: false,
  maxChatsPerAgent: 5,
  agentOfflineAfterMs: 10_000,
  agentForgetAfterMs: 86_400_000,
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

type Asserts = Pick<typeof t, 'type' | 'fail'>

/** The ConfigError loadConfig throws for `env`, or fails the test. */
function configError(t: Asserts, env: NodeJS.ProcessEnv): ConfigError | undefined {
  try {
    loadConfig(env)
  } catch (err) {
    t.type(err, ConfigError)
    return err as ConfigError
  }
  t.fail(`loadConfig(${JSON.stringify(env)}) did not throw`)
  return undefined
}

t.test('defaults, with nothing set', async (t) => {
  t.strictSame(loadConfig({}), DEFAULTS)
})

t.test('an empty variable means the default', async (t) => {
  const env = Object.fromEntries(
    ['REDIS_URL', 'HOST', 'CHAT_SERVER_PORT', 'SUBSCRIBER_PORT', 'HEARTBEAT_INTERVAL_MS', 'IDLE_TIMEOUT_SECONDS', 'CHAT_TTL_SECONDS', 'MAX_FRAME_BYTES', 'LOG_LEVEL'].map(
      (k) => [k, ''],
    ),
  )
  t.strictSame(loadConfig(env), DEFAULTS)
})

t.test('variables it does not know are ignored', async (t) => {
  t.strictSame(loadConfig({ PATH: '/usr/bin', PORT: 'x', NODE_ENV: 'production', chat_server_port: 'nope' }), DEFAULTS)
})

t.test('overrides are read, and numbers converted to numbers', async (t) => {
  const config = loadConfig({
    REDIS_URL: 'rediss://user:secret@redis.example:6380/2',
    HOST: '0.0.0.0',
    CHAT_SERVER_PORT: '9100',
    SUBSCRIBER_PORT: '0',
    HEARTBEAT_INTERVAL_MS: '50',
    IDLE_TIMEOUT_SECONDS: '0.3',
    CHAT_TTL_SECONDS: '1.5',
    MAX_FRAME_BYTES: '1024',
    LOG_LEVEL: 'silent',
  })
  t.match(config, {
    redisUrl: 'rediss://user:secret@redis.example:6380/2',
    host: '0.0.0.0',
    chatServerPort: 9100,
    subscriberPort: 0,
    heartbeatIntervalMs: 50,
    idleTimeoutSeconds: 0.3,
    chatTtlSeconds: 1.5,
    maxFrameBytes: 1024,
    logLevel: 'silent',
  })
  for (const key of ['chatServerPort', 'subscriberPort', 'heartbeatIntervalMs', 'idleTimeoutSeconds', 'chatTtlSeconds', 'maxFrameBytes'] as const) {
    t.type(config[key], 'number', `${key} is a number`)
  }
  // every level pino knows
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level)
  }
  // the edges of the ranges are allowed
  t.equal(loadConfig({ CHAT_SERVER_PORT: '65535' }).chatServerPort, 65535)
  t.equal(loadConfig({ HEARTBEAT_INTERVAL_MS: '10' }).heartbeatIntervalMs, 10)
  t.equal(loadConfig({ MAX_FRAME_BYTES: '256' }).maxFrameBytes, 256)
  t.equal(loadConfig({ IDLE_TIMEOUT_SECONDS: '86400' }).idleTimeoutSeconds, 86400)
  t.equal(loadConfig({ JOIN_TIMEOUT_SECONDS: '0.5' }).limits.joinTimeoutMs, 500)
  t.throws(() => loadConfig({ JOIN_TIMEOUT_SECONDS: '0' }), /JOIN_TIMEOUT_SECONDS/, 'a join timeout of 0 is refused')
})

t.test('the result is frozen', async (t) => {
  const config = loadConfig({})
  t.ok(Object.isFrozen(config))
  t.throws(() => {
    ;(config as { chatServerPort: number }).chatServerPort = 1
  }, TypeError)
  t.equal(config.chatServerPort, 9000)
  t.not(loadConfig({}), config, 'each call builds its own object')
})

t.test('it reads the env it is given, not process.env', async (t) => {
  const before = process.env.CHAT_SERVER_PORT
  process.env.CHAT_SERVER_PORT = '1234'
  t.teardown(() => {
    if (before === undefined) delete process.env.CHAT_SERVER_PORT
    else process.env.CHAT_SERVER_PORT = before
  })
  t.equal(loadConfig({}).chatServerPort, 9000)
  t.equal(loadConfig().chatServerPort, 1234, 'process.env is the default source')
})

t.test('one invalid value → ConfigError naming it', async (t) => {
  const cases: [string, string][] = [
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['REDIS_URL', '127.0.0.1:6379'],
    ['CHAT_SERVER_PORT', 'abc'],
    ['CHAT_SERVER_PORT', '65536'],
    ['CHAT_SERVER_PORT', '-1'],
    ['SUBSCRIBER_PORT', '9OO1'],
    ['HEARTBEAT_INTERVAL_MS', '5'],
    ['HEARTBEAT_INTERVAL_MS', '600001'],
    ['HEARTBEAT_INTERVAL_MS', 'fast'],
    ['IDLE_TIMEOUT_SECONDS', '0'],
    ['IDLE_TIMEOUT_SECONDS', '-3'],
    ['IDLE_TIMEOUT_SECONDS', 'forever'],
    ['CHAT_TTL_SECONDS', '0'],
    ['CHAT_TTL_SECONDS', String(30 * 86_400 + 1)],
    ['MAX_FRAME_BYTES', '100'],
    ['MAX_FRAME_BYTES', '64k'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'INFO'],
  ]
  for (const [name, value] of cases) {
    const err = configError(t, { [name]: value })
    t.equal(err?.name, 'ConfigError')
    t.match(err?.message, new RegExp(`^Invalid configuration:`), `${name}=${value}: message starts with the summary`)
    // the value is shown as set
    const shown = new RegExp(`\\n  ${name}="${escape(value)}": `)
    t.match(err?.message, shown, `${name}=${value}: named with its value`)
    const others = ['REDIS_URL', 'HOST', 'CHAT_SERVER_PORT', 'SUBSCRIBER_PORT', 'HEARTBEAT_INTERVAL_MS', 'IDLE_TIMEOUT_SECONDS', 'CHAT_TTL_SECONDS', 'MAX_FRAME_BYTES', 'LOG_LEVEL'].filter(
      (k) => k !== name,
    )
    for (const other of others) t.notMatch(err?.message, new RegExp(`\\b${other}=`), `${name}=${value}: ${other} is not blamed`)
  }
})

t.test('several invalid values → one ConfigError naming each of them', async (t) => {
  const err = configError(t, {
    REDIS_URL: 'mysql://db',
    CHAT_SERVER_PORT: 'ninety',
    HEARTBEAT_INTERVAL_MS: '1',
    IDLE_TIMEOUT_SECONDS: '0',
    MAX_FRAME_BYTES: '10',
    LOG_LEVEL: 'chatty',
    // valid ones in between
    HOST: '::1',
    SUBSCRIBER_PORT: '9002',
    CHAT_TTL_SECONDS: '60',
  })
  for (const bad of ['REDIS_URL=', 'CHAT_SERVER_PORT=', 'HEARTBEAT_INTERVAL_MS=', 'IDLE_TIMEOUT_SECONDS=', 'MAX_FRAME_BYTES=', 'LOG_LEVEL=']) {
    t.match(err?.message, bad, `names ${bad}`)
  }
  for (const good of ['HOST=', 'SUBSCRIBER_PORT=', 'CHAT_TTL_SECONDS=']) t.notMatch(err?.message, good, `does not blame ${good}`)
  // one problem per line
  const lines = (err?.message ?? '').split('\n').slice(1)
  t.ok(lines.length >= 6, 'a line per problem')
  for (const line of lines) t.match(line, /^ {2}[A-Z_]+=/, `problem line ${JSON.stringify(line)}`)
})


t.test('integer settings: a fraction or a word is rejected, not truncated; a whole number is read whole', async (t) => {
  for (const [name, value] of [
    ['CHAT_SERVER_PORT', '80.5'],
    ['CHAT_SERVER_PORT', 'true'],
    ['HEARTBEAT_INTERVAL_MS', '99.9'],
  ] as const) {
    let result: unknown
    try {
      result = loadConfig({ [name]: value })
    } catch (err) {
      result = err
    }
    t.type(result, ConfigError, `${name}=${value} is a ConfigError`)
  }
  let port: unknown
  try {
    port = loadConfig({ SUBSCRIBER_PORT: '1e3' }).subscriberPort
  } catch (err) {
    port = err
  }
  t.equal(port, 1000, 'SUBSCRIBER_PORT=1e3 is 1000')
  // plain whole numbers, and any number for the non-integer settings
  t.equal(loadConfig({ CHAT_SERVER_PORT: ' 8080 ' }).chatServerPort, 8080)
  t.equal(loadConfig({ CHAT_TTL_SECONDS: '1e3' }).chatTtlSeconds, 1000)
  t.equal(loadConfig({ IDLE_TIMEOUT_SECONDS: '2.5' }).idleTimeoutSeconds, 2.5)
})

t.test('the error shows each bad value as it was set', async (t) => {
  const err = configError(t, { MAX_FRAME_BYTES: '1e2', HEARTBEAT_INTERVAL_MS: '5.5', CHAT_SERVER_PORT: '70000' })
  for (const shown of ['MAX_FRAME_BYTES="1e2"', 'HEARTBEAT_INTERVAL_MS="5.5"', 'CHAT_SERVER_PORT="70000"']) {
    t.match(err?.message, shown, shown)
  }
  // whatever the form, each is named
  for (const name of ['MAX_FRAME_BYTES=', 'HEARTBEAT_INTERVAL_MS=', 'CHAT_SERVER_PORT=']) t.match(err?.message, name)
})

t.test('security settings: auth mode and keys, origins, limits', async (t) => {
  t.same(loadConfig({ AGENT_AUTH: 'off' }).agentAuth, { mode: 'off' })
  const secret = 'x'.repeat(32)
  t.same(loadConfig({ AGENT_JWT_SECRET: secret }).agentAuth, { mode: 'on', secret })
  const pem = '-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----'
  t.same(loadConfig({ AGENT_JWT_PUBLIC_KEY: pem }).agentAuth, {
    mode: 'on',
    publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----',
  }, 'literal \\n in the variable stands for a newline')
  const both = configError(t, { AGENT_JWT_SECRET: secret, AGENT_JWT_PUBLIC_KEY: pem })
  t.match(both?.message, /set one, not both/)
  const short = configError(t, { AGENT_JWT_SECRET: 'short-secret' })
  t.match(short?.message, /AGENT_JWT_SECRET=<hidden>/, 'a bad secret is named but not shown')
  t.notMatch(short?.message, /short-secret/)
  t.match(configError(t, { AGENT_AUTH: 'maybe' })?.message, /AGENT_AUTH=/)

  t.same(loadConfig({ ALLOWED_ORIGINS: 'https://shop.example, https://help.example/' }).allowedOrigins, ['https://shop.example', 'https://help.example'])
  t.equal(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins, '*')
  t.ok((loadConfig({ HOST: '10.0.0.5', CHAT_SERVER_PORT: '9100' }).allowedOrigins as string[]).includes('http://10.0.0.5:9100'), 'the listen address is allowed by default')
  t.notOk((loadConfig({ HOST: '0.0.0.0' }).allowedOrigins as string[]).some((o) => o.includes('0.0.0.0')), 'a wildcard listen address is not an origin')

  t.match(loadConfig({ MAX_MESSAGE_LENGTH: '10', RATE_LIMIT_PER_SECOND: '2.5', RATE_LIMIT_BURST: '5', JOIN_RATE_LIMIT_PER_MINUTE: '3' }).limits, {
    maxMessageLength: 10,
    ratePerSecond: 2.5,
    rateBurst: 5,
    joinsPerMinute: 3,
  })
  t.match(configError(t, { MAX_SOCKETS_PER_CHAT: '1' })?.message, /MAX_SOCKETS_PER_CHAT="1"/)
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
})

t.test('agent seats and the offline grace period', async (t) => {
  const config = loadConfig({ MAX_CHATS_PER_AGENT: '0', AGENT_OFFLINE_AFTER_SECONDS: '0.25' })
  t.equal(config.maxChatsPerAgent, 0, '0 means no limit')
  t.equal(config.agentOfflineAfterMs, 250)
  t.match(configError(t, { MAX_CHATS_PER_AGENT: '-1' })?.message, /MAX_CHATS_PER_AGENT="-1"/)
  t.match(configError(t, { MAX_CHATS_PER_AGENT: '2.5' })?.message, /MAX_CHATS_PER_AGENT/)
  t.match(configError(t, { AGENT_OFFLINE_AFTER_SECONDS: '0' })?.message, /AGENT_OFFLINE_AFTER_SECONDS="0"/)
})

t.test('REDIS_CLUSTER_NODES: host:port or redis(s):// URLs, comma-separated; anything else is an error', async (t) => {
  t.equal(loadConfig({}).redisClusterNodes, undefined, 'unset: one Redis at REDIS_URL')
  t.same(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001' }).redisClusterNodes, ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7001'])
  t.same(loadConfig({ REDIS_CLUSTER_NODES: 'rediss://user:pw@redis-a.internal:6380,redis-b.internal:6380' }).redisClusterNodes, [
    'rediss://user:pw@redis-a.internal:6380',
    'redis://redis-b.internal:6380',
  ])
  t.ok(Object.isFrozen(loadConfig({ REDIS_CLUSTER_NODES: 'a:1' }).redisClusterNodes), 'frozen like the rest')
  for (const bad of ['redis-a', 'a:1,,b:2', 'http://a:1', 'a:port']) {
    t.match(configError(t, { REDIS_CLUSTER_NODES: bad })?.message, /REDIS_CLUSTER_NODES/, `${JSON.stringify(bad)} is refused`)
  }
})
