import t from 'tap'
import { quickOptions, runBench } from '../src/index.js'
import { chartSvg, summaryTable } from '../src/report.js'

// Speed is measured by the benchmark, not asserted here: this only checks
// that a tiny relay against a real ChatServer (its own redis-server and
// process) runs, loses nothing, and reports in the documented shape.
t.test('a quick relay against ChatServer delivers everything and reports its figures', async (t) => {
  const results = await runBench({
    ...quickOptions(),
    scenarios: ['relay'],
    kinds: ['ours'],
    pairs: 4,
    steps: [100],
    stepSeconds: 1.5,
    warmupSeconds: 0,
    pin: false,
  })
  t.equal(results.schema, 1)
  t.equal(results.relay.length, 1)
  const [relay] = results.relay
  t.equal(relay!.kind, 'ours')
  t.equal(relay!.pairs, 4)
  t.equal(relay!.steps.length, 1)
  const [step] = relay!.steps
  t.ok(step!.sent > 0, 'messages were sent')
  t.equal(step!.delivered, step!.sent, 'every message reached the other side')
  t.equal(step!.lost, 0)
  t.equal(step!.duplicates, 0)
  t.equal(step!.latencyMs.count, step!.sent, 'one latency per message')
  for (const key of ['p50', 'p99', 'p999', 'max', 'mean'] as const) t.type(step!.latencyMs[key], 'number', `latency ${key}`)
  for (const key of ['cpuPercent', 'cpuMsPer1k', 'redisCpuPercent', 'redisCpuMsPer1k'] as const) t.type(step!.server[key], 'number', `server ${key}`)
  t.type(step!.generator.cpuPercent, 'number')
  t.type(step!.valid, 'boolean')
  t.type(step!.passed, 'boolean')
  t.ok(relay!.ceiling === null || relay!.ceiling === 100)
  t.match(summaryTable(results), /Relay: 4 visitor–agent pairs/)
  t.match(chartSvg(results), /^<svg [^]*<\/svg>\n$/)
  // The whole result is plain JSON (what bench/results/*.json holds).
  t.same(JSON.parse(JSON.stringify(results)), results)
})

// The idle scenario on every server kind: each one's heartbeat runs and is
// answered (pongs counted by the generator), and memory and CPU are reported.
t.test('a quick idle run on ChatServer, the Socket.IO peer and the bare relay: every heartbeat is answered', async (t) => {
  const results = await runBench({
    ...quickOptions(),
    scenarios: ['idle'],
    kinds: ['ours', 'socketio', 'bare'],
    idleChats: 2,
    idleHeartbeatsMs: [200],
    idleCpuSeconds: 1,
    pin: false,
  })
  t.same(
    results.idle.map((r) => r.kind),
    ['ours', 'socketio', 'bare'],
  )
  for (const idle of results.idle) {
    t.equal(idle.sockets, 4, `${idle.kind}: two chats, two sockets each`)
    t.equal(idle.heartbeatMs, 200)
    t.ok(idle.pongsPerSecond > 0, `${idle.kind}: the server pinged and the generator answered`)
    for (const key of ['rssPerSocket', 'heapPerSocket', 'rssPerSocketIdle', 'heapPerSocketIdle', 'serverCpuPercent', 'generatorCpuPercent'] as const) {
      t.ok(Number.isFinite(idle[key]), `${idle.kind}: ${key} is a number`)
    }
  }
  t.equal(results.idle[2]!.redisCpuPercent, 0, 'the bare relay has no Redis')
  t.match(summaryTable(results), /Idle chats[^]*socketio[^]*bare/)
  for (const idle of results.idle) {
    t.type(idle.valid, 'boolean')
    t.equal(idle.valid, idle.notes.length === 0, `${idle.kind}: invalid exactly when there is a reason`)
  }
  // A run the generator limited is reported as such, with the reason.
  const limited = { ...results, idle: [{ ...results.idle[0]!, valid: false, notes: ['generator CPU 97% of a core'] }] }
  t.match(summaryTable(limited), /ours 200 ms INVALID \(the generator limited it\): generator CPU 97% of a core/)
})

// The queue fan-out: every agent gets every visitor's UserJoined and RemoveUser,
// the first agent no later than the last.
t.test('a quick fan-out: every agent sees each visitor joined and claimed', async (t) => {
  const results = await runBench({ ...quickOptions(), scenarios: ['fanout'], fanoutAgents: 5, fanoutVisitors: 4, pin: false })
  const fanout = results.fanout!
  t.equal(fanout.agents, 5)
  t.equal(fanout.visitors, 4)
  t.equal(fanout.timeouts, 0, 'no round waited 5 s for an agent')
  for (const [first, last] of [
    [fanout.joinToFirstAgentMs, fanout.joinToLastAgentMs],
    [fanout.claimToFirstAgentMs, fanout.claimToLastAgentMs],
  ] as const) {
    t.equal(last.count, 4, 'one latency per visitor')
    t.equal(first.count, 4)
    t.ok(first.p50 > 0 && first.max <= last.max, 'the first agent is reached no later than the last')
  }
  t.match(summaryTable(results), /Queue fan-out: 5 agents[^]*JoinUser → RemoveUser/)
  t.equal(fanout.valid, fanout.notes.length === 0, 'invalid exactly when there is a reason')
  t.notMatch(fanout.notes.join(), /did not reach every agent/, 'no round timed out')
})
