import type { Socket } from 'node:net'
import { Opcode, closePayload, frame, type FrameSpec, type ReceivedFrame } from './raw-frames.js'

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

/** How a raw socket answers the server by itself. */
export interface RawSocketOptions {
  /** Answer the server's heartbeat `ping` text frames with this text. @default null (do not answer) */
  pong?: string | null
  /** Reply to the server's close frame with a close frame (as RFC 6455 says). @default true */
  echoClose?: boolean
}

type Waiter = { predicate: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/** An open WebSocket connection driven byte by byte (opened by rawConnect / rawHandshake in raw-handshake.ts). */
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
  readonly #opts: RawSocketOptions

  constructor(
    readonly socket: Socket,
    opts: RawSocketOptions = {},
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
