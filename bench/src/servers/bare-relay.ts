/**
 * The machine's ceiling: a bare `ws` relay with no Redis and no parsing
 * beyond the first frame. A socket's first frame `{"join":"<room>"}` puts
 * it in a room; every later frame is sent as it is to every socket of the
 * room, the sender included (the same two deliveries per message as a chat).
 *
 * For the idle scenario, HEARTBEAT_INTERVAL_MS makes it do ChatServer's
 * heartbeat the way ChatServer does it (the `ping` frame's bytes written to
 * each TCP connection once per interval, spread over 20 slots; `pong:user` /
 * `pong:support` recognised from their bytes and not relayed): the floor of
 * what idle sockets cost with ws on this machine. `/metrics` has the one
 * line the bench reads, the V8 heap used.
 *
 * Env: PORT, HEARTBEAT_INTERVAL_MS (default: no heartbeat).
 */
import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
// Types-only module: loads neither fastify nor ioredis into the relay.
import { writeFrameBytes } from '@switchboard/server-kit/private-apis'

const port = Number(process.env.PORT ?? 9300)
const heartbeatMs = Number(process.env.HEARTBEAT_INTERVAL_MS ?? 0)
const rooms = new Map<string, Set<WebSocket>>()

const httpServer = createServer((req, res) => {
  if (req.url === '/metrics') res.writeHead(200).end(`nodejs_heap_size_used_bytes ${process.memoryUsage().heapUsed}\n`)
  else res.writeHead(req.url === '/health' ? 200 : 404).end()
})
const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false, maxPayload: 64 * 1024 })

const SLOTS = 20
const slots = Array.from({ length: SLOTS }, () => new Set<WebSocket>())
let nextSlot = 0
const PING_WIRE = Buffer.from([0x81, 4, ...Buffer.from('ping')])
const PONGS = [Buffer.from('pong:user'), Buffer.from('pong:support')]
if (heartbeatMs > 0) {
  let tick = 0
  setInterval(() => {
    const slot = slots[tick]!
    tick = (tick + 1) % SLOTS
    slot.forEach((socket) => writeFrameBytes(socket, PING_WIRE))
  }, heartbeatMs / SLOTS)
}

wss.on('connection', (socket) => {
  const slot = slots[nextSlot]!
  nextSlot = (nextSlot + 1) % SLOTS
  if (heartbeatMs > 0) slot.add(socket)
  let room: Set<WebSocket> | undefined
  let roomId: string | undefined
  socket.on('error', () => socket.terminate())
  socket.on('message', (data, isBinary) => {
    if (room === undefined) {
      try {
        roomId = String((JSON.parse(String(data)) as { join: unknown }).join)
      } catch {
        socket.close(1008)
        return
      }
      room = rooms.get(roomId) ?? new Set()
      rooms.set(roomId, room)
      room.add(socket)
      socket.send('{"joined":true}')
      return
    }
    if (heartbeatMs > 0 && Buffer.isBuffer(data) && PONGS.some((pong) => pong.equals(data))) return
    for (const peer of room) peer.send(data, { binary: isBinary })
  })
  socket.on('close', () => {
    slot.delete(socket)
    if (room === undefined || roomId === undefined) return
    room.delete(socket)
    if (room.size === 0) rooms.delete(roomId)
  })
})

httpServer.listen(port, '127.0.0.1')

// Stopped by the bench with SIGTERM when it profiles (--cpu-prof): exiting writes the profile.
process.on('SIGTERM', () => process.exit(0))
