import { performance } from 'node:perf_hooks'
import type { WebSocket } from 'ws'
import type { Histogram } from 'hdr-histogram-js'
import type { Driver, Pair, ServerKind, Side } from './drivers.js'
import { latencyHistogram, recordMs, summarize, type LatencySummary } from './histogram.js'
import { cpuSeconds, machineBusySeconds, syscalls, waitForQuiet } from './procs.js'
import { mapLimit } from './sockets.js'

/** A step passes when its p99 is at most this and nothing was lost. */
export const P99_LIMIT_MS = 50
/** The generator is the bottleneck when it uses this share of its core … */
export const GENERATOR_CPU_LIMIT = 0.9
/** … or its sends leave this much later than scheduled (p99). */
export const SEND_LAG_LIMIT_MS = 10

/** Why the generator may have limited a run (relay step, idle, fan-out): its core (nearly) full. */
export function generatorNotes(cpuPercent: number): string[] {
  return cpuPercent >= GENERATOR_CPU_LIMIT * 100 ? [`generator CPU ${cpuPercent.toFixed(0)}% of a core`] : []
}

/** Other processes on the machine using this share of a core during a step make it noisy (noted, not invalid). */
export const OTHER_CPU_LIMIT = 0.15

// Every message's content starts with `b<id>`; the server echoes it inside its JSON.
const MARKER = Buffer.from('"content":"b')
// A chat line of ordinary length after the id.
const TEXT = ' Hello, I have a question about my order from last week'

const CHUNK_BITS = 16
const CHUNK = 1 << CHUNK_BITS
const SENDER_AGENT = 1
const DELIVERED = 2

/**
 * Every message sent in a run, by id: when it was scheduled (not when it
 * left: a late send counts against latency, so coordinated omission is
 * measured, not hidden) and which side sent it. Grows in 64 Ki chunks.
 */
class MessageTable {
  readonly scheduled: Float64Array[] = []
  readonly flags: Uint8Array[] = []
  size = 0
  add(at: number, side: Side): number {
    const id = this.size++
    const chunk = id >>> CHUNK_BITS
    if (chunk === this.scheduled.length) {
      this.scheduled.push(new Float64Array(CHUNK))
      this.flags.push(new Uint8Array(CHUNK))
    }
    this.scheduled[chunk]![id & (CHUNK - 1)] = at
    this.flags[chunk]![id & (CHUNK - 1)] = side
    return id
  }
}

/** A server-side process whose CPU is measured. */
export interface MeasuredProcess {
  role: 'server' | 'redis'
  pid: number
}

export interface StepResult {
  /** msg/s asked for (ChatMessages sent by clients, both sides together). */
  offered: number
  /** msg/s actually sent. */
  achieved: number
  sent: number
  /** Received by the other side of the chat. */
  delivered: number
  /** Not received by the other side when the drain ended. */
  lost: number
  duplicates: number
  /** Scheduled send → receipt at the other side; undelivered messages count as the time they waited. */
  latencyMs: LatencySummary
  server: {
    cpuPercent: number
    cpuMsPer1k: number
    redisCpuPercent: number
    redisCpuMsPer1k: number
    /** Reads and writes (system calls) per message sent, from /proc/PID/io: what batching saves. */
    syscallsPerMessage: number
    redisSyscallsPerMessage: number
  }
  generator: { cpuPercent: number; sendLagP50Ms: number; sendLagP99Ms: number; sendLagMaxMs: number }
  /** CPU used by everything else on the machine meanwhile, percent of one core: above a few %, the step was disturbed. */
  otherCpuPercent: number
  /** How long the step waited for the rest of the machine to be quiet before it started. */
  quietWaitMs: number
  /** False when the generator was the bottleneck: the step says nothing about the server. */
  valid: boolean
  passed: boolean
  notes: string[]
}

export interface RelayResult {
  kind: ServerKind
  label: string
  pairs: number
  instances: number
  steps: StepResult[]
  /** Highest offered msg/s that passed before the first step that did not (null: none passed). */
  ceiling: number | null
  /** Why the steps stopped: the server failed a step, the generator could not keep up, or the steps ran out. */
  stoppedBy: 'server' | 'generator' | 'steps'
}

export interface RelayOptions {
  label?: string
  pairs: number
  steps: number[]
  stepSeconds: number
  warmupSeconds: number
  /** How long to wait, after the last send, for every message to arrive. */
  drainMs: number
  /** Longest wait for the rest of the machine to be quiet before each step. @default 30000 */
  quietWaitMs?: number
  /** Keep running steps after one fails (the smoke test does not need it; a sweep might). */
  continueAfterFailure?: boolean
  onProgress?: (text: string, fraction: number) => void
}

