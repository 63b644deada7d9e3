import { performance } from 'node:perf_hooks'
import type { WebSocket } from 'ws'
import { bareDriver, oursDriver, socketioDriver, type Driver, type ServerKind } from './drivers.js'
import { latencyHistogram, recordMs, summarize, type LatencySummary } from './histogram.js'
import { cpuSeconds, rssBytes, startPeer, startRedis, startService, waitForQuiet, type BenchProcess, type BenchServer } from './procs.js'
import { generatorNotes, runRelay, type MeasuredProcess, type RelayOptions, type RelayResult } from './relay.js'
import { Inbox, mapLimit, openSniffed, openSocket, type Heartbeat, type SniffedSocket } from './sockets.js'

/** Stops what was started, last first, whatever happens. */
class Processes {
  readonly #started: BenchProcess[] = []
  add<T extends BenchProcess>(proc: T): T {
    this.#started.push(proc)
    return proc
  }
  async stopAll(): Promise<void> {
    for (const proc of this.#started.reverse()) await proc.stop()
  }
}

const measured = (role: MeasuredProcess['role'], proc: BenchProcess): MeasuredProcess => ({ role, pid: proc.pid })

/**
 * The relay against one kind of server, on its own fresh processes: Redis
 * (except for the bare relay) and the server, both pinned to the servers'
 * core. `instances: 2` runs two ChatServers on one Redis, the visitor on
 * the first and the agent on the second (ours only).
 */
export async function relayScenario(kind: ServerKind, opts: RelayOptions & { pin: boolean; instances?: number; oursRoot?: string }): Promise<RelayResult> {
  const procs = new Processes()
  try {
    const instances = opts.instances ?? 1
    if (kind === 'bare') {
      const server = procs.add(await startPeer('bare-relay', { pin: opts.pin }))
      return await runRelay(bareDriver(server), [measured('server', server)], opts)
    }
    const redis = procs.add(await startRedis(opts.pin))
    if (kind === 'socketio') {
      const server = procs.add(await startPeer('socketio-peer', { pin: opts.pin, redisUrl: redis.url }))
      return await runRelay(socketioDriver(server), [measured('server', server), measured('redis', redis)], opts)
    }
    const servers: BenchServer[] = []
    for (let i = 0; i < instances; i++) servers.push(procs.add(await startService('chat-server', { pin: opts.pin, redisUrl: redis.url, ...(opts.oursRoot ? { root: opts.oursRoot } : {}) })))
    return await runRelay(
      oursDriver(servers[0]!, servers[instances - 1]!),
      [...servers.map((s) => measured('server', s)), measured('redis', redis)],
      opts,
      instances,
    )
  } finally {
    await procs.stopAll()
  }
}

/** Below this share of the heartbeat's rate in pongs, pings went unanswered (or unsent): the run is not what it claims. */
const MIN_HEARTBEAT_RATE = 0.9

export interface IdleResult {
  /** Which server: ours, the Socket.IO peer (its own heartbeat at the same interval), or the bare ws relay doing ChatServer's heartbeat. */
  kind: ServerKind
  heartbeatMs: number
  chats: number
  sockets: number
  /** RSS growth per socket after a full GC, in bytes. */
  rssPerSocket: number
  /** V8 heap used growth per socket after a full GC (the server's `nodejs_heap_size_used_bytes`), in bytes. */
  heapPerSocket: number
  /**
   * The same two, read again after the CPU window: the sockets have idled
   * (answering heartbeats) for `cpuWindowSeconds`, and V8 has had time to
   * give back the heap pages that connecting them left part-empty. What a
   * server that has run a while holds; the figures above are right after
   * the sockets opened.
   */
  rssPerSocketIdle: number
  heapPerSocketIdle: number
  rssBeforeMb: number
  rssAfterMb: number
  /** Pongs the generator sent per second over the window: the heartbeat as it ran (sockets ÷ interval when every ping arrives). */
  pongsPerSecond: number
  /** Server CPU while idle, percent of one core, over `cpuSeconds`. */
  serverCpuPercent: number
  redisCpuPercent: number
  generatorCpuPercent: number
  cpuWindowSeconds: number
  /** CPU of everything else on the machine before the window, percent of one core. */
  otherCpuPercent: number
  /** False when the generator limited the run (its core nearly full, or the heartbeat not answered at its rate): discard the figures. */
  valid: boolean
  notes: string[]
}

async function heapUsed(server: BenchServer): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text()
  const match = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)
  if (!match) throw new Error('no nodejs_heap_size_used_bytes in /metrics')
  return Number(match[1])
}

