import { randomBytes } from 'node:crypto'

/**
 * WebSocket frames byte by byte, for the raw client (raw-socket.ts): a test
 * can build what no real client library would (unmasked frames, reserved
 * bits and opcodes, lying lengths, broken UTF-8, …).
 */

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const

/** A frame to write, field by field. Every field can be wrong on purpose. */
export interface FrameSpec {
  /** @default true */
  fin?: boolean
  rsv1?: boolean
  rsv2?: boolean
  rsv3?: boolean
  /** 4 bits; anything 0x0..0xF, reserved ones included. */
  opcode: number
  /**
   * true (default): a random masking key, as every client frame must have;
   * a Buffer: that 4-byte key; false: unmasked (a protocol error from a client).
   */
  mask?: boolean | Buffer
  payload?: Buffer | string
  /**
   * The payload length to put in the header instead of the real one. Its
   * encoding (7-bit, 16-bit or 64-bit) follows the value unless
   * `lengthEncoding` says otherwise. Only the real payload is written.
   */
  lengthOverride?: number | bigint
  /** Force the length encoding: 7 (0..125), 16 (126 + 2 bytes) or 64 (127 + 8 bytes). */
  lengthEncoding?: 7 | 16 | 64
}

/** The bytes of one frame. */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0))
  const declared = BigInt(spec.lengthOverride ?? payload.length)
  const encoding = spec.lengthEncoding ?? (declared < 126n ? 7 : declared < 65536n ? 16 : 64)
  const maskKey = spec.mask === false ? null : Buffer.isBuffer(spec.mask) ? spec.mask : randomBytes(4)
  if (maskKey !== null && maskKey.length !== 4) throw new Error('a masking key is 4 bytes')

  const head = Buffer.alloc(2 + (encoding === 16 ? 2 : encoding === 64 ? 8 : 0))
  head[0] =
    ((spec.fin ?? true) ? 0x80 : 0) |
    (spec.rsv1 ? 0x40 : 0) |
    (spec.rsv2 ? 0x20 : 0) |
    (spec.rsv3 ? 0x10 : 0) |
    (spec.opcode & 0x0f)
  const maskBit = maskKey === null ? 0 : 0x80
  if (encoding === 7) {
    if (declared > 125n) throw new Error('a 7-bit length is at most 125')
    head[1] = maskBit | Number(declared)
  } else if (encoding === 16) {
    if (declared > 0xffffn) throw new Error('a 16-bit length is at most 65535')
    head[1] = maskBit | 126
    head.writeUInt16BE(Number(declared), 2)
  } else {
    head[1] = maskBit | 127
    head.writeBigUInt64BE(BigInt.asUintN(64, declared), 2)
  }
  if (maskKey === null) return Buffer.concat([head, payload])
  const masked = Buffer.alloc(payload.length)
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ maskKey[i & 3]!
  return Buffer.concat([head, maskKey, masked])
}

/** The payload of a close frame: a 2-byte code and a UTF-8 reason (or raw bytes). */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const head = Buffer.alloc(2)
  head.writeUInt16BE(code)
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason) : reason])
}

/**
 * One data message cut into `pieces` frames: the first with `opcode` and
 * FIN clear, then continuation frames, the last with FIN set. Cuts fall at
 * byte positions, so a multi-byte character may be split between frames
 * (which is legal). `extra` applies to every frame (e.g. `mask: false`).
 */
export function fragments(
  payload: Buffer | string,
  pieces: number | number[],
  opcode: number = Opcode.TEXT,
  extra: Omit<FrameSpec, 'opcode' | 'payload' | 'fin'> = {},
): FrameSpec[] {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload
  let sizes: number[]
  if (Array.isArray(pieces)) {
    sizes = pieces
  } else {
    const size = Math.ceil(bytes.length / pieces)
    sizes = Array.from({ length: pieces }, (_, i) => Math.max(0, Math.min(size, bytes.length - i * size)))
  }
  if (sizes.reduce((a, b) => a + b, 0) !== bytes.length) throw new Error('fragment sizes do not add up to the payload')
  const specs: FrameSpec[] = []
  let at = 0
  sizes.forEach((size, i) => {
    specs.push({ ...extra, opcode: i === 0 ? opcode : Opcode.CONTINUATION, fin: i === sizes.length - 1, payload: bytes.subarray(at, at + size) })
    at += size
  })
  return specs
}

/** One frame as the server sent it. */
export interface ReceivedFrame {
  fin: boolean
  rsv1: boolean
  rsv2: boolean
  rsv3: boolean
  opcode: number
  masked: boolean
  payload: Buffer
}
