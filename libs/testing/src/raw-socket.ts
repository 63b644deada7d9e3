import { connect, type Socket } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'

/**
 * A raw WebSocket client over node:net, in the style of ws's own tests: it
 * does the HTTP/1.1 Upgrade handshake itself and writes frames built byte by
 * byte, so a test can send what no real client library would (unmasked
 * frames, reserved bits and opcodes, lying lengths, broken UTF-8, …) and see
 * exactly what the server answers and how it closes.
 */

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

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

/** A whole data message (fragments joined). `text` is set for text messages. */
export interface RawMessage {
  binary: boolean
  data: Buffer
  text?: string
}

export interface CloseInfo {
  /** The code of the server's close frame; 1005 for a close frame without one; null when no close frame came before the TCP connection ended. */
  code: number | null
  reason: string
}

export interface RawConnectOptions {
  /**
   * Extra request headers, or replacements for the handshake's own (Host,
   * Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version); null
   * leaves a header out.
   */
  headers?: Record<string, string | null>
  /** Answer the server's heartbeat `ping` text frames with this text. @default null (do not answer) */
  pong?: string | null
  /** Reply to the server's close frame with a close frame (as RFC 6455 says). @default true */
  echoClose?: boolean
  /** For the handshake. @default 5000 */
  timeoutMs?: number
}

/** What the server answered to the Upgrade request. */
export interface HandshakeResult {
  status: number
  statusText: string
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>
  /** The response body, when the upgrade was refused. */
  body: string
  /** The open socket after a 101, otherwise null. */
  socket: RawSocket | null
}

/** The server answered the Upgrade with something other than 101. */
export class UpgradeRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    readonly body: string,
  ) {
    super(`upgrade refused: HTTP ${status} ${body.slice(0, 200)}`)
    this.name = 'UpgradeRefusedError'
  }
}

/**
 * Performs the Upgrade handshake and resolves with the server's answer: the
 * status always (101, 401, 403, 429, …), and an open {@link RawSocket} after
 * a valid 101 (the Sec-WebSocket-Accept is checked; a wrong one rejects).
 */
