import type { BenchResults, Comparison, RelayResult } from './index.js'
import { P99_LIMIT_MS } from './relay.js'
import type { LatencySummary } from './histogram.js'

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)))
  return cells.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n')
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

function relayRows(results: RelayResult[]): string[][] {
  const rows = [['server', 'offered/s', 'sent/s', 'delivered/sent', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'server CPU', 'CPU ms/1k', 'Redis ms/1k', 'syscalls/msg', 'gen CPU', 'result']]
  for (const r of results) {
    for (const s of r.steps) {
      rows.push([
        r.label,
        String(s.offered),
        String(s.achieved),
        `${s.delivered}/${s.sent}`,
        ms(s.latencyMs.p50),
        ms(s.latencyMs.p99),
        ms(s.latencyMs.p999),
        ms(s.latencyMs.max),
        `${s.server.cpuPercent.toFixed(0)}%`,
        s.server.cpuMsPer1k.toFixed(1),
        s.server.redisCpuMsPer1k.toFixed(1),
        `${s.server.syscallsPerMessage.toFixed(1)}+${s.server.redisSyscallsPerMessage.toFixed(1)}`,
        `${s.generator.cpuPercent.toFixed(0)}%`,
        s.passed ? 'pass' : s.valid ? 'FAIL' : 'INVALID',
      ])
    }
  }
  return rows
}

export function ceilingText(r: RelayResult): string {
  if (r.ceiling === null) return `${r.label}: none (${r.steps[0]?.offered} msg/s failed)`
  const last = r.steps.at(-1)!
  if (r.stoppedBy === 'steps') return `${r.label}: ≥ ${r.ceiling} msg/s (every step passed)`
  if (r.stoppedBy === 'generator') return `${r.label}: ≥ ${r.ceiling} msg/s (the generator could not drive ${last.offered})`
  return `${r.label}: ${r.ceiling} msg/s (${last.offered} failed: ${last.notes.join('; ')})`
}

function comparisonText(name: string, c: Comparison, ours: RelayResult): string {
  const lowerBound = ours.stoppedBy !== 'server' ? '≥ ' : ''
  const parts = [`ceiling ${c.ceilingRatio === null ? 'n/a' : `${lowerBound}${c.ceilingRatio}×`}`]
  if (c.cpuRatioAt !== null) parts.push(`server CPU per message at ${c.cpuRatioAt} msg/s ${c.cpuPer1kRatio}× (with Redis ${c.cpuWithRedisPer1kRatio}×)`)
  return `ours ÷ ${name}: ${parts.join(', ')}`
}

