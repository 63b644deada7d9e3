import { WebSocket } from 'ws'
import { Errors } from '@switchboard/protocol'
import { sendPing } from './text-frames.js'

/** At most this many heartbeat slots: each tick of the one timer pings one slot. */
const MAX_HEARTBEAT_SLOTS = 20
/** Ticks closer than this cost more in timer overhead than they save (timers have 1 ms resolution). */
const MIN_HEARTBEAT_TICK_MS = 5

/**
 * How many slots the sockets are spread over so that a tick pings 1/S of
 * them, not all at once: the most (up to 20) that divide the interval into
 * whole milliseconds of at least 5 ms, so every socket is still pinged
 * exactly once per interval. 1 when none does (e.g. a prime interval).
 */
export function heartbeatSlots(intervalMs: number): number {
  for (let slots = MAX_HEARTBEAT_SLOTS; slots > 1; slots--) {
    if (intervalMs % slots === 0 && intervalMs / slots >= MIN_HEARTBEAT_TICK_MS) return slots
  }
  return 1
}

/** What the heartbeat needs of a served socket. */
export interface HeartbeatSocket {
  readonly socket: WebSocket
  readonly lastSeen: number
}

/**
 * One timer for every socket, ticking S times per interval (S = the number
 * of slots, from {@link heartbeatSlots}): each tick pings one slot and closes
 * its idle sockets (4408), so 20,000 sockets cost 20,000/S sends per tick
 * rather than one burst of 20,000 per interval. Each socket is still visited
 * once per interval, as with one big tick. The timer does not hold the process.
 */
export function startHeartbeat(slots: readonly Set<HeartbeatSocket>[], intervalMs: number, idleTimeoutMs: number): NodeJS.Timeout {
  let tick = 0
  const heartbeat = setInterval(() => {
    const slot = slots[tick]!
    tick = (tick + 1) % slots.length
    const now = Date.now()
    // forEach, not for…of: no iterator result per socket per tick.
    slot.forEach((served) => {
      const socket = served.socket
      if (now - served.lastSeen >= idleTimeoutMs) {
        socket.close(Errors.IDLE_TIMEOUT.closeCode, 'idle timeout')
        slot.delete(served)
      } else if (socket.readyState === WebSocket.OPEN) {
        sendPing(socket)
      }
    })
  }, intervalMs / slots.length)
  heartbeat.unref()
  return heartbeat
}
