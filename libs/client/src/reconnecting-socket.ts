import { CloseCodes, PING } from '@switchboard/protocol'

/** The part of the WebSocket API the client needs: the browser's and ws's both fit. */
export interface SocketLike {
  readonly readyState: number
  /** The subprotocol the server selected ('' for none). */
  readonly protocol?: string
  send(data: string): void
  close(code?: number, reason?: string): void
  /** ws's: drops the connection at once, without a closing handshake (browsers have no such method). */
  terminate?(): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

/** Makes a socket; `protocols` are the subprotocols to offer (e.g. `switchboard.v2`). */
export type SocketFactory = (url: string, protocols?: string[]) => SocketLike

export interface Backoff {
  /** First retry delay. @default 250 */
  initialMs?: number
  /** Longest delay between retries. @default 10000 */
  maxMs?: number
  /** Growth per failed attempt. @default 2 */
  factor?: number
  /** Share of each delay that is random, 0..1, so many clients do not retry in step. @default 0.5 */
  jitter?: number
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** What the client reports as the close code of a connection it gave up on itself (RFC 6455: closed without a close frame). */
export const ABNORMAL_CLOSURE = 1006

export interface ReconnectingSocketOptions {
  url: string
  /** Subprotocols to offer on every connect. */
  protocols?: string[]
  /** What to answer `ping` with: `pong:user` or `pong:support`. */
  pong: string
  createSocket?: SocketFactory
  backoff?: Backoff
  /**
   * The server's HEARTBEAT_INTERVAL_MS: it sends `ping` this often on every
   * socket. A connection that brings nothing (no `ping`, no frame) for
   * `heartbeatMisses` intervals is taken for dead, closed and made again, so a
   * frozen server or a silent network partition is noticed. The interval used
   * follows the gap seen between pings, and doubles after a connection that
   * died before two pings showed a gap, so a server with a longer interval
   * is not cut off for good; 0 turns the check (and connectTimeoutMs) off.
   * @default 1000
   */
  heartbeatIntervalMs?: number
  /** Intervals without a frame before the connection is taken for dead. @default 3 */
  heartbeatMisses?: number
  /** A connection whose handshake is not answered within this long is given up and made again (a frozen server accepts TCP and answers nothing). @default 10000 */
  connectTimeoutMs?: number
  /** Runs on every (re)connect, e.g. to send Join. */
  onOpen?(): void
  /** Every text frame but `ping`. */
  onText?(text: string): void
  onState?(state: ConnectionState, info: { attempt: number; delayMs?: number; code?: number; reason?: string }): void
}

const OPEN = 1

/**
 * Close codes after which reconnecting cannot help: a normal close, a policy
 * violation (bad chat id), a chat handed to another agent, an expired chat.
 */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  1000,
  CloseCodes.POLICY_VIOLATION,
  CloseCodes.CHAT_TRANSFERRED,
  CloseCodes.CHAT_EXPIRED,
])

/** Delay before retry number `attempt` (0-based): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, backoff: Backoff = {}, random: () => number = Math.random): number {
  const { initialMs = 250, maxMs = 10_000, factor = 2, jitter = 0.5 } = backoff
  const base = Math.min(maxMs, initialMs * factor ** attempt)
  return Math.round(base * (1 - jitter * random()))
}

function defaultFactory(): SocketFactory {
  const WS = (globalThis as { WebSocket?: new (url: string, protocols?: string[]) => SocketLike }).WebSocket
  if (WS === undefined) throw new Error('No global WebSocket: pass createSocket (e.g. (url, p) => new WebSocket(url, p) from the ws package)')
  return (url, protocols) => new WS(url, protocols)
}

/**
 * A WebSocket that answers heartbeats and comes back by itself after a
 * dropped connection, with exponential backoff and jitter.
 */
export class ReconnectingSocket {
  readonly #opts: ReconnectingSocketOptions
  readonly #create: SocketFactory
  #socket: SocketLike | undefined
  /** The subprotocol of the last connection that opened: a reconnect in progress does not change what the client speaks. */
  #protocol = ''
  #attempt = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #stopped = false
  /** Fires when the current connection has been silent too long (or its handshake too slow). */
  #watchdog: ReturnType<typeof setTimeout> | undefined
  /** When the last `ping` came, and the gap before it: the server's real interval. */
  #lastPingAt = 0
  #pingGapMs = 0
  /** Pings on the current connection: the gap is measured from the second. */
  #pings = 0

  constructor(opts: ReconnectingSocketOptions) {
    this.#opts = opts
    this.#create = opts.createSocket ?? defaultFactory()
  }

