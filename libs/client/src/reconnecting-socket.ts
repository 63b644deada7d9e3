import { CloseCodes, PING } from '@switchboard/protocol'

/** The part of the WebSocket API the client needs: the browser's and ws's both fit. */
export interface SocketLike {
  readonly readyState: number
  /** The subprotocol the server selected ('' for none). */
  readonly protocol?: string
  send(data: string): void
  close(code?: number, reason?: string): void
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

export interface ReconnectingSocketOptions {
  url: string
  /** Subprotocols to offer on every connect. */
  protocols?: string[]
  /** What to answer `ping` with: `pong:user` or `pong:support`. */
  pong: string
  createSocket?: SocketFactory
  backoff?: Backoff
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
    this.#socket?.close(1000, 'client closed')
  }

  #connect(): void {
    if (this.#attempt === 0) this.#opts.onState?.('connecting', { attempt: 0 })
    const socket = this.#create(this.#opts.url, this.#opts.protocols)
    this.#socket = socket
    socket.onopen = () => {
      this.#attempt = 0
      this.#protocol = socket.protocol ?? ''
      this.#opts.onState?.('open', { attempt: 0 })
      this.#opts.onOpen?.()
    }
    socket.onmessage = (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : String(ev.data)
      if (text === PING) socket.send(this.#opts.pong)
      else this.#opts.onText?.(text)
    }
    socket.onerror = () => {}
    socket.onclose = (ev) => {
      if (this.#socket !== socket) return
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
  }
}
