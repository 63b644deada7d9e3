import t from 'tap'
import { heartbeatSlots } from '@switchboard/server-kit'

t.test('the heartbeat interval is split into whole-millisecond ticks of at least 5 ms, at most 20 per interval', async (t) => {
  t.equal(heartbeatSlots(1000), 20, '1 s: 20 ticks of 50 ms')
  t.equal(heartbeatSlots(50), 10, '50 ms: 10 ticks of 5 ms')
  t.equal(heartbeatSlots(10), 2, 'the shortest interval allowed: 2 ticks of 5 ms')
  t.equal(heartbeatSlots(1009), 1, 'a prime interval is not split: every socket still gets one ping per interval')
  for (const interval of [10, 11, 37, 50, 99, 250, 1000, 1001, 1009, 4096, 30_000, 600_000]) {
    const slots = heartbeatSlots(interval)
    t.ok(slots >= 1 && slots <= 20, `${interval} ms: ${slots} slots`)
    t.equal(interval % slots, 0, `${interval} ms: S ticks make exactly one interval`)
    t.ok(slots === 1 || interval / slots >= 5, `${interval} ms: ticks of ${interval / slots} ms`)
  }
})