/**
 * The relay: `pairs` joined chats; messages scheduled as one Poisson
 * process at the step's rate, each given to a random pair and side (the
 * sum of independent per-side Poisson processes at rate/2N each is exactly
 * that), so every side sends at the same mean rate with random spacing.
 */
export async function runRelay(driver: Driver, processes: MeasuredProcess[], opts: RelayOptions, instances = 1): Promise<RelayResult> {
  const progress = opts.onProgress ?? (() => {})
  const label = opts.label ?? driver.kind
  progress(`${label}: connecting ${opts.pairs} pairs`, 0)
  let connected = 0
  const pairs: Pair[] = await mapLimit(opts.pairs, 32, async (i) => {
    const pair = await driver.connectPair(i)
    connected++
    if (connected % 50 === 0) progress(`${label}: connecting ${opts.pairs} pairs`, connected / opts.pairs)
    return pair
  })
  const sockets = pairs.flatMap((pair) => pair.sockets)
  try {
    const table = new MessageTable()
    let histogram: Histogram = latencyHistogram()
    let stepFirstId = 0
    let delivered = 0
    let duplicates = 0
    const ping = driver.heartbeat ? Buffer.from(driver.heartbeat.ping) : undefined
    const listen = (socket: WebSocket, side: Side) => {
      const pong = driver.heartbeat?.pong[side]
      socket.on('message', (data: Buffer) => {
        if (ping !== undefined && data.length === ping.length && data.equals(ping)) {
          socket.send(pong!)
          return
        }
        const at = data.indexOf(MARKER)
        if (at < 0) return
        let id = 0
        for (let i = at + MARKER.length; i < data.length; i++) {
          const c = data[i]!
          if (c < 48 || c > 57) break
          id = id * 10 + (c - 48)
        }
        if (id >= table.size) return
        const chunk = id >>> CHUNK_BITS
        const offset = id & (CHUNK - 1)
        const flags = table.flags[chunk]!
        const f = flags[offset]!
        if ((f & SENDER_AGENT) === side) return // the sender's own echo
        if (f & DELIVERED) {
          duplicates++
          return
        }
        flags[offset] = f | DELIVERED
        if (id < stepFirstId) return
        delivered++
        recordMs(histogram, performance.now() - table.scheduled[chunk]![offset]!)
      })
    }
    pairs.forEach((pair) => {
      listen(pair.sockets[0], 0)
      listen(pair.sockets[1], 1)
    })

    const runStep = async (rate: number, seconds: number, title: string): Promise<StepResult> => {
      const quiet = await waitForQuiet(processes.map((p) => p.pid), { maxWaitMs: opts.quietWaitMs ?? 30_000 })
      histogram = latencyHistogram()
      const sendLag = latencyHistogram()
      stepFirstId = table.size
      delivered = 0
      duplicates = 0
      const cpuBefore = await Promise.all(processes.map((p) => cpuSeconds(p.pid)))
      const syscallsBefore = await Promise.all(processes.map((p) => syscalls(p.pid)))
      const busyBefore = await machineBusySeconds()
      const generatorBefore = process.cpuUsage()
      const started = performance.now()
      const endAt = started + seconds * 1000
      const ratePerMs = rate / 1000
      let next = started
      const n = pairs.length
      let lastProgress = started
      await new Promise<void>((resolve) => {
        const tick = () => {
          const now = performance.now()
          while (next <= now && next < endAt) {
            const side: Side = Math.random() < 0.5 ? 0 : 1
            const pair = pairs[(Math.random() * n) | 0]!
            const id = table.add(next, side)
            pair.sockets[side].send(pair.prefix[side] + 'b' + id + TEXT + pair.suffix)
            recordMs(sendLag, now - next)
            next += -Math.log(1 - Math.random()) / ratePerMs
          }
          if (now - lastProgress > 250) {
            lastProgress = now
            progress(`${title}  sent ${table.size - stepFirstId}  delivered ${delivered}`, (now - started) / (endAt - started))
          }
          if (next >= endAt) resolve()
          else setTimeout(tick, Math.min(1, Math.max(0, next - performance.now())))
        }
        tick()
      })
      const sendEnded = performance.now()
      const generatorCpu = process.cpuUsage(generatorBefore)
      const sent = table.size - stepFirstId
      const drainDeadline = sendEnded + opts.drainMs
      while (delivered < sent && performance.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 5))
      const ended = performance.now()
      const cpuAfter = await Promise.all(processes.map((p) => cpuSeconds(p.pid)))
      const syscallsAfter = await Promise.all(processes.map((p) => syscalls(p.pid)))
      const busy = (await machineBusySeconds()) - busyBefore
      const generatorAll = process.cpuUsage(generatorBefore)
      // What never arrived waited at least until now: count it so, or an overload would look fast.
      let lost = 0
      for (let id = stepFirstId; id < table.size; id++) {
        const chunk = id >>> CHUNK_BITS
        const offset = id & (CHUNK - 1)
        if (!(table.flags[chunk]![offset]! & DELIVERED)) {
          lost++
          recordMs(histogram, ended - table.scheduled[chunk]![offset]!)
        }
      }
      const wallSeconds = (ended - started) / 1000
      const cpuOf = (role: MeasuredProcess['role']) =>
        processes.reduce((sum, p, i) => (p.role === role ? sum + cpuAfter[i]! - cpuBefore[i]! : sum), 0)
      const serverCpu = cpuOf('server')
      const redisCpu = cpuOf('redis')
      const syscallsOf = (role: MeasuredProcess['role']) =>
        processes.reduce((sum, p, i) => (p.role === role ? sum + syscallsAfter[i]! - syscallsBefore[i]! : sum), 0)
      const perMessage = (n: number) => (sent === 0 ? 0 : round2(n / sent))
      const perK = (cpu: number) => (sent === 0 ? 0 : round2((cpu * 1000 * 1000) / sent))
      const generatorCpuPercent = ((generatorCpu.user + generatorCpu.system) / 1e6 / ((sendEnded - started) / 1000)) * 100
      const lag = summarize(sendLag)
      const latencyMs = summarize(histogram)
      const other = busy - serverCpu - redisCpu - (generatorAll.user + generatorAll.system) / 1e6
      const otherCpuPercent = round2(Math.max(0, (other / wallSeconds) * 100))
      const notes = generatorNotes(generatorCpuPercent)
      if (lag.p99 > SEND_LAG_LIMIT_MS) notes.push(`generator sends lag ${lag.p99} ms (p99)`)
      const valid = notes.length === 0
      if (otherCpuPercent > OTHER_CPU_LIMIT * 100) notes.push(`other processes used ${otherCpuPercent.toFixed(0)}% of a core meanwhile`)
      if (lost > 0) notes.push(`${lost} not delivered within ${opts.drainMs} ms`)
      if (latencyMs.p99 > P99_LIMIT_MS) notes.push(`p99 over ${P99_LIMIT_MS} ms`)
      return {
        offered: rate,
        achieved: Math.round(sent / ((sendEnded - started) / 1000)),
        sent,
        delivered,
        lost,
        duplicates,
        latencyMs,
        server: {
          cpuPercent: round2((serverCpu / wallSeconds) * 100),
          cpuMsPer1k: perK(serverCpu),
          redisCpuPercent: round2((redisCpu / wallSeconds) * 100),
          redisCpuMsPer1k: perK(redisCpu),
          syscallsPerMessage: perMessage(syscallsOf('server')),
          redisSyscallsPerMessage: perMessage(syscallsOf('redis')),
        },
        generator: { cpuPercent: round2(generatorCpuPercent), sendLagP50Ms: lag.p50, sendLagP99Ms: lag.p99, sendLagMaxMs: lag.max },
        otherCpuPercent,
        quietWaitMs: quiet.waitedMs,
        valid,
        passed: valid && lost === 0 && duplicates === 0 && latencyMs.p99 <= P99_LIMIT_MS,
        notes,
      }
    }

    if (opts.warmupSeconds > 0) await runStep(opts.steps[0]!, opts.warmupSeconds, `${label}: warm-up`)
    const steps: StepResult[] = []
    let ceiling: number | null = null
    let stoppedBy: RelayResult['stoppedBy'] = 'steps'
    for (const [index, rate] of opts.steps.entries()) {
      const step = await runStep(rate, opts.stepSeconds, `${label}: ${rate} msg/s (step ${index + 1}/${opts.steps.length})`)
      steps.push(step)
      if (step.passed) {
        if (stoppedBy === 'steps') ceiling = rate
        continue
      }
      if (stoppedBy === 'steps') stoppedBy = step.valid ? 'server' : 'generator'
      if (!opts.continueAfterFailure) break
    }
    return { kind: driver.kind, label, pairs: opts.pairs, instances, steps, ceiling, stoppedBy }
  } finally {
    for (const socket of sockets) socket.terminate()
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100
}
