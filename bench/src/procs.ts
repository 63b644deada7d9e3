import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { freePort, TEST_ENV } from '@switchboard/testing'

/** The repository root (bench/dist/ or bench/src/ → ../../). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** The core the servers run on, and the one the generator runs on, when there are two. */
export const SERVER_CORE = 0
export const GENERATOR_CORE = 1

let tasksetChecked: boolean | undefined
/** True when `taskset` exists and the machine has at least two cores. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
      tasksetChecked = availableParallelism() >= 2
    } catch {
      tasksetChecked = false
    }
  }
  return tasksetChecked
}

/**
 * Moves this process (every thread: `-a`) to the generator's core, so it
 * never competes with the servers for theirs. Children spawned later inherit
 * it, which is why servers are spawned under their own `taskset -c`.
 */
export function pinSelf(): boolean {
  if (!canPin()) return false
  execFileSync('taskset', ['-a', '-p', '-c', String(GENERATOR_CORE), String(process.pid)], { stdio: 'ignore' })
  return true
}

/** CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/** System calls that read and that write a process has made so far (`syscr` + `syscw` of `/proc/PID/io`). */
export async function syscalls(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8')
  const count = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? 0)
  return count('syscr') + count('syscw')
}

/** CPU seconds all cores have spent busy so far (everything but idle and iowait), from `/proc/stat`. */
export async function machineBusySeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[]
  void idle
  void iowait
  return (user! + nice! + system! + irq! + softirq! + steal!) / clockTicks
}

/**
 * Waits until the rest of the machine is quiet: what is busy on all cores,
 * less `pids` and this process, under `limitPercent` of one core over a
 * `sampleMs` sample (another job on a shared machine would otherwise
 * preempt the pinned processes and show up as latency). Gives up after
 * `maxWaitMs`. Resolves with the other processes' CPU in the last sample.
 */
export async function waitForQuiet(pids: number[], opts: { limitPercent?: number; maxWaitMs?: number; sampleMs?: number } = {}): Promise<{ waitedMs: number; otherCpuPercent: number }> {
  const { limitPercent = 10, maxWaitMs = 30_000, sampleMs = 500 } = opts
  const started = Date.now()
  for (;;) {
    const own = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0)
    const [busy0, own0] = [await machineBusySeconds(), await own()]
    const self0 = process.cpuUsage()
    const t0 = performance.now()
    await new Promise((resolve) => setTimeout(resolve, sampleMs))
    const self = process.cpuUsage(self0)
    const other = (await machineBusySeconds()) - busy0 - ((await own()) - own0) - (self.user + self.system) / 1e6
    const otherCpuPercent = Math.max(0, Math.round((other / ((performance.now() - t0) / 1000)) * 1000) / 10)
    const waitedMs = Date.now() - started
    if (otherCpuPercent < limitPercent || waitedMs >= maxWaitMs) return { waitedMs, otherCpuPercent }
  }
}

/** Resident set size of a process in bytes, from `/proc/PID/status`. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status)
  if (!match) throw new Error(`no VmRSS for ${pid}`)
  return Number(match[1]) * 1024
}

/** A server-side process the benchmark started: killed at `stop()`. */
export interface BenchProcess {
  name: string
  pid: number
  child: ChildProcess
  /** Last lines of its output, for the error message when it dies. */
  output(): string
  stop(): Promise<void>
}

/** Where Node servers write a CPU profile (`--cpu-prof`), if anywhere: set by `--cpu-prof DIR`. */
let cpuProfileDir: string | undefined

/** Every Node server started from now on writes a V8 CPU profile into `dir` when it stops. */
export function profileServersInto(dir: string): void {
  cpuProfileDir = dir
}

/** Node flags every server gets: a CPU profile when asked for, `--expose-gc` and the GC preload for memory readings. */
function nodeFlags(gcOnSignal: boolean | undefined): string[] {
  const flags = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : []
  if (gcOnSignal) flags.push('--expose-gc', `--import=${pathToFileURL(join(repoRoot, 'bench/dist/servers/gc-on-signal.js')).href}`)
  return flags
}

/** BENCH_SERVER_NODE_OPTIONS (e.g. `--perf-basic-prof` for `perf record`) becomes the servers' NODE_OPTIONS. */
function profilerEnv(): Record<string, string> {
  const options = process.env.BENCH_SERVER_NODE_OPTIONS
  return options ? { NODE_OPTIONS: options } : {}
}

