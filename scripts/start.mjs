#!/usr/bin/env node
// `npm start`: both services in one terminal. Uses REDIS_URL when set; else
// the Redis at 127.0.0.1:6379 if one answers; else a private redis-server
// from PATH for this run only (nothing persisted, stopped on exit).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createConnection, createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const say = (msg) => process.stderr.write(`[switchboard] ${msg}\n`)

function redisAnswers(host, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port })
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH')))
  })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function privateRedis() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  await new Promise((resolve, reject) => {
    child.once('error', (err) => {
      if (err.code === 'ENOENT') {
        say('No Redis answers at 127.0.0.1:6379 and there is no redis-server on PATH.')
        say('Install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),')
        say('or run one with Docker (docker run -p 6379:6379 redis:7), or set REDIS_URL=redis://host:port.')
        process.exit(1)
      }
      reject(err)
    })
    const deadline = Date.now() + 10_000
    const poll = async () => {
      if (await redisAnswers('127.0.0.1', port)) return resolve()
      if (child.exitCode !== null) return reject(new Error(`redis-server exited with ${child.exitCode}`))
      if (Date.now() > deadline) return reject(new Error('redis-server did not start within 10 s'))
      setTimeout(poll, 50)
    }
    poll()
  })
  say(`Started a private redis-server on 127.0.0.1:${port} for this run (nothing is persisted; it stops with npm start).`)
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

let redis = null
const env = { ...process.env }
if (!env.REDIS_URL) {
  if (await redisAnswers('127.0.0.1', 6379)) {
    say('Using the Redis at redis://127.0.0.1:6379 (set REDIS_URL to use another).')
  } else {
    redis = await privateRedis()
    env.REDIS_URL = redis.url
  }
}

// Secure by default, easy locally: without a configured key, this start makes
// a random secret (shared by both services) and prints a console link that
// carries a token, as Jupyter prints its token URL.
let consoleLink = null
const host = env.HOST || '127.0.0.1'
const browserHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
const subscriberUrl = `http://${browserHost}:${env.SUBSCRIBER_PORT || 9001}`
if (env.AGENT_AUTH !== 'off' && !env.AGENT_JWT_SECRET && !env.AGENT_JWT_PUBLIC_KEY) {
  env.AGENT_JWT_SECRET = randomBytes(32).toString('base64url')
  const { signAgentToken } = await import('@switchboard/server-kit')
  const token = await signAgentToken(env.AGENT_JWT_SECRET, { id: 'agent', name: 'Agent', ttlSeconds: 12 * 3600 })
  consoleLink = `${subscriberUrl}/?token=${token}`
}

const services = ['chat-server', 'subscriber'].map((name) => {
  const child = spawn(process.execPath, [join(root, 'services', name, 'dist', 'server.js')], { env, stdio: 'inherit' })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); stopping everything.`)
      stop(code ?? 1)
    }
  })
  return child
})
say(`Visitor page: http://${browserHost}:${env.CHAT_SERVER_PORT || 9000}/   Agent console: ${subscriberUrl}/   Ctrl+C stops both.`)
if (consoleLink) {
  say('No AGENT_JWT_SECRET set: this start made a random one. Open the agent console with this link (valid 12 h, until restart):')
  process.stderr.write(`\n    ${consoleLink}\n\n`)
  say('Set AGENT_JWT_SECRET (32+ characters) to keep tokens across restarts; then `npm run agent-token -- --name <you>` makes more.')
} else if (env.AGENT_AUTH !== 'off' && env.AGENT_JWT_SECRET) {
  say('Agent tokens: AGENT_JWT_SECRET=… npm run agent-token -- --name <you>, then open the console with ?token=<token>.')
}

let stopping = false
function stop(code = 0) {
  if (stopping) return
  stopping = true
  let left = services.filter((c) => c.exitCode === null && c.signalCode === null).length
  const finish = () => {
    redis?.stop()
    process.exit(code)
  }
  if (left === 0) return finish()
  for (const child of services) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    child.once('exit', () => --left === 0 && finish())
    child.kill('SIGTERM')
  }
  setTimeout(finish, 10_000).unref()
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))