/** A full GC in the server (SIGUSR2 to the gc-on-signal preload), then a moment for it to run. */
async function collectGarbage(server: BenchServer): Promise<void> {
  process.kill(server.pid, 'SIGUSR2')
  await new Promise((resolve) => setTimeout(resolve, 500))
  process.kill(server.pid, 'SIGUSR2')
  await new Promise((resolve) => setTimeout(resolve, 500))
}

/**
 * Idle: `chats` joined chats (a visitor and an agent socket each) that only
 * answer heartbeats. Memory is read before and after opening them, each
 * time after a full GC; CPU over a window with nothing but heartbeats, and
 * memory again after it. `kind` picks the server: ours, or for comparison
 * the Socket.IO peer (its ping/pong at the same interval) and the bare ws
 * relay (ChatServer's heartbeat, done the same way, and nothing else).
 */
export async function idleScenario(opts: {
  kind: ServerKind
  chats: number
  heartbeatMs: number
  cpuWindowSeconds: number
  quietWaitMs: number
  pin: boolean
  /** Our services from another checkout (`--ours-root`). */
  oursRoot?: string
  onProgress?: (text: string, fraction: number) => void
}): Promise<IdleResult> {
  const progress = opts.onProgress ?? (() => {})
  const procs = new Processes()
  const sockets: WebSocket[] = []
  const pongs = { sent: 0 }
  try {
    const redis = opts.kind === 'bare' ? undefined : procs.add(await startRedis(opts.pin))
    let server: BenchServer
    let driver: Driver
    if (opts.kind === 'ours') {
      server = procs.add(
        await startService('chat-server', {
          pin: opts.pin,
          redisUrl: redis!.url,
          gcOnSignal: true,
          env: { HEARTBEAT_INTERVAL_MS: String(opts.heartbeatMs) },
          ...(opts.oursRoot ? { root: opts.oursRoot } : {}),
        }),
      )
      driver = oursDriver(server)
    } else if (opts.kind === 'socketio') {
      server = procs.add(
        await startPeer('socketio-peer', { pin: opts.pin, redisUrl: redis!.url, gcOnSignal: true, env: { PING_INTERVAL_MS: String(opts.heartbeatMs) } }),
      )
      driver = socketioDriver(server)
    } else {
      server = procs.add(await startPeer('bare-relay', { pin: opts.pin, gcOnSignal: true, env: { HEARTBEAT_INTERVAL_MS: String(opts.heartbeatMs) } }))
      driver = bareDriver(server)
    }
    const heartbeat = driver.heartbeat!
    // Warm the server's code paths with one chat so the baseline holds them.
    const warm = await driver.connectPair(-1)
    sockets.push(...warm.sockets)
    answerPings(warm.sockets, heartbeat, pongs)
    await collectGarbage(server)
    const rssBefore = await rssBytes(server.pid)
    const heapBefore = await heapUsed(server)
    let connected = 0
    await mapLimit(opts.chats, 32, async (i) => {
      const pair = await driver.connectPair(i)
      sockets.push(...pair.sockets)
      answerPings(pair.sockets, heartbeat, pongs)
      if (++connected % 100 === 0) progress(`idle ${opts.kind} ${opts.heartbeatMs} ms: connecting ${opts.chats} chats`, connected / opts.chats)
    })
    progress(`idle ${opts.heartbeatMs} ms: settling`, 1)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    await collectGarbage(server)
    const rssAfter = await rssBytes(server.pid)
    const heapAfter = await heapUsed(server)
    const procsMeasured = [measured('server', server), ...(redis ? [measured('redis', redis)] : [])]
    const quiet = await waitForQuiet(procsMeasured.map((p) => p.pid), { maxWaitMs: opts.quietWaitMs })
    const before = await Promise.all(procsMeasured.map((p) => cpuSeconds(p.pid)))
    const generatorBefore = process.cpuUsage()
    const pongsBefore = pongs.sent
    const started = performance.now()
    progress(`idle ${opts.heartbeatMs} ms: measuring CPU for ${opts.cpuWindowSeconds} s`, 0)
    await new Promise((resolve) => setTimeout(resolve, opts.cpuWindowSeconds * 1000))
    const wall = (performance.now() - started) / 1000
    const pongsInWindow = pongs.sent - pongsBefore
    const after = await Promise.all(procsMeasured.map((p) => cpuSeconds(p.pid)))
    const generator = process.cpuUsage(generatorBefore)
    await collectGarbage(server)
    const rssIdle = await rssBytes(server.pid)
    const heapIdle = await heapUsed(server)
    const socketCount = opts.chats * 2
    const pongsPerSecond = Math.round(pongsInWindow / wall)
    const generatorCpuPercent = Math.round(((generator.user + generator.system) / 1e6 / wall) * 1000) / 10
    const notes = generatorNotes(generatorCpuPercent)
    const heartbeatRate = pongsPerSecond / ((socketCount * 1000) / opts.heartbeatMs)
    if (heartbeatRate < MIN_HEARTBEAT_RATE) notes.push(`pongs at ${Math.round(heartbeatRate * 100)} % of the heartbeat's rate`)
    return {
      kind: opts.kind,
      heartbeatMs: opts.heartbeatMs,
      chats: opts.chats,
      sockets: socketCount,
      rssPerSocket: Math.round((rssAfter - rssBefore) / socketCount),
      heapPerSocket: Math.round((heapAfter - heapBefore) / socketCount),
      rssPerSocketIdle: Math.round((rssIdle - rssBefore) / socketCount),
      heapPerSocketIdle: Math.round((heapIdle - heapBefore) / socketCount),
      pongsPerSecond,
      rssBeforeMb: Math.round(rssBefore / 1e5) / 10,
      rssAfterMb: Math.round(rssAfter / 1e5) / 10,
      serverCpuPercent: Math.round(((after[0]! - before[0]!) / wall) * 1000) / 10,
      redisCpuPercent: redis ? Math.round(((after[1]! - before[1]!) / wall) * 1000) / 10 : 0,
      generatorCpuPercent,
      cpuWindowSeconds: Math.round(wall * 10) / 10,
      otherCpuPercent: quiet.otherCpuPercent,
      valid: notes.length === 0,
      notes,
    }
  } finally {
    for (const socket of sockets) socket.terminate()
    await procs.stopAll()
  }
}

