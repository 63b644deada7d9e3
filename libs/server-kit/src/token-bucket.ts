/** A monotonic clock: a wall-clock step back must not lock a socket out. One function for every bucket. */
const monotonic = (): number => performance.now()

/**
 * A token bucket: `burst` tokens, refilled at `perSecond`. Each frame takes
 * one; a frame that finds the bucket empty is refused. Refusals are counted
 * so that sustained abuse can be told from a short burst.
 */
export class TokenBucket {
  #tokens: number
  #last: number
  #refusedInRow = 0

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = monotonic,
  ) {
    this.#tokens = burst
    this.#last = now()
  }

  /** Takes a token: true if the frame may proceed. */
  take(): boolean {
    const now = this.now()
    const elapsed = Math.max(0, now - this.#last)
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed / 1000) * this.perSecond)
    this.#last = now
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      this.#refusedInRow = 0
      return true
    }
    this.#refusedInRow++
    return false
  }

  /** Frames refused since the last one that was let through. */
  get refusedInRow(): number {
    return this.#refusedInRow
  }
}
