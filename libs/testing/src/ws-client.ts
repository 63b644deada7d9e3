import { WebSocket, type RawData } from 'ws'

/** What the server sent: a JSON frame, parsed, plus its exact text. */
export interface Received {
  text: string
  json: any
}

export interface SocketOptions {
  /** What to answer `ping` with; null never answers. @default 'pong:user' */
  pong?: string | null
  headers?: Record<string, string>
  /** WebSocket subprotocols to offer, e.g. ['switchboard.v2']. */
  protocols?: string[]
}

type Waiter = { predicate: (m: Received) => boolean; resolve: (m: Received) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * A test client for either socket. It answers `ping` with the given pong
 * (unless told not to), counts the pings, and lets a test wait for the next
 * frame that matches: events, not sleeps.
 */
export class TestSocket {
  readonly ws: WebSocket
  readonly received: Received[] = []
  pings = 0
  #waiters: Waiter[] = []
  #pingWaiters: (() => void)[] = []
  readonly closed: Promise<{ code: number; reason: string }>

  constructor(url: string, opts: SocketOptions = {}) {
    const pong = opts.pong === undefined ? 'pong:user' : opts.pong
    this.ws = new WebSocket(url, opts.protocols ?? [], opts.headers ? { headers: opts.headers } : undefined)
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        for (const w of this.#waiters) {
          clearTimeout(w.timer)
          w.reject(new Error(`socket closed (${code} ${reason.toString()}) while waiting for a frame`))
        }
        this.#waiters = []
        resolve({ code, reason: reason.toString() })
      })
    })
    this.ws.on('error', () => {})
    this.ws.on('message', (data: RawData, isBinary: boolean) => {
      const text = isBinary ? `<binary ${(data as Buffer).length}>` : data.toString()
      if (text === 'ping') {
        this.pings++
        if (pong !== null && this.ws.readyState === WebSocket.OPEN) this.ws.send(pong)
        for (const w of this.#pingWaiters.splice(0)) w()
        return
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
      const message = { text, json }
      this.received.push(message)
      this.#dispatch()
    })
  }

  static async open(url: string, opts: SocketOptions = {}): Promise<TestSocket> {
    const socket = new TestSocket(url, opts)
    await new Promise<void>((resolve, reject) => {
      socket.ws.once('open', () => resolve())
      socket.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
      socket.ws.once('error', reject)
    })
    return socket
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /**
   * The next frame not yet consumed that matches (frames skipped over stay
   * unconsumed for later calls). Rejects after `timeoutMs` or on close.
   */
  next(predicate: (m: Received) => boolean = () => true, timeoutMs = 5000): Promise<Received> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new Error(`no matching frame in ${timeoutMs} ms; received: ${this.received.map((m) => m.text).join(' | ').slice(-1500)}`))
      }, timeoutMs)
      const waiter: Waiter = { predicate, resolve, reject, timer }
      this.#waiters.push(waiter)
      this.#dispatch()
      if (this.ws.readyState === WebSocket.CLOSED && this.#waiters.includes(waiter)) {
        clearTimeout(timer)
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new Error('socket is closed'))
      }
    })
  }

  /** The next frame of the given `type`. */
  nextOfType(type: string, timeoutMs?: number): Promise<Received> {
    return this.next((m) => m.json?.type === type, timeoutMs)
  }

  /** Resolves at the next `ping`. */
  nextPing(): Promise<void> {
    return new Promise((resolve) => this.#pingWaiters.push(resolve))
  }

  /** Frames received but not yet consumed by `next`. */
  get unconsumed(): Received[] {
    return this.received.filter((m) => !this.#consumed.has(m))
  }

  #consumed = new Set<Received>()

  #dispatch(): void {
    for (const waiter of [...this.#waiters]) {
      const match = this.received.find((m) => !this.#consumed.has(m) && waiter.predicate(m))
      if (match) {
        this.#consumed.add(match)
        clearTimeout(waiter.timer)
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        waiter.resolve(match)
      }
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close()
    return this.closed
  }
}

/** How a WebSocket handshake ended: upgraded (and closed at once), or the HTTP answer with its JSON body. */
export type HandshakeOutcome = { upgraded: true } | { upgraded: false; status: number; body: any }

/** Attempts a WebSocket handshake: either it upgrades (closed at once) or the HTTP answer, body parsed. */
export function handshake(url: string, headers: Record<string, string> = {}): Promise<HandshakeOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.on('error', () => {})
    ws.once('open', () => {
      ws.close()
      resolve({ upgraded: true })
    })
    ws.once('unexpected-response', (req, res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => {
        req.destroy()
        resolve({ upgraded: false, status: res.statusCode ?? 0, body: JSON.parse(text) })
      })
      res.on('error', reject)
    })
  })
}
