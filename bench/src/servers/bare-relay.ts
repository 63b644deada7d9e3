/**
 * The machine's ceiling: a bare `ws` relay with no Redis and no parsing
 * beyond the first frame. A socket's first frame `{"join":"<room>"}` puts
 * it in a room; every later frame is sent as it is to every socket of the
 * room, the sender included (the same two deliveries per message as a chat).
 *
 * Env: PORT.
 */
import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

const port = Number(process.env.PORT ?? 9300)
const rooms = new Map<string, Set<WebSocket>>()

const httpServer = createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404).end()
})
const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false, maxPayload: 64 * 1024 })

wss.on('connection', (socket) => {
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
    for (const peer of room) peer.send(data, { binary: isBinary })
  })
  socket.on('close', () => {
    if (room === undefined || roomId === undefined) return
    room.delete(socket)
    if (room.size === 0) rooms.delete(roomId)
  })
})

httpServer.listen(port, '127.0.0.1')

// Stopped by the bench with SIGTERM when it profiles (--cpu-prof): exiting writes the profile.
process.on('SIGTERM', () => process.exit(0))