function start(name: string, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; pin: boolean; cwd?: string }): BenchProcess {
  // taskset execs the command, so the child's pid is the server's own.
  const [file, argv] = opts.pin ? ['taskset', ['-c', String(SERVER_CORE), command, ...args]] : [command, args]
  const child = spawn(file, argv, { cwd: opts.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env })
  let tail = ''
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = once(child, 'exit')
  return {
    name,
    pid: child.pid!,
    child,
    output: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      // A profiled server writes its profile as it exits: it is asked to stop, and killed only if it does not.
      if (cpuProfileDir && command === process.execPath) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(timer)
        return
      }
      child.kill('SIGKILL')
      await exited
    },
  }
}

async function waitFor(proc: BenchProcess, ready: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${proc.output()}`)
    }
    if (await ready().catch(() => false)) return
    if (Date.now() > deadline) {
      await proc.stop()
      throw new Error(`${proc.name} was not ready within ${timeoutMs} ms:\n${proc.output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Resolves when `url` answers at all (any status). */
async function answers(url: string): Promise<boolean> {
  const res = await fetch(url)
  await res.arrayBuffer()
  return true
}

export interface BenchRedis extends BenchProcess {
  url: string
}

/** A private `redis-server` on a free port, nothing persisted, pinned to the servers' core. */
export async function startRedis(pin: boolean): Promise<BenchRedis> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'sb-bench-redis-'))
  const proc = start(
    'redis-server',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no'],
    { pin },
  )
  await waitFor(proc, async () => proc.output().includes('Ready to accept connections'))
  return {
    ...proc,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await proc.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * The settings every benchmarked instance starts with: the tests' (abuse
 * limits lifted: every generated client shares one address and sends fast),
 * quiet logs, and chats that outlive the run.
 */
export const BENCH_ENV: Readonly<Record<string, string>> = Object.freeze({
  ...TEST_ENV,
  LOG_LEVEL: 'warn',
  CHAT_TTL_SECONDS: '3600',
  IDLE_TIMEOUT_SECONDS: '600',
})

export interface BenchServer extends BenchProcess {
  http: string
  ws: string
  port: number
}

export type ServiceName = 'chat-server' | 'subscriber'

/**
 * One of our services as a real process (`dist/server.js`), pinned to the
 * servers' core. `gcOnSignal` runs it with `--expose-gc` and a preload that
 * collects garbage on SIGUSR2, so memory can be read after a full GC.
 */
export async function startService(
  service: ServiceName,
  opts: { redisUrl: string; pin: boolean; env?: Record<string, string>; gcOnSignal?: boolean; root?: string },
): Promise<BenchServer> {
  const port = await freePort()
  const portVar = service === 'chat-server' ? 'CHAT_SERVER_PORT' : 'SUBSCRIBER_PORT'
  const nodeArgs = nodeFlags(opts.gcOnSignal)
  const proc = start(service, process.execPath, [...nodeArgs, `services/${service}/dist/server.js`], {
    pin: opts.pin,
    cwd: opts.root ?? repoRoot,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', ...BENCH_ENV, ...profilerEnv(), REDIS_URL: opts.redisUrl, ...opts.env, [portVar]: String(port) },
  })
  const http = `http://127.0.0.1:${port}`
  await waitFor(proc, async () => (await fetch(`${http}/ready`)).status === 200)
  return { ...proc, http, ws: `ws://127.0.0.1:${port}`, port }
}

/** One of the comparison servers in `bench/dist/servers/` (`socketio-peer`, `bare-relay`). */
export async function startPeer(
  script: 'socketio-peer' | 'bare-relay',
  opts: { redisUrl?: string; pin: boolean; env?: Record<string, string>; gcOnSignal?: boolean },
): Promise<BenchServer> {
  const port = await freePort()
  const nodeArgs = nodeFlags(opts.gcOnSignal)
  const proc = start(script, process.execPath, [...nodeArgs, `bench/dist/servers/${script}.js`], {
    pin: opts.pin,
    env: { PATH: process.env.PATH, PORT: String(port), ...profilerEnv(), ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}), ...opts.env },
  })
  const http = `http://127.0.0.1:${port}`
  await waitFor(proc, () => answers(`${http}/health`))
  return { ...proc, http, ws: `ws://127.0.0.1:${port}`, port }
}
