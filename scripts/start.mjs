#!/usr/bin/env node
// `npm start`: both services in one terminal. Redis: REDIS_URL (or
// REDIS_CLUSTER_NODES) when set; else a private redis-server from PATH with
// its append-only file in the data directory, so a restart keeps live chats;
// only without a redis-server binary, the Redis at 127.0.0.1:6379. Never a
// Redis that merely happens to answer on 6379: it may be someone else's.
import { spawn } from 'node:child_process'
import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { delimiter, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dataDir, ensureDataDir, keptAgentSecret, agentSecretFile } from './data-dir.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const say = (msg) => process.stderr.write(`[switchboard] ${msg}\n`)
const { redactUrl, signAgentToken } = await import('@switchboard/server-kit')

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

/** The first executable `name` on PATH, or null. */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return null
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}
const readInt = (file) => {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isSafeInteger(n) && n > 0 ? n : null
  } catch {
    return null
  }
}

/**
 * One `npm start` per data directory: a second one would run a second
 * redis-server on the same append-only file.
 */
function lockDataDir(dir) {
  const file = join(dir, 'npm-start.pid')
  const holder = readInt(file)
  if (holder !== null && holder !== process.pid && alive(holder)) {
    say(`Another npm start (pid ${holder}) is using ${dir}. Stop it first, or give this one its own SWITCHBOARD_DATA_DIR`)
    say(`(if pid ${holder} is not an npm start, delete ${file}).`)
    process.exit(1)
  }
  writeFileSync(file, `${process.pid}\n`)
  process.on('exit', () => rmSync(file, { force: true }))
}

/**
 * A redis-server of our own on a free port, data in `dir`: AOF on (fsynced
 * every second, and in full on SIGTERM), no RDB snapshots. Started in its own
 * process group so that Ctrl+C reaches the services first and Redis stays up
 * while they close; stopped after them. One left running by a start that was
 * killed is taken over rather than doubled.
 */
async function privateRedis(binary, dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const pidFile = join(dir, 'redis.pid')
  const portFile = join(dir, 'redis.port')
  const leftPid = readInt(pidFile)
  const leftPort = readInt(portFile)
  if (leftPid !== null && leftPort !== null && alive(leftPid) && (await redisAnswers('127.0.0.1', leftPort))) {
    say(`Redis: taking over the private redis-server an earlier npm start left running (pid ${leftPid}, redis://127.0.0.1:${leftPort}), data in ${dir}.`)
    let stopped = false
    process.on('exit', () => stopped || stopPidNow(leftPid))
    return {
      url: `redis://127.0.0.1:${leftPort}`,
      stop: () => {
        stopped = true
        return stopPid(leftPid)
      },
    }
  }
  let lastFailure = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--pidfile', 'redis.pid', '--logfile', 'redis.log'],
      { cwd: dir, detached: true, stdio: 'ignore' },
    )
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)))
    const started = await new Promise((resolve, reject) => {
      child.once('error', reject)
      void exited.then((how) => resolve(`exited (${how})`))
      // Loading a long append-only file answers -LOADING meanwhile: wait for PONG.
      const deadline = Date.now() + 60_000
      const poll = async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        if (await redisAnswers('127.0.0.1', port)) return resolve(true)
        if (Date.now() > deadline) {
          child.kill('SIGKILL')
          return resolve('did not answer within 60 s')
        }
        setTimeout(poll, 50)
      }
      void poll()
    })
    if (started === true) {
      writeFileSync(portFile, `${port}\n`)
      // However this process ends (an error before the services run, too), its Redis does not outlive it.
      process.on('exit', () => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM'))
      say(`Redis: started a private redis-server on redis://127.0.0.1:${port} (pid ${child.pid}), append-only file in ${dir}; its log is ${join(dir, 'redis.log')}.`)
      return {
        url: `redis://127.0.0.1:${port}`,
        stop: () => {
          if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
          child.kill('SIGTERM')
          return Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())])
        },
      }
    }
    lastFailure = started
  }
  let tail = ''
  try {
    tail = readFileSync(join(dir, 'redis.log'), 'utf8').trimEnd().split('\n').slice(-8).join('\n')
  } catch {}
  say(`Redis: the private redis-server ${lastFailure}. The end of ${join(dir, 'redis.log')}:\n${tail}`)
  process.exit(1)
}

