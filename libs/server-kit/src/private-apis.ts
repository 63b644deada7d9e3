/**
 * Every use of another library's private API, in one place. Each function
 * leans on an undocumented field of ws, Node or ioredis for speed or memory;
 * libs/server-kit/test/private-apis.test.ts checks each assumption against
 * the installed versions, so an upgrade that breaks one fails a test
 * instead of silently costing (or breaking) something.
 *
 * Types only are imported: the bench's bare relay uses this module
 * (`@switchboard/server-kit/private-apis`) without loading fastify or ioredis.
 */
import type { Socket } from 'node:net'
import type { Redis } from 'ioredis'
import type { WebSocket } from 'ws'

/**
 * ws: the TCP connection under a WebSocket (`_socket`), or null when there
 * is none (not connected yet, or already closed).
 */
export function tcpSocketOf(socket: WebSocket): Socket | null {
  return (socket as unknown as { _socket?: Socket | null })._socket ?? null
}

/**
 * ws: writes a whole frame's bytes straight to the socket's TCP connection:
 * the same bytes ws would write, without ws building the frame again for
 * each socket. ws writes every frame whole (its sender never queues when
 * there is no compression and no Blob), so these bytes cannot land inside
 * another frame. False when there is no connection to write to (the caller
 * goes through ws instead).
 */
export function writeFrameBytes(socket: WebSocket, wire: Buffer): boolean {
  const tcp = tcpSocketOf(socket)
  if (!tcp?.writable) return false
  tcp.write(wire)
  return true
}

/**
 * Node: lets go of the HTTP response an upgrade was routed with
 * (@fastify/websocket assigns one to the connection, as `_httpMessage`, and
 * it stays attached for as long as the socket is open). True when one was
 * detached.
 */
export function detachUpgradeResponse(tcp: Socket): boolean {
  const connection = tcp as Socket & { _httpMessage?: { detachSocket?(socket: Socket): void } | null }
  const response = connection._httpMessage
  if (typeof response?.detachSocket !== 'function') return false
  response.detachSocket(tcp)
  return true
}

/**
 * ioredis: commands sent in one turn of the event loop (for every frame read
 * from every socket in it) leave in one write: the connection's stream is
 * corked at the first and uncorked once the turn's I/O callbacks have run
 * (setImmediate), by wrapping the client's `sendCommand`. Redis reads them
 * at once and answers them with one write, so under load a message costs a
 * fraction of a system call on each side instead of one. Unlike ioredis's
 * enableAutoPipelining, each command is sent as soon as the turn ends (no
 * waiting for the previous batch's replies) and answered alone.
 */
export function coalesceWrites(client: Redis): void {
  const send = client.sendCommand
  let corked = false
  client.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
    if (!corked && this.status === 'ready') {
      const stream = this.stream
      corked = true
      stream.cork()
      setImmediate(() => {
        corked = false
        stream.uncork()
      })
    }
    return send.apply(this, args)
  }
}
