import type { WebSocket } from 'ws'
import { PING, PONGS } from '@switchboard/protocol'
import { writeFrameBytes } from './private-apis.js'

/**
 * Text frames as bytes, built once: a frame sent to many sockets is encoded
 * once, the heartbeat's `ping` once for good, and a pong is recognised
 * from its bytes without decoding it.
 */

/** `ping`, encoded once: every heartbeat sends these same bytes, as a text frame. */
const PING_FRAME = Buffer.from(PING)
const TEXT_FRAME = { binary: false } as const
/** The whole WebSocket frame of `ping` as a server sends it: FIN + text opcode, unmasked, its length, the text. */
const PING_WIRE = textFrameBytes(PING)
/** The pongs as bytes, so a pong is recognised without decoding it. */
const PONG_BYTES = Object.values(PONGS).map((pong) => Buffer.from(pong))

/** Sends `ping` (not counted as a frame sent, as before). */
export function sendPing(socket: WebSocket): void {
  if (!writeFrameBytes(socket, PING_WIRE)) socket.send(PING_FRAME, TEXT_FRAME)
}

/**
 * A text frame as a server writes it (RFC 6455 §5.2): FIN and the text
 * opcode, no mask, the payload's length in 7, 16 or 64 bits, then the text
 * as UTF-8 — byte for byte what ws writes for `send(text)`.
 */
export function textFrameBytes(text: string): Buffer {
  const length = Buffer.byteLength(text)
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10
  const wire = Buffer.allocUnsafe(header + length)
  wire[0] = 0x81
  if (header === 2) wire[1] = length
  else if (header === 4) {
    wire[1] = 126
    wire.writeUInt16BE(length, 2)
  } else {
    wire[1] = 127
    wire.writeUInt32BE(Math.floor(length / 0x100000000), 2)
    wire.writeUInt32BE(length >>> 0, 6)
  }
  wire.write(text, header, 'utf8')
  return wire
}

/** Frames up to this size are kept as the last frame's bytes; a larger one (a long history) goes to one socket only. */
const MAX_SHARED_FRAME_BYTES = 16 * 1024

/**
 * The last text frame sent, as bytes. A frame that goes to many sockets (a
 * queue event to every agent, a chat message to both participants) is sent
 * to them one right after another as the very same string: it is encoded
 * once, and each socket gets the same bytes.
 */
let lastText: string | undefined
let lastWire: Buffer = Buffer.alloc(0)

export function wireOf(text: string): Buffer {
  if (text === lastText) return lastWire
  const wire = textFrameBytes(text)
  if (wire.length <= MAX_SHARED_FRAME_BYTES) {
    lastText = text
    lastWire = wire
  }
  return wire
}

/** True for `pong:user` / `pong:support`, read from the frame's bytes. */
export function isPongFrame(data: unknown): boolean {
  if (!Buffer.isBuffer(data)) return false
  for (const pong of PONG_BYTES) if (data.length === pong.length && data.equals(pong)) return true
  return false
}
