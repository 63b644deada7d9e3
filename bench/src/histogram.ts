import { build, type Histogram } from 'hdr-histogram-js'

/** Latency figures in milliseconds. */
export interface LatencySummary {
  count: number
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** An HDR histogram of durations recorded in microseconds (3 significant digits, up to 10 min). */
export function latencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, autoResize: true })
}

/** Records a duration given in milliseconds. */
export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(ms < 0.001 ? 1 : Math.round(ms * 1000))
}

const round = (us: number) => Math.round(us) / 1000

export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0, mean: 0 }
  return {
    count: histogram.totalCount,
    p50: round(histogram.getValueAtPercentile(50)),
    p99: round(histogram.getValueAtPercentile(99)),
    p999: round(histogram.getValueAtPercentile(99.9)),
    max: round(histogram.maxValue),
    mean: round(histogram.mean),
  }
}