  get isOpen(): boolean {
    return this.#socket?.readyState === OPEN
  }

  /** The subprotocol the server selected on the current connection, or the last one while reconnecting ('' for none). */
  get protocol(): string {
    return this.#protocol
  }

  start(): void {
    this.#stopped = false
    this.#connect()
  }

  /** Sends a text frame; false when the socket is not open (nothing is queued). */
  send(text: string): boolean {
    if (!this.isOpen) return false
    this.#socket!.send(text)
    return true
  }

  /** Closes for good: no reconnect. */
  close(): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    clearTimeout(this.#watchdog)
    this.#socket?.close(1000, 'client closed')
  }

  /** How long the open connection may stay silent: `heartbeatMisses` of the larger of the configured and the seen interval. */
  get #silenceLimitMs(): number {
    const interval = this.#opts.heartbeatIntervalMs ?? 1000
    return (this.#opts.heartbeatMisses ?? 3) * Math.max(interval, this.#pingGapMs)
  }

  /** (Re)arms the watchdog of `socket`: heard from now, or just started connecting. */
  #arm(socket: SocketLike, ms: number): void {
    clearTimeout(this.#watchdog)
    if ((this.#opts.heartbeatIntervalMs ?? 1000) === 0) return
    // Not given up at once: if this process was busy itself (a blocked event loop, a sleeping laptop),
    // frames that came meanwhile are read before a zero-delay timer runs, and re-arm the watchdog.
    this.#watchdog = setTimeout(() => {
      this.#watchdog = setTimeout(() => this.#giveUp(socket), 0)
    }, ms)
  }

  /**
   * The connection is dead though no close came (the server is frozen or the
   * network dropped it silently): waiting for a closing handshake would wait
   * as long, so the socket is dropped and treated as closed now.
   */
  #giveUp(socket: SocketLike): void {
    if (this.#socket !== socket) return
    // Open, and fewer than two pings (no gap seen): the server's interval may be longer than assumed
    // (HEARTBEAT_INTERVAL_MS raised); wait twice as long on the next connection rather than reconnect forever.
    if (socket.readyState === OPEN && this.#pings < 2) this.#pingGapMs = Math.max(this.#pingGapMs, this.#opts.heartbeatIntervalMs ?? 1000) * 2
    socket.onopen = socket.onmessage = null
    socket.onclose = () => {}
    if (typeof socket.terminate === 'function') socket.terminate()
    else socket.close()
    this.#closed(socket, { code: ABNORMAL_CLOSURE, reason: 'no heartbeat from the server' })
  }

  #closed(socket: SocketLike, ev: { code: number; reason: string }): void {
    if (this.#socket !== socket) return
    clearTimeout(this.#watchdog)
    this.#socket = undefined
    if (this.#stopped || FINAL_CLOSE_CODES.has(ev.code)) {
      this.#stopped = true
      this.#opts.onState?.('closed', { attempt: this.#attempt, code: ev.code, reason: ev.reason })
      return
    }
    const delayMs = backoffDelay(this.#attempt, this.#opts.backoff)
    this.#attempt++
    this.#opts.onState?.('reconnecting', { attempt: this.#attempt, delayMs, code: ev.code, reason: ev.reason })
    this.#timer = setTimeout(() => this.#connect(), delayMs)
  }

  #connect(): void {
    if (this.#attempt === 0) this.#opts.onState?.('connecting', { attempt: 0 })
    const socket = this.#create(this.#opts.url, this.#opts.protocols)
    this.#socket = socket
    this.#lastPingAt = 0
    this.#pings = 0
    this.#arm(socket, this.#opts.connectTimeoutMs ?? 10_000)
    socket.onopen = () => {
      this.#arm(socket, this.#silenceLimitMs)
      this.#attempt = 0
      this.#protocol = socket.protocol ?? ''
      this.#opts.onState?.('open', { attempt: 0 })
      this.#opts.onOpen?.()
    }
    socket.onmessage = (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : String(ev.data)
      if (text === PING) {
        const now = Date.now()
        if (this.#lastPingAt > 0) this.#pingGapMs = now - this.#lastPingAt
        this.#lastPingAt = now
        this.#pings++
      }
      // Any frame shows the connection is alive, not only a ping.
      this.#arm(socket, this.#silenceLimitMs)
      if (text === PING) socket.send(this.#opts.pong)
      else this.#opts.onText?.(text)
    }
    socket.onerror = () => {}
    socket.onclose = (ev) => this.#closed(socket, ev)
  }
}
