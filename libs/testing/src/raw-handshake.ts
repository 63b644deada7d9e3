import { connect } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { RawSocket, type RawSocketOptions } from './raw-socket.js'

/**
 * A raw WebSocket client over node:net, in the style of ws's own tests: it
 * does the HTTP/1.1 Upgrade handshake itself (this file) and writes frames
 * built byte by byte (raw-frames.ts) over a {@link RawSocket}, so a test can
 * send what no real client library would and see exactly what the server
 * answers and how it closes.
 */

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export interface RawConnectOptions extends RawSocketOptions {
  /**
   * Extra request headers, or replacements for the handshake's own (Host,
   * Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version); null
   * leaves a header out.
   */
  headers?: Record<string, string | null>
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
