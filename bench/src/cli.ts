/**
 * `npm run bench [-- options]`: runs the benchmark, prints a summary table
 * on stdout (a progress bar on stderr when it is a terminal) and writes
 * JSON and an SVG chart to bench/results/.
 */
import { mkdir, writeFile, copyFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { defaultOptions, quickOptions, runBench, type BenchOptions, type Scenario, type ServerKind } from './index.js'
import { pinSelf, profileServersInto, repoRoot } from './procs.js'
import { chartSvg, summaryTable } from './report.js'

const HELP = `npm run bench [-- options]

  --quick                 every scenario, tiny (seconds)
  --scenarios LIST        relay,target,idle,fanout,two (default: all)
  --kinds LIST            servers for relay and idle: ours,socketio,bare (default: all)
  --pairs N               relay visitor–agent pairs (default 100; try 1000, 4000)
  --steps LIST            offered msg/s (default 1000,2000,5000,10000,12500,15000,17500,20000,25000,30000)
  --step-seconds S        length of each step (default 8)
  --target-chats N        chats for the target point (default 2000) …
  --target-rate R         … at this msg/s (default 5000)
  --idle-chats K          idle chats, 2 sockets each (default 2000; 10000 = 20,000 sockets)
  --heartbeats LIST       idle heartbeat intervals, ms (default 1000,10000)
  --idle-seconds S        idle window: CPU over it, memory again after it (default 30)
  --fanout-agents A       agents on /users (default 100; try 500)
  --fanout-visitors V     visitors joined and claimed (default 200)
  --ours-root DIR         run our services from another checkout's built dist/ (a before/after)
  --no-pin                do not pin servers to core 0 and the generator to core 1
  --cpu-prof DIR          servers write a V8 CPU profile (node --cpu-prof) into DIR
  --out DIR               results directory (default bench/results)
`

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)
const numbers = (s: string) => list(s).map(Number)

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      scenarios: { type: 'string' },
      kinds: { type: 'string' },
      pairs: { type: 'string' },
      steps: { type: 'string' },
      'step-seconds': { type: 'string' },
      'target-chats': { type: 'string' },
      'target-rate': { type: 'string' },
      'idle-chats': { type: 'string' },
      'idle-seconds': { type: 'string' },
      heartbeats: { type: 'string' },
      'fanout-agents': { type: 'string' },
      'fanout-visitors': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'ours-root': { type: 'string' },
      'cpu-prof': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const options: BenchOptions = values.quick ? quickOptions() : defaultOptions()
  if (values.scenarios) options.scenarios = list(values.scenarios) as Scenario[]
  if (values.kinds) options.kinds = list(values.kinds) as ServerKind[]
  if (values.pairs) options.pairs = Number(values.pairs)
  if (values.steps) options.steps = numbers(values.steps)
  if (values['step-seconds']) options.stepSeconds = Number(values['step-seconds'])
  if (values['target-chats']) options.targetChats = Number(values['target-chats'])
  if (values['target-rate']) options.targetRate = Number(values['target-rate'])
  if (values['idle-chats']) options.idleChats = Number(values['idle-chats'])
  if (values['idle-seconds']) options.idleCpuSeconds = Number(values['idle-seconds'])
  if (values.heartbeats) options.idleHeartbeatsMs = numbers(values.heartbeats)
  if (values['fanout-agents']) options.fanoutAgents = Number(values['fanout-agents'])
  if (values['fanout-visitors']) options.fanoutVisitors = Number(values['fanout-visitors'])
  if (values['no-pin']) options.pin = false
  if (values['ours-root']) options.oursRoot = resolve(values['ours-root'])
  if (values['cpu-prof']) profileServersInto(resolve(values['cpu-prof']))
  if (options.pin && !pinSelf()) options.pin = false

  const bar = process.stderr.isTTY ? progressBar() : undefined
  options.onProgress = bar?.update
  options.onLog = (line) => {
    bar?.clear()
    process.stderr.write(`${line}\n`)
  }
  const results = await runBench(options)
  bar?.clear()
  process.stdout.write(`${summaryTable(results)}\n`)

  const dir = values.out ?? join(repoRoot, 'bench/results')
  await mkdir(dir, { recursive: true })
  const stamp = results.startedAt.replace(/[:.]/g, '-')
  const json = `${JSON.stringify(results, null, 2)}\n`
  const svg = chartSvg(results)
  await writeFile(join(dir, `${stamp}.json`), json)
  await writeFile(join(dir, `${stamp}.svg`), svg)
  await copyFile(join(dir, `${stamp}.json`), join(dir, 'latest.json'))
  await copyFile(join(dir, `${stamp}.svg`), join(dir, 'latest.svg'))
  process.stdout.write(`\nResults: ${join(dir, `${stamp}.json`)} (and latest.json, latest.svg)\n`)
}

/** One line on stderr, redrawn in place. */
function progressBar() {
  let shown = false
  return {
    update(text: string, fraction: number) {
      const width = 24
      const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
      const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`
      const columns = process.stderr.columns ?? 100
      process.stderr.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`)
      shown = true
    },
    clear() {
      if (!shown) return
      process.stderr.write(`\r${' '.repeat((process.stderr.columns ?? 100) - 1)}\r`)
      shown = false
    },
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