export function rawHandshake(url: string, opts: RawConnectOptions = {}): Promise<HandshakeResult> {
  const target = new URL(url)
  if (target.protocol !== 'ws:' && target.protocol !== 'http:') throw new Error(`only ws:// is supported: ${url}`)
  const port = Number(target.port || 80)
  const key = randomBytes(16).toString('base64')
  const headers: Record<string, string | null> = {
    Host: target.host,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  }
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    const existing = Object.keys(headers).find((h) => h.toLowerCase() === name.toLowerCase())
    if (existing !== undefined) delete headers[existing]
    headers[name] = value
  }
  const sentKey = Object.entries(headers).find(([h]) => h.toLowerCase() === 'sec-websocket-key')?.[1] ?? null
  const request =
    `GET ${target.pathname}${target.search} HTTP/1.1\r\n` +
    Object.entries(headers)
      .filter((entry): entry is [string, string] => entry[1] !== null)
      .map(([h, v]) => `${h}: ${v}\r\n`)
      .join('') +
    '\r\n'

  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.hostname.replace(/^\[|\]$/g, ''), port })
    socket.setNoDelay(true)
    let buffered = Buffer.alloc(0)
    let head: { status: number; statusText: string; headers: Record<string, string> } | undefined
    let settled = false
    const timer = setTimeout(() => fail(new Error(`handshake with ${url} timed out after ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000)

    const cleanup = () => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', fail)
      socket.off('close', onEnd)
    }
    function fail(err: Error) {
      if (settled) return
      settled = true
      cleanup()
      socket.destroy()
      reject(err)
    }
    const finishRefused = () => {
      if (settled || head === undefined) return
      settled = true
      cleanup()
      socket.destroy()
      resolve({ ...head, body: buffered.toString(), socket: null })
    }
    function onEnd() {
      if (head !== undefined) finishRefused()
      else fail(new Error(`connection closed during the handshake: ${JSON.stringify(buffered.toString().slice(0, 200))}`))
    }
    function onData(chunk: Buffer) {
      buffered = Buffer.concat([buffered, chunk])
      if (head === undefined) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) {
          if (buffered.length > 65536) fail(new Error('response head too long'))
          return
        }
        const lines = buffered.subarray(0, end).toString('latin1').split('\r\n')
        buffered = buffered.subarray(end + 4)
        const status = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '')
        if (status === null) return fail(new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`))
        const parsed: Record<string, string> = {}
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':')
          if (colon <= 0) continue
          const name = line.slice(0, colon).trim().toLowerCase()
          const value = line.slice(colon + 1).trim()
          parsed[name] = parsed[name] === undefined ? value : `${parsed[name]}, ${value}`
        }
        head = { status: Number(status[1]), statusText: status[2] ?? '', headers: parsed }
        if (head.status === 101) {
          const expected = createHash('sha1').update(`${sentKey ?? ''}${WS_GUID}`).digest('base64')
          if (!/^websocket$/i.test(parsed.upgrade ?? '')) return fail(new Error(`101 without "Upgrade: websocket": ${JSON.stringify(parsed)}`))
          if (!/(^|,)\s*upgrade\s*(,|$)/i.test(parsed.connection ?? '')) return fail(new Error(`101 without "Connection: Upgrade": ${JSON.stringify(parsed)}`))
          if (parsed['sec-websocket-accept'] !== expected) {
            return fail(new Error(`wrong Sec-WebSocket-Accept ${JSON.stringify(parsed['sec-websocket-accept'])}, expected ${expected}`))
          }
          settled = true
          cleanup()
          const raw = new RawSocket(socket, opts)
          resolve({ ...head, body: '', socket: raw })
          // Bytes that came with the response head are the first frames.
          if (buffered.length > 0) raw.feed(buffered)
          return
        }
      }
      const length = Number(head.headers['content-length'])
      if (Number.isFinite(length) && buffered.length >= length) {
        buffered = buffered.subarray(0, length)
        finishRefused()
      }
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    socket.on('error', fail)
    socket.write(request)
  })
}

/** A raw socket after a 101; rejects with {@link UpgradeRefusedError} (its `status`) for any other answer. */
export async function rawConnect(url: string, opts: RawConnectOptions = {}): Promise<RawSocket> {
  const result = await rawHandshake(url, opts)
  if (result.socket === null) throw new UpgradeRefusedError(result.status, result.headers, result.body)
  return result.socket
}

