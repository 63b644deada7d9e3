/** One scrape of `/metrics`: each sample by name and labels. */
export interface Scrape {
  /** The exposition as served. */
  text: string
  /** A sample's value; 0 when the series is not there (a counter never moved). */
  value(name: string, labels?: Record<string, string>): number
  /** Whether the series is there. */
  has(name: string, labels?: Record<string, string>): boolean
  /** Lines that are neither comments nor `name{labels} value` samples: empty when the exposition parses. */
  malformed: string[]
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
  return `${name}{${parts.join(',')}}`
}

/** Parses Prometheus text exposition (as prom-client writes it). */
export function parseMetrics(text: string): Scrape {
  const samples = new Map<string, number>()
  const malformed: string[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) {
      malformed.push(line)
      continue
    }
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k!] = JSON.parse(`"${v}"`) as string
    // Prometheus reads NaN and Inf in any case (prom-client writes `Nan`).
    const raw = m[3]!.toLowerCase()
    const value = raw === 'nan' ? Number.NaN : raw === '+inf' || raw === 'inf' ? Infinity : raw === '-inf' ? -Infinity : Number(raw)
    if (raw !== 'nan' && Number.isNaN(value)) malformed.push(line)
    samples.set(seriesKey(m[1]!, labels), value)
  }
  return {
    text,
    malformed,
    value: (name, labels = {}) => samples.get(seriesKey(name, labels)) ?? 0,
    has: (name, labels = {}) => samples.has(seriesKey(name, labels)),
  }
}

/** How far each series moved between two scrapes. */
export function metricsDelta(before: Scrape, after: Scrape): (name: string, labels?: Record<string, string>) => number {
  return (name, labels) => after.value(name, labels) - before.value(name, labels)
}

/** GET `${base}/metrics`, parsed; throws unless it answers 200 in Prometheus text format. */
export async function scrapeMetrics(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`)
  const text = await res.text()
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text}`)
  if (!res.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`/metrics content-type ${res.headers.get('content-type')}`)
  return parseMetrics(text)
}