/** Answers the server's heartbeat on both sockets of a pair, as the visitor and the agent, counting the pongs. */
function answerPings(sockets: readonly [WebSocket, WebSocket], heartbeat: Heartbeat, pongs: { sent: number }): void {
  const ping = Buffer.from(heartbeat.ping)
  sockets.forEach((socket, side) => {
    const pong = heartbeat.pong[side as 0 | 1]
    socket.on('message', (data: Buffer) => {
      if (!data.equals(ping)) return
      socket.send(pong)
      pongs.sent++
    })
  })
}

export interface FanoutResult {
  agents: number
  visitors: number
  /** Visitor's `Join` sent → `UserJoined` at the last of the agents. */
  joinToLastAgentMs: LatencySummary
  /** `JoinUser` sent → `RemoveUser` at the last of the agents. */
  claimToLastAgentMs: LatencySummary
  /** The same to the first agent: how soon the event is out at all; the last minus the first is the fan-out's spread. */
  joinToFirstAgentMs: LatencySummary
  claimToFirstAgentMs: LatencySummary
  timeouts: number
  serverCpuPercent: number
  subscriberCpuPercent: number
  redisCpuPercent: number
  /** The generator's own CPU (its core): reading every agent's frame is its work, as writing them is the Subscriber's. */
  generatorCpuPercent: number
  /** False when the generator's core was nearly full or a round timed out: discard the figures. */
  valid: boolean
  notes: string[]
}

/**
 * Queue fan-out: `agents` sockets on Subscriber's `/users` (each sent
 * `Load`); visitors join one after another on ChatServer and are claimed
 * with `JoinUser` by one agent in turn. One visitor at a time, so each
 * figure is the fan-out itself, not a queue behind other visitors.
 */
