import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { Errors, PING, PONGS, ProtocolError, SUBPROTOCOL_V2, encode, type ErrorCode, type ErrorSpec, type FrameParser } from '@switchboard/protocol'
import { isRedisUnavailable } from '@switchboard/domain'
import { TokenBucket } from './token-bucket.js'
import { sendHttpError } from './http-errors.js'
import type { SocketKind } from './metrics-plugin.js'

export interface SocketsPluginOptions {
  /** How often every socket gets `ping`. */
  heartbeatIntervalMs: number
  /** A socket that sends nothing for this long is closed with 4408. */
  idleTimeoutMs: number
  /** Largest frame; larger closes with 1009 (ws enforces it while reading). */
  maxFrameBytes: number
  /** Bytes waiting to be sent on a socket (a client that does not read) above which it is closed with 1013 instead of sent more. */
  maxBufferedBytes: number
  /** Open sockets per client IP on this instance; more are refused with 429 before the upgrade. */
  maxSocketsPerIp: number
  /** Token bucket per socket: sustained frames per second. */
  ratePerSecond: number
  /** Token bucket per socket: burst size. */
  rateBurst: number
  /** Frames refused in a row before the socket is closed with 1008. */
  rateCloseAfter: number
  /** On shutdown, how long frames already taken in may take to finish before the sockets close regardless. @default 5000 */
  drainTimeoutMs?: number
  /** On shutdown, how long clients get to answer the 1001 close before their connections are cut. @default 2000 */
  closeTimeoutMs?: number
}

export interface FrameHandlers<Frame> {
  /** Which socket this is, for the open-sockets gauge: a queue socket is an agent's, a chat socket's role is known once it joins. */
  kind: SocketKind
  parser: FrameParser<Frame>
  /** Logger for this socket (e.g. a child carrying chatId); defaults to the request's. */
  log?: FastifyBaseLogger
  /** Handles one valid frame. Frames of one socket are handled one at a time, in order. */
  onFrame(frame: Frame): Promise<void> | void
  /**
   * Runs before any frame is handled (frames that arrive meanwhile wait).
   * Throwing a ProtocolError answers the client and, for errors with a close code, closes the socket.
   */
  onOpen?(): Promise<void> | void
  onClose?(): void
}

interface Tracked {
  lastSeen: number
  /** The heartbeat slot this socket is pinged in, fixed when it is served. */
  slot: number
}

/** At most this many heartbeat slots: each tick of the one timer pings one slot. */
const MAX_HEARTBEAT_SLOTS = 20
/** Ticks closer than this cost more in timer overhead than they save (timers have 1 ms resolution). */
const MIN_HEARTBEAT_TICK_MS = 5
/** `ping`, encoded once: every heartbeat sends these same bytes, as a text frame. */
const PING_FRAME = Buffer.from(PING)
const TEXT_FRAME = { binary: false } as const
/** The whole WebSocket frame of `ping` as a server sends it: FIN + text opcode, unmasked, its length, the text. */
const PING_WIRE = Buffer.concat([Buffer.from([0x81, PING_FRAME.length]), PING_FRAME])
/** The pongs as bytes, so a pong is recognised without decoding it. */
const PONG_BYTES = Object.values(PONGS).map((pong) => Buffer.from(pong))

/**
 * Sends `ping`: its frame's bytes are written straight to the TCP connection,
 * the same bytes ws would write, without building a frame per socket (ws
 * writes every frame whole, so this cannot land inside another). Not counted
 * as a frame sent, as before. Through ws when there is no connection to write to.
 */
function sendPing(socket: WebSocket): void {
  const tcp = (socket as unknown as { _socket?: Socket | null })._socket
  if (tcp?.writable) tcp.write(PING_WIRE)
  else socket.send(PING_FRAME, TEXT_FRAME)
}

/** True for `pong:user` / `pong:support`, read from the frame's bytes. */
function isPongFrame(data: unknown): boolean {
  if (!Buffer.isBuffer(data)) return false
  for (const pong of PONG_BYTES) if (data.length === pong.length && data.equals(pong)) return true
  return false
}

