import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import type { ServerKind } from './drivers.js'
import { canPin, repoRoot } from './procs.js'
import { P99_LIMIT_MS, type RelayResult } from './relay.js'
import { fanoutScenario, idleScenario, relayScenario, type FanoutResult, type IdleResult } from './scenarios.js'

export type { RelayResult, StepResult } from './relay.js'
export type { FanoutResult, IdleResult } from './scenarios.js'
export type { ServerKind } from './drivers.js'

export type Scenario = 'relay' | 'target' | 'idle' | 'fanout' | 'two'

/** Everything a run can be told; `defaultOptions()` and `quickOptions()` fill it. */
export interface BenchOptions {
  scenarios: Scenario[]
  /** Server kinds of the relay, in this order. */
  kinds: ServerKind[]
  /** Visitor–agent pairs of the relay. */
  pairs: number
  /** Offered loads, msg/s (both sides together), in increasing order. */
  steps: number[]
  stepSeconds: number
  warmupSeconds: number
  drainMs: number
  /** The target point: `targetRate` msg/s over `targetChats` chats on one instance (ours). */
  targetChats: number
  targetRate: number
  idleChats: number
  idleHeartbeatsMs: number[]
  idleCpuSeconds: number
  fanoutAgents: number
  fanoutVisitors: number
  /** Longest wait, before each measurement, for the rest of the machine to be quiet (a shared machine). */
  quietWaitMs: number
  /** Run our services from this checkout's built `dist/` instead of this one's (relay scenarios), e.g. to measure a before/after. */
  oursRoot?: string
  /** Pin the servers to core 0 (and, in the CLI, the generator to core 1). */
  pin: boolean
  onProgress?: (text: string, fraction: number) => void
  /** A line per finished step or scenario (stderr in the CLI). */
  onLog?: (line: string) => void
}

/** `npm run bench`: a few minutes. */
export function defaultOptions(): BenchOptions {
  return {
    scenarios: ['relay', 'target', 'idle', 'fanout', 'two'],
    kinds: ['ours', 'socketio', 'bare'],
    pairs: 100,
    steps: [1000, 2000, 5000, 10_000, 12_500, 15_000, 17_500, 20_000, 25_000, 30_000],
    stepSeconds: 8,
    warmupSeconds: 3,
    drainMs: 3000,
    targetChats: 2000,
    targetRate: 5000,
    idleChats: 2000,
    idleHeartbeatsMs: [1000, 10_000],
    // Long enough for V8 to give back the heap pages that opening the sockets left part-empty (see IdleResult).
    idleCpuSeconds: 30,
    fanoutAgents: 100,
    fanoutVisitors: 200,
    quietWaitMs: 30_000,
    pin: canPin(),
  }
}

/** `npm run bench -- --quick`: every scenario, tiny, in seconds. */
export function quickOptions(): BenchOptions {
  return {
    ...defaultOptions(),
    pairs: 10,
    steps: [200, 500],
    stepSeconds: 1.5,
    warmupSeconds: 0.5,
    drainMs: 2000,
    targetChats: 50,
    targetRate: 500,
    idleChats: 50,
    idleHeartbeatsMs: [1000],
    idleCpuSeconds: 1,
    fanoutAgents: 10,
    fanoutVisitors: 10,
    quietWaitMs: 0,
  }
}

export interface Comparison {
  /** Ceiling ours ÷ ceiling other (a lower bound when ours stopped at the last step). */
  ceilingRatio: number | null
  /** At the highest step both passed: server CPU per 1,000 messages, ours ÷ other. */
  cpuRatioAt: number | null
  cpuPer1kRatio: number | null
  /** The same with each side's Redis CPU added. */
  cpuWithRedisPer1kRatio: number | null
}

export interface BenchResults {
  schema: 1
  startedAt: string
  finishedAt: string
  machine: {
    cpuModel: string
    cores: number
    memoryGb: number
    node: string
    redis: string
    pinned: boolean
    fdLimit: number | null
    commit: string | null
    /** Uncommitted changes in the tree the servers were built from. */
    dirty: boolean | null
  }
  options: Omit<BenchOptions, 'onProgress' | 'onLog'>
  relay: RelayResult[]
  comparisons: Partial<Record<'socketio' | 'bare', Comparison>>
  target: (RelayResult & { targetP99Ms: number; met: boolean }) | null
  idle: IdleResult[]
  fanout: FanoutResult | null
  twoInstances: RelayResult | null
}