type Waiter = { predicate: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/** An open WebSocket connection driven byte by byte. */
export class RawSocket {
  /** Every frame the server sent, in order (heartbeat pings and close frames included). */
  readonly frames: ReceivedFrame[] = []
  /** Whole data messages, in order, without the heartbeat `ping` texts. */
  readonly messages: RawMessage[] = []
  /** Heartbeat `ping` texts received. */
  pings = 0
  /** The server's close frame, once it came. */
  closeFrame: CloseInfo | undefined
  /** Anything wrong in what the server sent (masked frames, bad UTF-8, …); a correct server leaves it empty. */
  readonly serverErrors: string[] = []
  /** Resolves when the TCP connection has closed, with the server's close code (null if it sent none). Never rejects. */
  readonly closed: Promise<CloseInfo>
  /** True once the TCP connection is closed. */
  isClosed = false

  #buffer: Buffer = Buffer.alloc(0)
  #fragments: Buffer[] | undefined
  #fragmentOpcode = 0
  /** Messages before this index are all taken by `next`. */
  #consumed = 0
  #taken = new WeakSet<RawMessage>()
  #waiters: Waiter[] = []
  #stopped = false
  readonly #opts: RawConnectOptions

  constructor(
    readonly socket: Socket,
    opts: RawConnectOptions = {},
  ) {
    this.#opts = opts
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true
        for (const w of this.#waiters.splice(0)) {
          clearTimeout(w.timer)
          w.reject(new Error(`connection closed (close frame ${this.closeFrame?.code ?? 'none'}) while waiting for a message`))
        }
        resolve(this.closeFrame ?? { code: null, reason: '' })
      })
    })
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => this.feed(chunk))
  }

  /** Feeds bytes from the server to the frame parser (the handshake hands over what came with the 101). */
  feed(chunk: Buffer): void {
    if (this.#stopped) return
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    for (;;) {
      const parsed = this.#parseOne()
      if (parsed === null) return
      this.#onFrame(parsed)
    }
  }

  /** Writes bytes as they are; resolves once they are handed to the kernel (or the write failed). */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve()
      this.socket.write(bytes, () => resolve())
    })
  }

  /** Writes one frame. */
  send(spec: FrameSpec): Promise<void> {
    return this.write(frame(spec))
  }

  /** Writes several frames in one TCP write. */
  sendAll(specs: FrameSpec[]): Promise<void> {
    return this.write(Buffer.concat(specs.map(frame)))
  }

  /** A masked text frame, as a well-behaved client sends it. */
  sendText(text: string | Buffer): Promise<void> {
    return this.send({ opcode: Opcode.TEXT, payload: text })
  }

  /** Writes the bytes one TCP write per byte, each waiting for the previous. */
  async writeBytewise(bytes: Buffer): Promise<void> {
    for (let i = 0; i < bytes.length; i++) {
      if (this.isClosed) return
      await this.write(bytes.subarray(i, i + 1))
    }
  }

  /**
   * The next data message not yet consumed that matches (messages skipped
   * over stay for later calls). Rejects after `timeoutMs` or when the
   * connection closes first.
   */
  next(predicate: (m: RawMessage) => boolean = () => true, timeoutMs = 5000): Promise<RawMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new Error(`no matching message in ${timeoutMs} ms; received: ${this.messages.map((m) => m.text ?? `<binary ${m.data.length}>`).join(' | ').slice(-1500)}`))
      }, timeoutMs)
      const waiter: Waiter = { predicate, resolve, reject, timer }
      this.#waiters.push(waiter)
      this.#dispatch()
      if (this.isClosed && this.#waiters.includes(waiter)) {
        clearTimeout(timer)
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new Error(`connection is closed (close frame ${this.closeFrame?.code ?? 'none'})`))
      }
    })
  }

  /** The next text message, parsed as JSON (undefined if it is not JSON). */
  async nextJson(timeoutMs = 5000): Promise<{ text: string; json: any }> {
    const m = await this.next((m) => m.text !== undefined, timeoutMs)
    let json: unknown
    try {
      json = JSON.parse(m.text!)
    } catch {
      json = undefined
    }
    return { text: m.text!, json }
  }

  /** {@link closed}, but rejects if the connection is still open after `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms (close frame ${this.closeFrame?.code ?? 'none'}); received: ${this.messages.map((m) => m.text ?? '<binary>').join(' | ').slice(-500)}`)),
        timeoutMs,
      )
    })
    return Promise.race([this.closed, timeout]).finally(() => clearTimeout(timer))
  }

  /** Sends a close frame (unless the server closed first) and waits for the connection to end. */
  async close(code = 1000, timeoutMs = 5000): Promise<CloseInfo> {
    if (!this.isClosed && this.closeFrame === undefined) await this.send({ opcode: Opcode.CLOSE, payload: closePayload(code) })
    try {
      return await this.waitClosed(timeoutMs)
    } finally {
      this.destroy()
    }
  }

  /** Drops the TCP connection at once. */
  destroy(): void {
    this.socket.destroy()
  }

  #parseOne(): ReceivedFrame | null {
    const buf = this.#buffer
    if (buf.length < 2) return null
    const b0 = buf[0]!
    const b1 = buf[1]!
    let offset = 2
    let length = b1 & 0x7f
    if (length === 126) {
      if (buf.length < 4) return null
      length = buf.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (buf.length < 10) return null
      const big = buf.readBigUInt64BE(2)
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        this.#serverError(`server frame declares a length of ${big}`)
        return null
      }
      length = Number(big)
      offset = 10
    }
    const masked = (b1 & 0x80) !== 0
    let key: Buffer | undefined
    if (masked) {
      if (buf.length < offset + 4) return null
      key = buf.subarray(offset, offset + 4)
      offset += 4
    }
    if (buf.length < offset + length) return null
    const payload: Buffer = Buffer.from(buf.subarray(offset, offset + length))
    this.#buffer = buf.subarray(offset + length)
    if (key !== undefined) {
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!
      this.#serverError('server frame is masked')
    }
    return { fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, rsv2: (b0 & 0x20) !== 0, rsv3: (b0 & 0x10) !== 0, opcode: b0 & 0x0f, masked, payload }
  }

  #onFrame(f: ReceivedFrame): void {
    this.frames.push(f)
    if (f.rsv1 || f.rsv2 || f.rsv3) this.#serverError(`server frame with RSV bits: opcode ${f.opcode}`)
    switch (f.opcode) {
      case Opcode.CLOSE: {
        if (this.closeFrame !== undefined) return this.#serverError('a second close frame')
        const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005
        this.closeFrame = { code, reason: f.payload.subarray(2).toString() }
        if (f.payload.length === 1) this.#serverError('close frame with a 1-byte payload')
        if (this.#opts.echoClose ?? true) {
          const payload = f.payload.length >= 2 ? closePayload(code) : Buffer.alloc(0)
          void this.send({ opcode: Opcode.CLOSE, payload }).then(() => this.socket.end())
        }
        return
      }
      case Opcode.PING:
        void this.send({ opcode: Opcode.PONG, payload: f.payload })
        return
      case Opcode.PONG:
        return
      case Opcode.TEXT:
      case Opcode.BINARY:
        if (this.#fragments !== undefined) this.#serverError('a new data frame inside a fragmented message')
        if (f.fin) this.#onMessage(f.opcode, f.payload)
        else {
          this.#fragments = [f.payload]
          this.#fragmentOpcode = f.opcode
        }
        return
      case Opcode.CONTINUATION:
        if (this.#fragments === undefined) return this.#serverError('continuation frame with no message started')
        this.#fragments.push(f.payload)
        if (f.fin) {
          const data = Buffer.concat(this.#fragments)
          this.#fragments = undefined
          this.#onMessage(this.#fragmentOpcode, data)
        }
        return
      default:
        this.#serverError(`reserved opcode ${f.opcode} from the server`)
    }
  }

  #onMessage(opcode: number, data: Buffer): void {
    if (opcode === Opcode.BINARY) {
      this.messages.push({ binary: true, data })
    } else {
      let text: string
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(data)
      } catch {
        this.#serverError('invalid UTF-8 in a server text message')
        text = data.toString()
      }
      if (text === 'ping') {
        this.pings++
        if (this.#opts.pong != null && !this.isClosed) void this.sendText(this.#opts.pong)
        return
      }
      this.messages.push({ binary: false, data, text })
    }
    this.#dispatch()
  }

  #dispatch(): void {
    for (const waiter of [...this.#waiters]) {
      let match: RawMessage | undefined
      for (let i = this.#consumed; i < this.messages.length; i++) {
        const m = this.messages[i]!
        if (!this.#taken.has(m) && waiter.predicate(m)) {
          match = m
          break
        }
      }
      if (match === undefined) continue
      this.#taken.add(match)
      while (this.#consumed < this.messages.length && this.#taken.has(this.messages[this.#consumed]!)) this.#consumed++
      clearTimeout(waiter.timer)
      this.#waiters = this.#waiters.filter((w) => w !== waiter)
      waiter.resolve(match)
    }
  }

  #serverError(what: string): void {
    this.serverErrors.push(what)
    if (what.startsWith('server frame declares')) {
      this.#stopped = true
      this.socket.destroy()
    }
  }
}
