import t from 'tap'
import { TokenBucket } from '@switchboard/server-kit'

/** A clock the test moves by hand: no sleeps, no real time. */
function fakeClock(start = 1_000_000) {
  let now = start
  return {
    now: () => now,
    advance(ms: number) {
      now += ms
    },
    set(ms: number) {
      now = ms
    },
  }
}

/** Takes `n` tokens; how many were let through. */
function takeMany(bucket: TokenBucket, n: number): number {
  let ok = 0
  for (let i = 0; i < n; i++) if (bucket.take()) ok++
  return ok
}

t.test('a new bucket is full: exactly `burst` frames pass at once, the next is refused', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(5, 1, clock.now)
  for (let i = 0; i < 5; i++) t.equal(bucket.take(), true, `frame ${i + 1} of the burst passes`)
  t.equal(bucket.take(), false, 'frame 6 is refused')
  t.equal(bucket.refusedInRow, 1)
})

t.test('tokens come back at perSecond, pro rata', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(3, 2, clock.now)
  t.equal(takeMany(bucket, 3), 3)
  t.equal(bucket.take(), false, 'empty')

  clock.advance(499) // 0.998 tokens: not yet a whole one
  t.equal(bucket.take(), false, 'just under one token is not enough')
  clock.advance(1) // 1.0 token (the refused take kept the fraction)
  t.equal(bucket.take(), true, 'a whole token after 500 ms at 2/s')
  t.equal(bucket.take(), false, 'and only one')

  clock.advance(1000) // 2 tokens
  t.equal(takeMany(bucket, 5), 2, '1 s at 2/s gives two frames')
})

t.test('a fractional rate: 0.5 per second is one frame every 2 s', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(1, 0.5, clock.now)
  t.equal(bucket.take(), true)
  clock.advance(1999)
  t.equal(bucket.take(), false)
  clock.advance(1)
  t.equal(bucket.take(), true)
})

t.test('the bucket never holds more than `burst`, however long it rests', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(4, 10, clock.now)
  t.equal(takeMany(bucket, 4), 4)
  clock.advance(3_600_000)
  t.equal(takeMany(bucket, 100), 4, 'an hour of rest refills to burst, not 36 000')
})

t.test('no time passing means no refill, however many frames are tried', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(2, 1000, clock.now)
  t.equal(takeMany(bucket, 1000), 2, 'a fast rate does not help within the same millisecond')
})

t.test('refusedInRow counts refusals since the last frame let through, and resets', async (t) => {
  const clock = fakeClock()
  const bucket = new TokenBucket(1, 1, clock.now)
  t.equal(bucket.refusedInRow, 0, 'zero at start')
  t.equal(bucket.take(), true)
  t.equal(bucket.refusedInRow, 0)
  for (let i = 1; i <= 7; i++) {
    t.equal(bucket.take(), false)
    t.equal(bucket.refusedInRow, i, `refusal ${i} counted`)
  }
  clock.advance(1000)
  t.equal(bucket.take(), true, 'a token again')
  t.equal(bucket.refusedInRow, 0, 'a frame let through resets the count')
  t.equal(bucket.take(), false)
  t.equal(bucket.refusedInRow, 1, 'counting starts over')
})

t.test('the clock is read through the injected function, at construction and on each take', async (t) => {
  let calls = 0
  const clock = fakeClock()
  const bucket = new TokenBucket(1, 1, () => {
    calls++
    return clock.now()
  })
  t.equal(calls, 1, 'read once when made')
  bucket.take()
  bucket.take()
  t.equal(calls, 3, 'read once per take')
})

t.test('a wall clock that steps back (NTP) does not lock a socket out', async (t) => {
  const clock = fakeClock(10_000_000)
  const bucket = new TokenBucket(5, 1, clock.now)
  t.equal(takeMany(bucket, 5), 5)
  // The system clock is corrected one hour back, then runs on normally.
  clock.set(10_000_000 - 3_600_000)
  bucket.take()
  clock.advance(5000)
  t.equal(
    takeMany(bucket, 5),
    5,
    'after 5 s of real time the bucket is full again (5 at 1/s)',
  )
})
