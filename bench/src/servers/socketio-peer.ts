/**
 * The peer: a minimal Socket.IO 4 chat relay with `@socket.io/redis-adapter`
 * doing the same work as ChatServer — each message stored in Redis (RPUSH
 * to the chat's list), then emitted to the chat's room (both participants,
 * the sender included) — with the settings Socket.IO's docs recommend for
 * performance: WebSocket transport only, no permessage-deflate, no HTTP
 * compression, the first HTTP request of each session discarded.
 *
 * Env: PORT, REDIS_URL, PING_INTERVAL_MS (default 1000: the same heartbeat
 * as ChatServer's, so both do the same work per socket).
 */
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'

const port = Number(process.env.PORT ?? 9200)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const pingInterval = Number(process.env.PING_INTERVAL_MS ?? 1000)

// Two connections, like ChatServer: commands (and the adapter's publishes), and subscriptions.
const commands = new Redis(redisUrl)
const subscriber = commands.duplicate()
for (const client of [commands, subscriber]) client.on('error', (err) => process.stderr.write(`redis: ${err.message}\n`))

// `/metrics`: the one line the bench's idle scenario reads, the V8 heap used.
const httpServer = createServer((req, res) => {
  if (req.url === '/metrics') res.writeHead(200).end(`nodejs_heap_size_used_bytes ${process.memoryUsage().heapUsed}\n`)
  else res.writeHead(req.url === '/health' ? 200 : 404).end()
})

const io = new Server(httpServer, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  cleanupEmptyChildNamespaces: true,
  pingInterval,
  pingTimeout: 20_000,
  maxHttpBufferSize: 64 * 1024,
  adapter: createAdapter(commands, subscriber),
})

// The docs' memory tip: do not keep each session's first HTTP request.
io.engine.on('connection', (rawSocket: { request: unknown }) => {
  rawSocket.request = null
})

interface ClientMessage {
  from: string
  content: string
}

io.on('connection', (socket) => {
  let room: string | undefined
  socket.on('join', (chatId: unknown) => {
    if (typeof chatId !== 'string' || room !== undefined) return
    room = chatId
    void socket.join(chatId)
    socket.emit('joined')
  })
  socket.on('msg', (message: ClientMessage) => {
    const chat = room
    if (chat === undefined || typeof message?.content !== 'string') return
    const stored = { from: message.from, content: message.content, timestamp: new Date().toISOString() }
    commands.rpush(`chat:${chat}:messages`, JSON.stringify(stored)).then(
      () => io.to(chat).emit('msg', stored),
      () => socket.emit('failed'),
    )
  })
})

httpServer.listen(port, '127.0.0.1')

// Stopped by the bench with SIGTERM when it profiles (--cpu-prof): exiting writes the profile.
process.on('SIGTERM', () => process.exit(0))
