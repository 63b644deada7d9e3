/** ISO-8601 UTC with fractional seconds (milliseconds), server time: `2023-10-22T18:18:59.360Z`. */
export function nowTimestamp(): string {
  return new Date().toISOString()
}

/** Milliseconds since the epoch on the Redis clock, the one clock every instance agrees on. */
export function redisMillis(time: readonly (string | number)[]): number {
  return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
}
