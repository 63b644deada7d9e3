import t from 'tap'
import { once } from 'node:events'
import { Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket, WebSocketServer } from 'ws'
import { Redis } from 'ioredis'
import { coalesceWrites, detachUpgradeResponse, tcpSocketOf, textFrameBytes, writeFrameBytes } from '@switchboard/server-kit'
import { connectRedis } from '@switchboard/domain'
import { startRedis, startRedisCluster } from '@switchboard/testing'

// Each private API the adapter uses, checked against the installed ws, Node,
// @fastify/websocket and ioredis: an upgrade that breaks one fails here.

t.test("ws: a server socket's _socket is its net.Socket, and a frame written to it arrives whole", async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  t.teardown(() => new Promise((resolve) => wss.close(resolve)))
  await once(wss, 'listening')
  const served = once(wss, 'connection') as Promise<[WebSocket]>
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`)
  t.teardown(() => client.terminate())
  const [server] = await served
  await once(client, 'open')

  t.ok(tcpSocketOf(server) instanceof Socket, '_socket is a net.Socket')
  const text = '{"type":"ChatMessage","args":{"content":"é 👋"}}'.repeat(5)
  const received = once(client, 'message') as Promise<[Buffer, boolean]>
  t.equal(writeFrameBytes(server, textFrameBytes(text)), true, 'written to the TCP connection')
  const [data, isBinary] = await received
  t.equal(isBinary, false)
  t.equal(data.toString(), text)

  // Gone (closed): not written, the caller goes through ws.
  server.terminate()
  await once(client, 'close')
  t.equal(writeFrameBytes(server, textFrameBytes(text)), false, 'nothing to write to after the connection closed')
})

t.test("Node + @fastify/websocket: the upgrade's response holds the connection until detachSocket lets it go", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const seen: { attached: boolean; detached: boolean; after: unknown; responseSocket: unknown }[] = []
  app.get('/ws', { websocket: true }, (socket, req) => {
    const tcp = req.raw.socket as Socket & { _httpMessage?: { socket?: unknown } | null }
    const response = tcp._httpMessage
    const attached = response != null && typeof (response as { detachSocket?: unknown }).detachSocket === 'function'
    const detached = detachUpgradeResponse(req.raw.socket)
    seen.push({ attached, detached, after: tcp._httpMessage, responseSocket: response?.socket })
    socket.send('served')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new WebSocket(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`)
  t.teardown(() => client.terminate())
  await once(client, 'message')
  t.same(seen, [{ attached: true, detached: true, after: null, responseSocket: null }], 'attached, then neither holds the other')

  // Nothing attached: nothing done.
  t.equal(detachUpgradeResponse(new Socket()), false)
})

t.test("ioredis: sendCommand is patchable, stream is a corkable net.Socket, and one turn's commands leave in one write", async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())

  /** A ready client, and how many writes its socket makes (a corked stream hands its chunks over in one _writev). */
  async function client(coalesce: boolean): Promise<{ redis: Redis; writes: () => number }> {
    const redis = new Redis(server.url, { lazyConnect: false })
    t.teardown(() => redis.disconnect())
    await once(redis, 'ready')
    const stream = redis.stream as Socket & { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void }
    t.ok(stream instanceof Socket, 'stream is a net.Socket')
    t.type(stream.cork, 'function')
    let writes = 0
    const write = stream._write
    stream._write = function (...args: unknown[]) {
      writes++
      return write.apply(this, args)
    }
    const writev = stream._writev
    if (writev !== undefined) {
      stream._writev = function (...args: unknown[]) {
        writes++
        return writev.apply(this, args)
      }
    }
    if (coalesce) {
      const before = redis.sendCommand
      coalesceWrites(redis)
      t.not(redis.sendCommand, before, 'sendCommand was replaced')
    }
    return { redis, writes: () => writes }
  }

  const send10 = (redis: Redis) => Promise.all(Array.from({ length: 10 }, (_, i) => redis.set(`k${i}`, `v${i}`).then(() => redis.get(`k${i}`))))

  const plain = await client(false)
  await send10(plain.redis)
  t.ok(plain.writes() > 2, `without the patch, 10 commands take several writes (${plain.writes()})`)

  const coalesced = await client(true)
  const first = send10(coalesced.redis)
  // The 10 SETs were sent in this turn; the GETs follow in later turns, after each reply.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(coalesced.writes(), 1, "the turn's 10 commands left in one write")
  t.same(await first, Array.from({ length: 10 }, (_, i) => `v${i}`), 'and each was answered')
})

t.test("ioredis Cluster: each node's connection appears as a Redis on '+node', and the node's commands go through its sendCommand", async (t) => {
  const cluster = await startRedisCluster(t, 3)
  const seen: Redis[] = []
  let throughPatch = 0
  const redis = connectRedis({ clusterNodes: cluster.nodes.map((node) => node.url) }, { warn() {}, info() {} }, {
    onCommandConnection(client) {
      seen.push(client)
      const send = client.sendCommand
      client.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
        throughPatch++
        return send.apply(this, args)
      }
    },
  })
  t.teardown(() => redis.close())
  await once(redis.commands, 'ready')
  await redis.commands.set('{sb}k', 'v')
  t.equal(await redis.commands.get('{sb}k'), 'v')
  t.ok(seen.length > 0, `node connections seen (${seen.length})`)
  t.ok(seen.every((client) => client instanceof Redis), 'each is a Redis client')
  t.ok(throughPatch >= 2, `the SET and the GET went through a node's sendCommand (${throughPatch})`)
})