/**
 * How many slots the sockets are spread over so that a tick pings 1/S of
 * them, not all at once: the most (up to 20) that divide the interval into
 * whole milliseconds of at least 5 ms, so every socket is still pinged
 * exactly once per interval. 1 when none does (e.g. a prime interval).
 */
export function heartbeatSlots(intervalMs: number): number {
  for (let slots = MAX_HEARTBEAT_SLOTS; slots > 1; slots--) {
    if (intervalMs % slots === 0 && intervalMs / slots >= MIN_HEARTBEAT_TICK_MS) return slots
  }
  return 1
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Wires a socket to its handlers: heartbeat, idle close, frame parsing,
     * one-at-a-time handling, and errors turned into `Error` frames.
     */
    serveSocket<Frame>(socket: WebSocket, req: FastifyRequest, handlers: FrameHandlers<Frame>): void
  }
}

/** Sends an `Error` frame for a code in the protocol's error table. */
export function sendError(socket: WebSocket, code: ErrorCode, message: string = Errors[code].message): void {
  if (socket.readyState === socket.OPEN) socket.send(encode.error(code, message))
}

export const socketsPlugin = fp(
  async function socketsPlugin(app: FastifyInstance, opts: SocketsPluginOptions) {
    /** The served sockets, by heartbeat slot. */
    const slots = Array.from({ length: heartbeatSlots(opts.heartbeatIntervalMs) }, () => new Map<WebSocket, Tracked>())
    let nextSlot = 0
    const socketCount = () => slots.reduce((n, slot) => n + slot.size, 0)
    const perIp = new Map<string, number>()
    /** Frame handling not finished yet, on any socket (closed ones too): shutdown waits for it. */
    const busy = new Set<Promise<void>>()
    /** Shutting down: no frame is read any more. */
    let draining = false

    await app.register(websocket, {
      options: {
        maxPayload: opts.maxFrameBytes,
        perMessageDeflate: false,
        // Protocol v2 is opt-in: selected only when the client offers it.
        handleProtocols: (offered: Set<string>) => (offered.has(SUBPROTOCOL_V2) ? SUBPROTOCOL_V2 : false),
      },
      // fastify answers new requests and upgrades 503 from now on. Frames already
      // taken in finish first, so a stored message is acknowledged before its
      // socket closes; frames that arrive meanwhile are answered with an
      // Error SHUTTING_DOWN and not read, and a v2 client sends them again
      // (same clientMessageId) to another instance.
      preClose: async function () {
        draining = true
        const started = Date.now()
        app.log.info({ sockets: socketCount(), framesInFlight: busy.size }, 'closing sockets: finishing frames in flight')
        if (!(await settleWithin(drain(), opts.drainTimeoutMs ?? 5000))) {
          app.log.warn({ framesInFlight: busy.size }, 'frames still in flight at the drain deadline; closing sockets regardless')
        }
        const wss = app.websocketServer
        for (const socket of wss.clients) {
          if (socket.readyState === socket.OPEN) socket.close(Errors.SHUTTING_DOWN.closeCode, Errors.SHUTTING_DOWN.message)
        }
        const closed = new Promise<void>((resolve) => wss.close(() => resolve()))
        if (!(await settleWithin(closed, opts.closeTimeoutMs ?? 2000))) {
          app.log.warn({ sockets: wss.clients.size }, 'clients did not answer the close in time; cutting them off')
          for (const socket of wss.clients) socket.terminate()
          await closed
        }
        app.log.info({ ms: Date.now() - started }, 'sockets closed')
        // The HTTP server's close waits for every TCP connection, upgraded ones
        // included; one that slipped in during the drain (a late upgrade, a
        // half-open keep-alive) would hold it. Whatever is left soon is cut.
        const leftovers = setTimeout(() => {
          if (connections.size === 0) return
          app.log.warn({ connections: connections.size }, 'connections still open after the sockets closed; destroying them')
          for (const connection of connections) connection.destroy()
        }, opts.closeTimeoutMs ?? 2000)
        leftovers.unref()
      },
    })
    const connections = new Set<Socket>()
    app.server.on('connection', (connection: Socket) => {
      connections.add(connection)
      connection.once('close', () => connections.delete(connection))
    })

    // Every socket, before its route sees it: frames sent and errors are counted at the socket.
    app.websocketServer.on('connection', (socket: WebSocket) => app.metrics.watchSocket(socket))

    // After @fastify/websocket's own hook, so a refused upgrade's socket is
    // destroyed by it. Counted where checked, and released when the TCP
    // connection closes, so simultaneous upgrades cannot all slip under the limit.
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers.upgrade?.toLowerCase() !== 'websocket') return
      const ip = req.ip
      if ((perIp.get(ip) ?? 0) >= opts.maxSocketsPerIp) {
        req.log.warn('too many sockets from one address')
        return sendHttpError(reply, 'TOO_MANY_CONNECTIONS')
      }
      perIp.set(ip, (perIp.get(ip) ?? 0) + 1)
      req.raw.socket.once('close', () => {
        const left = (perIp.get(ip) ?? 1) - 1
        if (left > 0) perIp.set(ip, left)
        else perIp.delete(ip)
      })
    })

    // One timer for every socket, ticking S times per interval: each tick
    // pings one slot and closes its idle sockets, so 20,000 sockets cost
    // 20,000/S sends per tick rather than one burst of 20,000 per interval.
    // Each socket is still visited once per interval, as with one big tick.
    let tick = 0
    const heartbeat = setInterval(() => {
      const slot = slots[tick]!
      tick = (tick + 1) % slots.length
      const now = Date.now()
      // forEach, not for…of with [socket, state]: no entry array per socket per tick.
      slot.forEach((state, socket) => {
        if (now - state.lastSeen >= opts.idleTimeoutMs) {
          socket.close(Errors.IDLE_TIMEOUT.closeCode, 'idle timeout')
          slot.delete(socket)
        } else if (socket.readyState === socket.OPEN) {
          sendPing(socket)
        }
      })
    }, opts.heartbeatIntervalMs / slots.length)
    heartbeat.unref()
    app.addHook('onClose', async () => clearInterval(heartbeat))

    /** Resolves once no frame is being handled (none is taken in while draining). */
    async function drain(): Promise<void> {
      while (busy.size > 0) await Promise.allSettled(busy)
    }

    app.decorate('serveSocket', function serveSocket<Frame>(socket: WebSocket, req: FastifyRequest, handlers: FrameHandlers<Frame>) {
      const log = handlers.log ?? req.log
      // An upgrade that was past the router when shutdown began.
      if (draining) {
        socket.close(Errors.SHUTTING_DOWN.closeCode, Errors.SHUTTING_DOWN.message)
        return
      }
      const state: Tracked = { lastSeen: Date.now(), slot: nextSlot }
      nextSlot = (nextSlot + 1) % slots.length
      slots[state.slot]!.set(socket, state)
      limitBuffered(socket, opts.maxBufferedBytes, log)
      releaseUpgrade(socket, req)
      app.metrics.socketServed(socket, handlers.kind, handlers.kind === 'queue' ? 'agent' : 'pending')
      const bucket = new TokenBucket(opts.rateBurst, opts.ratePerSecond)

      const fail = (err: unknown) => {
        if (err instanceof ProtocolError) {
          const spec: ErrorSpec = Errors[err.code]
          sendError(socket, err.code, err.message)
          if (spec.closeCode !== undefined) socket.close(spec.closeCode, err.code)
        } else if (isRedisUnavailable(err)) {
          log.warn({ err: (err as Error).message }, 'redis unavailable while handling a frame')
          sendError(socket, 'STORE_UNAVAILABLE')
        } else {
          log.error({ err }, 'unexpected error while handling a frame')
          sendError(socket, 'INTERNAL_ERROR')
        }
      }

      // Frames of one socket are handled strictly in order: a ChatMessage sent
      // right after Join must see the Join done.
      let chain: Promise<void> = Promise.resolve()
      const enqueue = (work: () => Promise<void> | void) => {
        const done = (chain = chain.then(work).catch(fail))
        busy.add(done)
        const settled = () => void busy.delete(done)
        done.then(settled, settled)
      }
      if (handlers.onOpen) enqueue(handlers.onOpen)

      socket.on('message', (data, isBinary) => {
        state.lastSeen = Date.now()
        // Pongs answer our own pings: they cost nothing and are not rate-limited.
        if (!isBinary && isPongFrame(data)) return
        const text = isBinary ? '' : data.toString()
        if (draining) {
          // Not read, and said so: the sender knows this frame did nothing (a v2 client re-sends it after reconnecting).
          sendError(socket, 'SHUTTING_DOWN')
          return
        }
        if (!bucket.take()) {
          app.metrics.frameIn(undefined)
          if (bucket.refusedInRow >= opts.rateCloseAfter) {
            log.warn('socket closed for flooding')
            sendError(socket, 'FLOODING')
            socket.close(Errors.FLOODING.closeCode, 'FLOODING')
          } else {
            // Answered in turn, like every frame; the queue stays bounded since
            // the socket is closed after RATE_LIMIT_CLOSE_AFTER refusals in a row.
            enqueue(() => sendError(socket, 'RATE_LIMITED'))
          }
          return
        }
        if (isBinary) {
          app.metrics.frameIn(undefined)
          // Answered in turn, after the frames before it.
          enqueue(() => sendError(socket, 'BINARY_NOT_SUPPORTED'))
          return
        }
        enqueue(async () => {
          if (socket.readyState !== socket.OPEN) return
          let frame: Frame
          try {
            frame = handlers.parser.parse(text)
          } catch (err) {
            app.metrics.frameIn(undefined)
            throw err
          }
          app.metrics.frameIn((frame as { type?: unknown }).type)
          await handlers.onFrame(frame)
        })
      })
      socket.on('close', () => {
        slots[state.slot]!.delete(socket)
        handlers.onClose?.()
      })
      socket.on('error', (err) => log.debug({ err: err.message }, 'socket error'))
    })
  },
  { name: 'switchboard-sockets', dependencies: ['switchboard-metrics'] },
)