/** The summary printed on stdout. */
export function summaryTable(results: BenchResults): string {
  const out: string[] = []
  const o = results.options
  const m = results.machine
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${m.redis.split(' ').slice(0, 3).join(' ')}; ` +
      `${m.pinned ? 'servers and Redis on core 0, generator on core 1' : 'not pinned'}; commit ${m.commit ?? '?'}${m.dirty ? ' (uncommitted changes)' : ''}`,
  )
  if (results.relay.length > 0) {
    out.push('', `Relay: ${o.pairs} visitor–agent pairs, ${o.stepSeconds} s per step; latency from the scheduled send to receipt at the other side`)
    out.push(pad(relayRows(results.relay)))
    out.push('', `Ceilings (highest step with p99 ≤ ${P99_LIMIT_MS} ms and nothing lost):`)
    for (const r of results.relay) out.push(`  ${ceilingText(r)}`)
    const ours = results.relay.find((r) => r.kind === 'ours')
    for (const [name, c] of Object.entries(results.comparisons)) if (c && ours) out.push(`  ${comparisonText(name, c, ours)}`)
  }
  if (results.target) {
    const s = results.target.steps[0]
    out.push('', `Target: ${o.targetRate} msg/s over ${o.targetChats} chats on one instance, p99 ≤ 5 ms`)
    out.push(pad(relayRows([results.target])))
    out.push(`  ${results.target.met ? 'met' : 'missed'} (p99 ${s ? ms(s.latencyMs.p99) : '?'} ms)`)
  }
  if (results.idle.length > 0) {
    out.push('', 'Idle chats (a visitor and an agent socket each, answering heartbeats); memory after a full GC, once the sockets opened | after the CPU window')
    const rows = [['server', 'heartbeat', 'sockets', 'pongs/s', 'RSS/socket', 'heap/socket', 'RSS before→after', 'server CPU', 'Redis CPU', 'gen CPU', 'result']]
    for (const r of results.idle) {
      rows.push([
        r.kind,
        `${r.heartbeatMs} ms`,
        String(r.sockets),
        String(r.pongsPerSecond),
        `${(r.rssPerSocket / 1024).toFixed(1)} | ${(r.rssPerSocketIdle / 1024).toFixed(1)} KB`,
        `${(r.heapPerSocket / 1024).toFixed(1)} | ${(r.heapPerSocketIdle / 1024).toFixed(1)} KB`,
        `${r.rssBeforeMb}→${r.rssAfterMb} MB`,
        `${r.serverCpuPercent}%`,
        `${r.redisCpuPercent}%`,
        `${r.generatorCpuPercent}%`,
        r.valid ? 'ok' : 'INVALID',
      ])
    }
    out.push(pad(rows))
    for (const r of results.idle) if (!r.valid) out.push(`  ${r.kind} ${r.heartbeatMs} ms INVALID (the generator limited it): ${r.notes.join('; ')}`)
  }
  if (results.fanout) {
    const f = results.fanout
    out.push('', `Queue fan-out: ${f.agents} agents on /users, ${f.visitors} visitors one at a time (latency to the first and to the last agent)`)
    const rows = [['event', 'first p50 ms', 'first p99 ms', 'last p50 ms', 'last p99 ms', 'last max ms']]
    const row = (event: string, first: LatencySummary, last: LatencySummary) =>
      rows.push([event, ms(first.p50), ms(first.p99), ms(last.p50), ms(last.p99), ms(last.max)])
    row('Join → UserJoined', f.joinToFirstAgentMs, f.joinToLastAgentMs)
    row('JoinUser → RemoveUser', f.claimToFirstAgentMs, f.claimToLastAgentMs)
    out.push(pad(rows))
    out.push(`  timeouts ${f.timeouts}; CPU: ChatServer ${f.serverCpuPercent}%, Subscriber ${f.subscriberCpuPercent}%, Redis ${f.redisCpuPercent}%; generator ${f.generatorCpuPercent}%`)
    if (!f.valid) out.push(`  INVALID (the generator limited it): ${f.notes.join('; ')}`)
  }
  if (results.twoInstances) {
    out.push('', 'Two instances: visitor on one ChatServer, agent on another, one Redis (all on the servers\' core)')
    out.push(pad(relayRows([results.twoInstances])))
    out.push(`  ${ceilingText(results.twoInstances)}`)
  }
  return out.join('\n')
}

const COLORS: Record<string, string> = { ours: '#1f6feb', socketio: '#d1242f', bare: '#6e7781', two: '#1a7f37' }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

/**
 * Latency percentiles against offered load, one colour per server kind: p99
 * solid, p50 dashed, both axes logarithmic, the 50 ms limit marked.
 */
export function chartSvg(results: BenchResults): string {
  const series = [...results.relay, ...(results.twoInstances ? [results.twoInstances] : [])].filter((r) => r.steps.length > 0)
  const width = 760
  const height = 440
  const left = 70
  const right = 190
  const top = 40
  const bottom = 60
  const plotW = width - left - right
  const plotH = height - top - bottom
  const loads = series.flatMap((r) => r.steps.map((s) => s.offered))
  const xMin = Math.min(...loads, 1000)
  const xMax = Math.max(...loads, xMin * 2)
  const lats = series.flatMap((r) => r.steps.flatMap((s) => [s.latencyMs.p50, s.latencyMs.p99])).map((v) => Math.max(v, 0.1))
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...lats, 1)))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...lats, P99_LIMIT_MS * 2)))
  const x = (v: number) => left + ((Math.log10(v) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * plotW
  const y = (v: number) => top + plotH - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  parts.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">Relay latency against offered load (${results.options.pairs} pairs, ${results.machine.cores} cores)</text>`,
  )
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    const v = 10 ** e
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`)
    parts.push(`<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toFixed(1)}</text>`)
  }
  for (const v of [...new Set(loads)].sort((a, b) => a - b)) {
    parts.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>`)
    parts.push(`<text x="${x(v)}" y="${top + plotH + 18}" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`)
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`)
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(P99_LIMIT_MS)}" y2="${y(P99_LIMIT_MS)}" stroke="#bf8700" stroke-dasharray="2 3"/>`)
  parts.push(`<text x="${left + plotW - 4}" y="${y(P99_LIMIT_MS) - 5}" text-anchor="end" fill="#bf8700">${P99_LIMIT_MS} ms</text>`)
  parts.push(`<text x="${left + plotW / 2}" y="${height - 18}" text-anchor="middle">offered load, messages/s (log)</text>`)
  parts.push(`<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">latency, ms (log)</text>`)
  series.forEach((r, i) => {
    const color = COLORS[r.instances > 1 ? 'two' : r.kind] ?? '#000'
    for (const [key, dash] of [['p99', ''], ['p50', ' stroke-dasharray="5 4"']] as const) {
      const points = r.steps.map((s) => `${x(s.offered).toFixed(1)},${y(s.latencyMs[key]).toFixed(1)}`)
      parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
      for (const s of r.steps) {
        const fill = s.passed ? color : '#fff'
        parts.push(`<circle cx="${x(s.offered).toFixed(1)}" cy="${y(s.latencyMs[key]).toFixed(1)}" r="3" fill="${fill}" stroke="${color}"/>`)
      }
    }
    const ly = top + 10 + i * 38
    parts.push(`<line x1="${left + plotW + 14}" x2="${left + plotW + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`)
    parts.push(`<text x="${left + plotW + 46}" y="${ly + 4}">${esc(r.label)} p99</text>`)
    parts.push(`<line x1="${left + plotW + 14}" x2="${left + plotW + 40}" y1="${ly + 16}" y2="${ly + 16}" stroke="${color}" stroke-width="2" stroke-dasharray="5 4"/>`)
    parts.push(`<text x="${left + plotW + 46}" y="${ly + 20}">${esc(r.label)} p50</text>`)
  })
  const ly = top + 10 + series.length * 38
  parts.push(`<text x="${left + plotW + 14}" y="${ly + 4}" fill="#555">hollow: step failed</text>`)
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
