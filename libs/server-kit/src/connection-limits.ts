import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { sendHttpError } from './http-errors.js'

/**
 * Counts the app's TCP connections and refuses (429) a WebSocket upgrade
 * from an address that already has `maxSocketsPerIp` open on this instance.
 * Returns the open connections, for shutdown to cut what is left.
 */
export function limitSocketsPerIp(app: FastifyInstance, maxSocketsPerIp: number): Set<Socket> {
  const perIp = new Map<string, number>()
  const connections = new Set<Socket>()
  /** The address a connection's upgrade was counted under, until the connection closes. */
  const countedIp = new WeakMap<Socket, string>()
  // One listener function for every connection (`this` is the connection).
  function onConnectionClose(this: Socket): void {
    connections.delete(this)
    const ip = countedIp.get(this)
    if (ip === undefined) return
    const left = (perIp.get(ip) ?? 1) - 1
    if (left > 0) perIp.set(ip, left)
    else perIp.delete(ip)
  }
  app.server.on('connection', (connection: Socket) => {
    connections.add(connection)
    connection.on('close', onConnectionClose)
  })

  // After @fastify/websocket's own hook, so a refused upgrade's socket is
  // destroyed by it. Counted where checked, and released when the TCP
  // connection closes, so simultaneous upgrades cannot all slip under the limit.
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') return
    const ip = req.ip
    if ((perIp.get(ip) ?? 0) >= maxSocketsPerIp) {
      req.log.warn('too many sockets from one address')
      return sendHttpError(reply, 'TOO_MANY_CONNECTIONS')
    }
    // One count per connection: a second upgrade on it (refused by ws) does not count again.
    if (countedIp.has(req.raw.socket)) return
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1)
    countedIp.set(req.raw.socket, ip)
  })
  return connections
}