/**
 * Every send on this socket first checks what is still waiting to go out: a
 * client that stops reading makes `bufferedAmount` grow with every frame,
 * and past `maxBytes` the frame is dropped and the socket closed with 1013
 * (SLOW_CONSUMER) instead. The close frame queues behind the unread bytes;
 * ws destroys the connection if the client does not answer it within 30 s,
 * and nothing more is queued meanwhile. A client that catches up reconnects
 * (v2 resumes after its last seq; v1 gets the history again).
 */
function limitBuffered(socket: WebSocket, maxBytes: number, log: FastifyBaseLogger): void {
  const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void
  socket.send = ((data: unknown, ...rest: unknown[]) => {
    if (socket.bufferedAmount <= maxBytes) return send(data, ...rest)
    if (socket.readyState !== socket.OPEN) return
    log.warn({ bufferedBytes: socket.bufferedAmount }, 'socket closed: the client does not read what it is sent')
    socket.close(Errors.SLOW_CONSUMER.closeCode, 'SLOW_CONSUMER')
  }) as WebSocket['send']
}

/**
 * @fastify/websocket keeps the upgrade's HTTP request and reply alive for as
 * long as the socket is open: its 'error' listener closes over them, and the
 * HTTP response it routed the upgrade with stays attached to the TCP
 * connection. Neither is used once the socket is served (its errors are
 * logged by our own listener, and ws closes a socket that errs), so both are
 * let go: about 2 KB of heap per open socket.
 */
function releaseUpgrade(socket: WebSocket, req: FastifyRequest): void {
  socket.removeAllListeners('error')
  const tcp = req.raw.socket as Socket & { _httpMessage?: { detachSocket?(socket: Socket): void } | null }
  tcp._httpMessage?.detachSocket?.(tcp)
}

/** Waits for `work` at most `ms`; true when it finished in time. */
async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([work.then(() => true as const), timedOut])
  } finally {
    clearTimeout(timer)
  }
}