function git(args: string[], cwd = repoRoot): string | null {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

/** The soft limit on open files of this process (a socket is one). */
export function fdLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

function compare(ours: RelayResult | undefined, other: RelayResult | undefined): Comparison | undefined {
  if (!ours || !other) return undefined
  const ceilingRatio = ours.ceiling !== null && other.ceiling ? round2(ours.ceiling / other.ceiling) : null
  const both = ours.steps.filter((s) => s.passed && other.steps.some((o) => o.offered === s.offered && o.passed))
  const at = both.at(-1)
  const theirs = at && other.steps.find((o) => o.offered === at.offered)
  return {
    ceilingRatio,
    cpuRatioAt: at?.offered ?? null,
    cpuPer1kRatio: at && theirs ? round2(at.server.cpuMsPer1k / theirs.server.cpuMsPer1k) : null,
    cpuWithRedisPer1kRatio:
      at && theirs
        ? round2((at.server.cpuMsPer1k + at.server.redisCpuMsPer1k) / (theirs.server.cpuMsPer1k + theirs.server.redisCpuMsPer1k))
        : null,
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100
}

/** Runs the chosen scenarios one after another, each on fresh server processes. */
export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const log = options.onLog ?? (() => {})
  const { onProgress, onLog: _onLog, ...recorded } = options
  const relayOpts = {
    pairs: options.pairs,
    steps: options.steps,
    stepSeconds: options.stepSeconds,
    warmupSeconds: options.warmupSeconds,
    drainMs: options.drainMs,
    quietWaitMs: options.quietWaitMs,
    pin: options.pin,
    ...(options.oursRoot ? { oursRoot: options.oursRoot } : {}),
    ...(onProgress ? { onProgress } : {}),
  }
  const startedAt = new Date().toISOString()
  const results: BenchResults = {
    schema: 1,
    startedAt,
    finishedAt: startedAt,
    machine: {
      cpuModel: cpus()[0]?.model ?? 'unknown',
      // All the machine's cores: this process may already be pinned to one.
      cores: cpus().length,
      memoryGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: (() => {
        try {
          return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()
        } catch {
          return 'unknown'
        }
      })(),
      pinned: options.pin,
      fdLimit: fdLimit(),
      commit: git(['rev-parse', '--short', 'HEAD'], options.oursRoot),
      dirty: (() => {
        const status = git(['status', '--porcelain', '--untracked-files=no'], options.oursRoot)
        return status === null ? null : status.length > 0
      })(),
    },
    options: recorded,
    relay: [],
    comparisons: {},
    target: null,
    idle: [],
    fanout: null,
    twoInstances: null,
  }
  const logRelay = (r: RelayResult) => {
    for (const s of r.steps) {
      log(
        `${r.label}: ${s.offered} msg/s  p50 ${s.latencyMs.p50} ms  p99 ${s.latencyMs.p99} ms  max ${s.latencyMs.max} ms  ` +
          `delivered ${s.delivered}/${s.sent}  server ${s.server.cpuPercent}%  gen ${s.generator.cpuPercent}%  ${s.passed ? 'pass' : s.valid ? 'FAIL' : 'INVALID'}`,
      )
    }
  }
  if (options.scenarios.includes('relay')) {
    for (const kind of options.kinds) {
      const result = await relayScenario(kind, { ...relayOpts, label: kind })
      logRelay(result)
      results.relay.push(result)
    }
    const ours = results.relay.find((r) => r.kind === 'ours')
    for (const other of ['socketio', 'bare'] as const) {
      const comparison = compare(ours, results.relay.find((r) => r.kind === other))
      if (comparison) results.comparisons[other] = comparison
    }
  }
  if (options.scenarios.includes('target')) {
    const result = await relayScenario('ours', {
      ...relayOpts,
      label: `ours, ${options.targetChats} chats`,
      pairs: options.targetChats,
      steps: [options.targetRate],
    })
    logRelay(result)
    const p99 = result.steps[0]?.latencyMs.p99 ?? Infinity
    results.target = { ...result, targetP99Ms: 5, met: p99 <= 5 && result.steps[0]?.lost === 0 }
  }
  if (options.scenarios.includes('idle')) {
    const limit = fdLimit()
    // Each chat is two sockets here and two in the server; keep some files for everything else.
    const maxChats = limit === null ? options.idleChats : Math.floor((limit - 256) / 2)
    const chats = Math.min(options.idleChats, maxChats)
    if (chats < options.idleChats) log(`idle: ${options.idleChats} chats need ${options.idleChats * 2 + 256} open files, the limit is ${limit}: running ${chats}`)
    for (const kind of options.kinds) for (const heartbeatMs of options.idleHeartbeatsMs) {
      const result = await idleScenario({
        kind,
        chats,
        heartbeatMs,
        cpuWindowSeconds: options.idleCpuSeconds,
        quietWaitMs: options.quietWaitMs,
        pin: options.pin,
        ...(options.oursRoot ? { oursRoot: options.oursRoot } : {}),
        ...(onProgress ? { onProgress } : {}),
      })
      log(`idle ${kind}: ${result.sockets} sockets, heartbeat ${heartbeatMs} ms: RSS ${result.rssPerSocket} B/socket, heap ${result.heapPerSocket} B/socket, server CPU ${result.serverCpuPercent}%`)
      results.idle.push(result)
    }
  }
  if (options.scenarios.includes('fanout')) {
    const result = await fanoutScenario({
      agents: options.fanoutAgents,
      visitors: options.fanoutVisitors,
      pin: options.pin,
      ...(options.oursRoot ? { oursRoot: options.oursRoot } : {}),
      ...(onProgress ? { onProgress } : {}),
    })
    log(`fan-out: ${result.agents} agents: Join→UserJoined p99 ${result.joinToLastAgentMs.p99} ms, JoinUser→RemoveUser p99 ${result.claimToLastAgentMs.p99} ms`)
    results.fanout = result
  }
  if (options.scenarios.includes('two')) {
    const result = await relayScenario('ours', { ...relayOpts, label: 'ours, 2 instances', instances: 2 })
    logRelay(result)
    results.twoInstances = result
  }
  results.finishedAt = new Date().toISOString()
  return results
}

export { P99_LIMIT_MS }