const stopPidNow = (pid) => {
  try {
    process.kill(pid, 'SIGTERM')
    return true
  } catch {
    return false
  }
}

/** SIGTERM to a process that is not our child, then wait (at most 10 s) until it is gone. */
async function stopPid(pid) {
  if (!stopPidNow(pid)) return
  for (let waited = 0; waited < 10_000 && alive(pid); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
}

const env = { ...process.env }
const data = ensureDataDir(dataDir(env))
lockDataDir(data)
const shown = relative(process.cwd(), data).startsWith('..') ? data : relative(process.cwd(), data) || '.'

let redis = null
if (env.REDIS_CLUSTER_NODES) {
  say(`Redis: the cluster in REDIS_CLUSTER_NODES (${env.REDIS_CLUSTER_NODES.split(',').map((n) => redactUrl(n.includes('://') ? n.trim() : `redis://${n.trim()}`)).join(', ')}).`)
} else if (env.REDIS_URL) {
  say(`Redis: ${redactUrl(env.REDIS_URL)} (from REDIS_URL).`)
} else {
  const binary = onPath('redis-server')
  if (binary !== null) {
    redis = await privateRedis(binary, join(data, 'redis'))
    env.REDIS_URL = redis.url
  } else if (await redisAnswers('127.0.0.1', 6379)) {
    say('Redis: there is no redis-server on PATH, so using the Redis that answers at redis://127.0.0.1:6379.')
    say('It may be shared with other programs; install redis-server for a private one, or set REDIS_URL.')
    env.REDIS_URL = 'redis://127.0.0.1:6379'
  } else {
    say('There is no redis-server on PATH and no Redis answers at 127.0.0.1:6379.')
    say('Install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),')
    say('or run one with Docker (docker run -p 6379:6379 redis:7), or set REDIS_URL=redis://host:port.')
    process.exit(1)
  }
}

// Secure by default, easy locally: without a configured key, the secret kept
// in the data directory (made on the first run) signs agent tokens, and this
// start prints a console link carrying one, as Jupyter prints its token URL.
// `npm run agent-token` reads the same file, and tokens survive restarts.
let consoleLink = null
let madeSecret = false
const host = env.HOST || '127.0.0.1'
const browserHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
const subscriberUrl = `http://${browserHost}:${env.SUBSCRIBER_PORT || 9001}`
if (env.AGENT_AUTH !== 'off' && !env.AGENT_JWT_SECRET && !env.AGENT_JWT_PUBLIC_KEY) {
  let kept
  try {
    kept = keptAgentSecret(data)
  } catch (err) {
    say(err.message)
    process.exit(1)
  }
  madeSecret = kept.created
  env.AGENT_JWT_SECRET = kept.secret
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
  say(
    `No AGENT_JWT_SECRET set: agent tokens are signed with the secret ${madeSecret ? 'just made and kept' : 'kept'} in ${agentSecretFile(shown)}, so they survive restarts. Open the agent console as "Agent" with this link (valid 12 h):`,
  )
  process.stderr.write(`\n    ${consoleLink}\n\n`)
  say('A token for each colleague: npm run agent-token -- --name Vika (then open the console with ?token=<token>).')
} else if (env.AGENT_AUTH !== 'off' && env.AGENT_JWT_SECRET) {
  say('Agent tokens: AGENT_JWT_SECRET=… npm run agent-token -- --name <you>, then open the console with ?token=<token>.')
}

let stopping = false
function stop(code = 0) {
  if (stopping) return
  stopping = true
  let left = services.filter((c) => c.exitCode === null && c.signalCode === null).length
  let finishing = false
  // Redis last: the services close their sockets and connections against a live one.
  const finish = async () => {
    if (finishing) return
    finishing = true
    await redis?.stop()
    process.exit(code)
  }
  if (left === 0) return void finish()
  for (const child of services) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    child.once('exit', () => --left === 0 && void finish())
    child.kill('SIGTERM')
  }
  setTimeout(finish, 10_000).unref()
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(0))