export async function fanoutScenario(opts: {
  agents: number
  visitors: number
  pin: boolean
  /** Our services from another checkout (`--ours-root`). */
  oursRoot?: string
  onProgress?: (text: string, fraction: number) => void
}): Promise<FanoutResult> {
  const progress = opts.onProgress ?? (() => {})
  const procs = new Processes()
  const sockets: SniffedSocket[] = []
  try {
    const redis = procs.add(await startRedis(opts.pin))
    const root = opts.oursRoot ? { root: opts.oursRoot } : {}
    const chatServer = procs.add(await startService('chat-server', { pin: opts.pin, redisUrl: redis.url, ...root }))
    const subscriber = procs.add(await startService('subscriber', { pin: opts.pin, redisUrl: redis.url, ...root }))
    progress(`fan-out: connecting ${opts.agents} agents`, 0)
    // What each agent is waiting for; the last one to see it resolves the round.
    let expect: { frameType: string; userId: string; remaining: number; firstAt: number; lastAt: number; done: () => void } | undefined
    const typeMarkers = { UserJoined: Buffer.from('"type":"UserJoined"'), RemoveUser: Buffer.from('"type":"RemoveUser"') }
    const agents = await mapLimit(opts.agents, 32, async () => {
      // Bytes, not frames: the event's type and the visitor's userId are found in the chunk as sent.
      const agent = await openSniffed(`${subscriber.ws}/users`, 'pong:support', (chunk) => {
        const round = expect
        if (round === undefined) return
        if (chunk.indexOf(typeMarkers[round.frameType as keyof typeof typeMarkers]) < 0 || chunk.indexOf(round.userId) < 0) return
        round.lastAt = performance.now()
        if (round.firstAt === 0) round.firstAt = round.lastAt
        if (--round.remaining === 0) round.done()
      })
      sockets.push(agent)
      agent.sendText('{"type":"Load"}')
      return agent
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    /** Milliseconds from `send` to the event at the first and at the last agent; undefined after 5 s without every agent. */
    const waitAll = (frameType: 'UserJoined' | 'RemoveUser', userId: string, send: () => void): Promise<{ first: number; last: number } | undefined> =>
      new Promise((resolve) => {
        const sentAt = performance.now()
        const timer = setTimeout(() => {
          expect = undefined
          resolve(undefined)
        }, 5000)
        expect = {
          frameType,
          userId,
          remaining: agents.length,
          firstAt: 0,
          lastAt: 0,
          done: () => {
            clearTimeout(timer)
            const { firstAt, lastAt } = expect!
            expect = undefined
            resolve({ first: firstAt - sentAt, last: lastAt - sentAt })
          },
        }
        send()
      })
    const joined = latencyHistogram()
    const claimed = latencyHistogram()
    const joinedFirst = latencyHistogram()
    const claimedFirst = latencyHistogram()
    let timeouts = 0
    const procsMeasured = [chatServer, subscriber, redis]
    let cpuBefore: number[] = []
    let generatorBefore = process.cpuUsage()
    let started = 0
    // Round 0 is a warm-up (and proves every agent's Load took effect): not recorded.
    for (let round = 0; round <= opts.visitors; round++) {
      if (round === 1) {
        cpuBefore = await Promise.all(procsMeasured.map((p) => cpuSeconds(p.pid)))
        generatorBefore = process.cpuUsage()
        started = performance.now()
      }
      const res = await fetch(`${chatServer.http}/user/join/f${round}`)
      const visitor = (await res.json()) as { userId: string; username: string; chatId: string }
      const inbox = await Inbox.open(`${chatServer.ws}/chat/${visitor.chatId}`, { ping: 'ping', pong: ['pong:user', 'pong:user'] }, 'pong:user')
      const socket = inbox.socket
      const joinMs = await waitAll('UserJoined', visitor.userId, () =>
        socket.send(JSON.stringify({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })),
      )
      const claimer = agents[round % agents.length]!
      const claimMs = await waitAll('RemoveUser', visitor.userId, () =>
        claimer.sendText(JSON.stringify({ type: 'JoinUser', args: { userId: visitor.userId, chatId: visitor.chatId, username: visitor.username } })),
      )
      inbox.detach()
      socket.terminate()
      if (round === 0) continue
      for (const [ms, first, last] of [
        [joinMs, joinedFirst, joined],
        [claimMs, claimedFirst, claimed],
      ] as const) {
        if (ms === undefined) timeouts++
        else {
          recordMs(first, ms.first)
          recordMs(last, ms.last)
        }
      }
      if (round % 10 === 0) progress(`fan-out: ${opts.agents} agents, visitor ${round}/${opts.visitors}`, round / opts.visitors)
    }
    const wall = (performance.now() - started) / 1000
    const generator = process.cpuUsage(generatorBefore)
    const generatorCpuPercent = Math.round(((generator.user + generator.system) / 1e6 / wall) * 1000) / 10
    const notes = generatorNotes(generatorCpuPercent)
    if (timeouts > 0) notes.push(`${timeouts} events did not reach every agent within 5 s`)
    const cpuAfter = await Promise.all(procsMeasured.map((p) => cpuSeconds(p.pid)))
    const pct = (i: number) => Math.round(((cpuAfter[i]! - cpuBefore[i]!) / wall) * 1000) / 10
    return {
      agents: opts.agents,
      visitors: opts.visitors,
      joinToLastAgentMs: summarize(joined),
      claimToLastAgentMs: summarize(claimed),
      joinToFirstAgentMs: summarize(joinedFirst),
      claimToFirstAgentMs: summarize(claimedFirst),
      timeouts,
      serverCpuPercent: pct(0),
      subscriberCpuPercent: pct(1),
      redisCpuPercent: pct(2),
      generatorCpuPercent,
      valid: notes.length === 0,
      notes,
    }
  } finally {
    for (const socket of sockets) socket.close()
    await procs.stopAll()
  }
}
