import { request } from 'node:http'
import type { Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { WebSocket } from 'ws'
import { Opcode, frame } from '@switchboard/testing'

/**
 * A raw `ws` client with the cheapest settings for the generator: no
 * compression, no UTF-8 validation of what the server sends (the
 * benchmark reads bytes, not text).
 */
export function openSocket(url: string, timeoutMs = 10_000): Promise<WebSocket> {
  return opened(new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: timeoutMs }))
}

/**
 * A WebSocket opened for reading its frames' bytes as they come off TCP,
 * with no WebSocket parser: a server's frames are not masked, so the JSON
 * of every frame is there to find in the chunks. The generator's cheapest
 * way to watch many sockets (the queue fan-out: one chunk with the event
 * per agent). `ping`s are counted in the chunks and answered with `pong`.
 */
export interface SniffedSocket {
  readonly socket: Socket
  /** Writes a text frame, masked as a client's must be. */
  sendText(text: string): void
  close(): void
}

/** A masked text frame (the key is fixed: a benchmark has no cache to poison). */
export function maskedText(text: string): Buffer {
  return frame({ opcode: Opcode.TEXT, payload: text, mask: Buffer.from([0x5b, 0x1d, 0x9e, 0x42]) })
}

/** The exact bytes of a server's `ping` text frame: JSON never holds byte 0x81 followed by 0x04, so they are unambiguous in a chunk. */
const PING_WIRE = Buffer.from([0x81, 0x04, ...Buffer.from('ping')])

export function openSniffed(url: string, pong: string, onChunk: (chunk: Buffer) => void, timeoutMs = 10_000): Promise<SniffedSocket> {
  const target = new URL(url)
  const pongWire = maskedText(pong)
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      timeout: timeoutMs,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13' },
    })
    req.once('timeout', () => req.destroy(new Error(`upgrade to ${url} timed out`)))
    req.once('error', reject)
    req.once('response', (res) => reject(new Error(`upgrade to ${url} refused: HTTP ${res.statusCode}`)))
    req.once('upgrade', (_res, socket: Socket, head: Buffer) => {
      // The request's timeout was for the handshake: the open socket waits as long as it needs.
      socket.setTimeout(0)
      socket.setNoDelay(true)
      socket.on('error', () => {})
      const read = (chunk: Buffer) => {
        for (let at = chunk.indexOf(PING_WIRE); at >= 0; at = chunk.indexOf(PING_WIRE, at + PING_WIRE.length)) socket.write(pongWire)
        onChunk(chunk)
      }
      socket.on('data', read)
      if (head.length > 0) read(head)
      resolve({ socket, sendText: (text) => void socket.write(maskedText(text)), close: () => socket.destroy() })
    })
    req.end()
  })
}

function opened(socket: WebSocket): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.off('error', reject)
      // A server killed at the end of a run resets its sockets: that is no error of the run.
      socket.on('error', () => {})
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** The heartbeat a server kind sends, and each side's answer. */
export interface Heartbeat {
  ping: string
  pong: readonly [visitor: string, agent: string]
}

interface Waiter {
  predicate: (frame: string) => boolean
  resolve: (frame: string) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * The frames of one socket during setup, as text, for waiting on the next
 * one that matches; answers the heartbeat meanwhile. `detach()` hands the
 * socket over to the benchmark's own (byte-level) listener.
 */
export class Inbox {
  readonly #frames: string[] = []
  readonly #waiters = new Set<Waiter>()
  readonly #onMessage = (data: Buffer) => {
    const frame = data.toString()
    if (this.heartbeat !== undefined && frame === this.heartbeat.ping) {
      this.socket.send(this.pong)
      return
    }
    for (const waiter of this.#waiters) {
      if (waiter.predicate(frame)) {
        this.#waiters.delete(waiter)
        clearTimeout(waiter.timer)
        waiter.resolve(frame)
        return
      }
    }
    this.#frames.push(frame)
  }

  /**
   * Opens a socket with its inbox listening from the start: a server may
   * send its first frame in the same read as the handshake's answer, before
   * a listener added after 'open' would hear it.
   */
  static async open(url: string, heartbeat?: Heartbeat, pong = '', timeoutMs = 10_000): Promise<Inbox> {
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: timeoutMs })
    const inbox = new Inbox(socket, heartbeat, pong)
    await opened(socket)
    return inbox
  }

  constructor(
    readonly socket: WebSocket,
    readonly heartbeat?: Heartbeat,
    readonly pong = '',
  ) {
    socket.on('message', this.#onMessage)
  }

  /** The first frame (already received or to come) that matches. */
  next(predicate: (frame: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const index = this.#frames.findIndex(predicate)
    if (index >= 0) return Promise.resolve(this.#frames.splice(index, 1)[0]!)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter)
          reject(new Error(`no matching frame within ${timeoutMs} ms; got: ${this.#frames.slice(-3).join(' | ')}`))
        }, timeoutMs),
      }
      this.#waiters.add(waiter)
    })
  }

  detach(): void {
    this.socket.off('message', this.#onMessage)
    for (const waiter of this.#waiters) clearTimeout(waiter.timer)
    this.#waiters.clear()
  }
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` at once. */
export async function mapLimit<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(n)
  let nextIndex = 0
  const worker = async () => {
    while (nextIndex < n) {
      const i = nextIndex++
      results[i] = await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
  return results
}
