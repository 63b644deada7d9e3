import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import type { Teardown } from './stack.js'

export interface Balancer {
  /** http://127.0.0.1:port */
  http: string
  /** ws://127.0.0.1:port */
  ws: string
  port: number
  /** Backends as host:port ports on 127.0.0.1; replace to add or take out instances. */
  backends: number[]
  /** Client connections relayed so far, per backend port. */
  readonly connections: Map<number, number>
}

/**
 * A plain TCP load balancer on a free port, as operators put in front of the
 * instances: round robin, no sticky sessions, no knowledge of HTTP or
 * WebSockets. A backend that refuses the connection is skipped (as a health
 * check would take it out); when none accepts, the client is cut off.
 */
export async function startBalancer(t: Teardown, backends: number[]): Promise<Balancer> {
  let next = 0
  const open = new Set<Socket>()
  const connections = new Map<number, number>()
  const balancer: Balancer = { http: '', ws: '', port: 0, backends: [...backends], connections }

  const relay = (client: Socket, tried: number) => {
    const list = balancer.backends
    if (tried >= list.length || client.destroyed) return void client.destroy()
    const port = list[next++ % list.length]!
    const upstream = connect({ port, host: '127.0.0.1' })
    open.add(upstream)
    upstream.once('close', () => open.delete(upstream))
    let connected = false
    upstream.once('error', () => {
      // Refused: try the next backend. Cut off after connecting: the client sees its connection drop.
      if (!connected) relay(client, tried + 1)
      else client.destroy()
    })
    upstream.once('connect', () => {
      connected = true
      connections.set(port, (connections.get(port) ?? 0) + 1)
      client.pipe(upstream)
      upstream.pipe(client)
      client.once('close', () => upstream.destroy())
      upstream.once('close', () => client.destroy())
      client.resume()
    })
  }

  const server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client)
    client.once('close', () => open.delete(client))
    client.on('error', () => client.destroy())
    relay(client, 0)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  balancer.port = address.port
  balancer.http = `http://127.0.0.1:${address.port}`
  balancer.ws = `ws://127.0.0.1:${address.port}`
  t.teardown(async () => {
    for (const socket of open) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return balancer
}
