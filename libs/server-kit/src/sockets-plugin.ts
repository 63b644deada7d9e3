import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { WebSocket, type RawData } from 'ws'
import { Errors, ProtocolError, SUBPROTOCOL_V2, encode, type ErrorCode, type ErrorSpec, type FrameParser } from '@switchboard/protocol'
import { isRedisUnavailable } from '@switchboard/domain'
import { TokenBucket } from './token-bucket.js'
import type { SocketKind } from './metrics-plugin.js'
import { SocketLogger } from './socket-logger.js'
import { heartbeatSlots, startHeartbeat } from './heartbeat.js'
import { isPongFrame, wireOf } from './text-frames.js'
import { limitSocketsPerIp } from './connection-limits.js'
import { detachUpgradeResponse, writeFrameBytes } from './private-apis.js'

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

/**
 * What serves one socket. Its methods are called as methods (`handlers.onFrame(frame)`),
 * so a session object can be its own handlers, with no closures per socket.
 */
export interface FrameHandlers<Frame> {
  /** Which socket this is, for the open-sockets gauge: a queue socket is an agent's, a chat socket's role is known once it joins. */
  readonly kind: SocketKind
  readonly parser: FrameParser<Frame>
  /** Logger for this socket (e.g. one carrying chatId); defaults to the app's logger with the request's reqId. */
  readonly log?: FastifyBaseLogger
  /** Handles one valid frame. Frames of one socket are handled one at a time, in order. */
  onFrame(frame: Frame): Promise<void> | void
  /**
   * Runs before any frame is handled (frames that arrive meanwhile wait).
   * Throwing a ProtocolError answers the client and, for errors with a close code, closes the socket.
   */
  onOpen?(): Promise<void> | void
  onClose?(): void
}

const SETTLED: Promise<void> = Promise.resolve()

/**
 * What the plugin keeps per served socket, in one object: the socket's
 * listeners are the plugin's own functions, shared by every socket (they
 * find this through the socket), so an open socket costs no closures.
 */
class Served {
  readonly openedAt = Date.now()
  lastSeen = this.openedAt
  /** Frames of this socket, handled strictly in order: a ChatMessage sent right after Join must see the Join done. */
  chain: Promise<void> = SETTLED
  constructor(
    readonly socket: AppWebSocket,
    readonly handlers: FrameHandlers<unknown>,
    readonly log: FastifyBaseLogger,
    /** The heartbeat slot this socket is pinged in, fixed when it is served. */
    readonly slot: number,
    readonly bucket: TokenBucket,
  ) {}
}

/** A socket of the app's ws server (ServedWebSocket, a class made per app: its send and close report to that app's metrics). */
interface AppWebSocket extends WebSocket {
  served: Served | undefined
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
    const slots = Array.from({ length: heartbeatSlots(opts.heartbeatIntervalMs) }, () => new Set<Served>())
    let nextSlot = 0
    const socketCount = () => slots.reduce((n, slot) => n + slot.size, 0)
    /** Frame handling not finished yet, on any socket (closed ones too): shutdown waits for it. */
    const busy = new Set<Promise<void>>()
    /** Shutting down: no frame is read any more. */
    let draining = false
    const metrics = app.metrics

    /**
     * Every socket of this app's ws server is one of these. Frames sent and
     * errors reported are counted here, and every send first checks what is
     * still waiting to go out: a client that stops reading makes
     * `bufferedAmount` grow with every frame, and past `maxBufferedBytes` the
     * frame is dropped and the socket closed with 1013 (SLOW_CONSUMER)
     * instead. The close frame queues behind the unread bytes; ws destroys
     * the connection if the client does not answer it within 30 s, and
     * nothing more is queued meanwhile. A client that catches up reconnects
     * (v2 resumes after its last seq; v1 gets the history again). Methods
     * of the class, not wrappers per socket: nothing per socket but `served`.
     */
    class ServedWebSocket extends WebSocket implements AppWebSocket {
      served: Served | undefined = undefined

      override send(data: unknown, options?: unknown, cb?: unknown): void {
        if (this.bufferedAmount > opts.maxBufferedBytes) {
          if (this.readyState !== this.OPEN) return
          ;(this.served?.log ?? app.log).warn({ bufferedBytes: this.bufferedAmount }, 'socket closed: the client does not read what it is sent')
          this.close(Errors.SLOW_CONSUMER.closeCode, 'SLOW_CONSUMER')
          return
        }
        metrics.frameSent(this, data)
        // A text frame is written as bytes encoded once for every socket it goes to.
        if (typeof data === 'string' && options === undefined && cb === undefined && this.readyState === this.OPEN && writeFrameBytes(this, wireOf(data))) return
        ;(super.send as (data: unknown, options?: unknown, cb?: unknown) => void)(data, options, cb)
      }

      override close(code?: number, reason?: string | Buffer): void {
        metrics.socketClosing(this, code, reason)
        super.close(code, reason)
      }
    }

    // The socket's listeners: one function each for every socket (`this` is the socket).
    function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
      const served = (this as AppWebSocket).served!
      served.lastSeen = Date.now()
      // Pongs answer our own pings: they cost nothing and are not rate-limited.
      if (!isBinary && isPongFrame(data)) return
      if (draining) {
        // Not read, and said so: the sender knows this frame did nothing (a v2 client re-sends it after reconnecting).
        sendError(this, 'SHUTTING_DOWN')
        return
      }
      if (!served.bucket.take()) {
        metrics.frameIn(undefined)
        if (served.bucket.refusedInRow >= opts.rateCloseAfter) {
          served.log.warn('socket closed for flooding')
          sendError(this, 'FLOODING')
          this.close(Errors.FLOODING.closeCode, 'FLOODING')
        } else {
          // Answered in turn, like every frame; the queue stays bounded since
          // the socket is closed after RATE_LIMIT_CLOSE_AFTER refusals in a row.
          enqueue(served, () => sendError(served.socket, 'RATE_LIMITED'))
        }
        return
      }
      if (isBinary) {
        metrics.frameIn(undefined)
        // Answered in turn, after the frames before it.
        enqueue(served, () => sendError(served.socket, 'BINARY_NOT_SUPPORTED'))
        return
      }
      const text = data.toString()
      enqueue(served, async () => {
        if (served.socket.readyState !== WebSocket.OPEN) return
        let frame: unknown
        try {
          frame = served.handlers.parser.parse(text)
        } catch (err) {
          metrics.frameIn(undefined)
          throw err
        }
        metrics.frameIn((frame as { type?: unknown }).type)
        await served.handlers.onFrame(frame)
      })
    }

    // The upgrade's "request completed" line is not written (its response is let go, see
    // releaseUpgrade): this line says when and how the socket ended instead.
    function onClose(this: WebSocket, code: number): void {
      const served = (this as AppWebSocket).served!
      served.log.info({ code, ms: Date.now() - served.openedAt }, 'socket closed')
      slots[served.slot]!.delete(served)
      metrics.socketClosed(this)
      served.handlers.onClose?.()
    }

    function onError(this: WebSocket, err: Error): void {
      ;(this as AppWebSocket).served!.log.debug({ err: err.message }, 'socket error')
    }

    /** Runs `work` after the socket's frames before it; its errors answer the client. */
    function enqueue(served: Served, work: () => Promise<void> | void): void {
      const done = (served.chain = served.chain.then(work).catch((err: unknown) => fail(served, err)))
      busy.add(done)
      const settled = () => void busy.delete(done)
      done.then(settled, settled)
    }

    function fail(served: Served, err: unknown): void {
      const socket = served.socket
      if (err instanceof ProtocolError) {
        const spec: ErrorSpec = Errors[err.code]
        sendError(socket, err.code, err.message)
        if (spec.closeCode !== undefined) socket.close(spec.closeCode, err.code)
      } else if (isRedisUnavailable(err)) {
        served.log.warn({ err: (err as Error).message }, 'redis unavailable while handling a frame')
        sendError(socket, 'STORE_UNAVAILABLE')
      } else {
        served.log.error({ err }, 'unexpected error while handling a frame')
        sendError(socket, 'INTERNAL_ERROR')
      }
    }

    await app.register(websocket, {
      options: {
        // ws makes every socket of this server one of ours (its types want the module's whole export).
        WebSocket: ServedWebSocket as never,
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
    const connections = limitSocketsPerIp(app, opts.maxSocketsPerIp)

    // An upgrade answered with anything but 101 (401, 403, 429, 404…) is an HTTP
    // response on a connection @fastify/websocket destroys once it is sent: said
    // so, or a keep-alive client would send its next request on it and be reset.
    app.addHook('onSend', async (req, reply) => {
      if (req.ws) reply.header('connection', 'close')
    })

    const heartbeat = startHeartbeat(slots, opts.heartbeatIntervalMs, opts.idleTimeoutMs)
    app.addHook('onClose', async () => clearInterval(heartbeat))

    /** Resolves once no frame is being handled (none is taken in while draining). */
    async function drain(): Promise<void> {
      while (busy.size > 0) await Promise.allSettled(busy)
    }

    app.decorate('serveSocket', function serveSocket<Frame>(ws: WebSocket, req: FastifyRequest, handlers: FrameHandlers<Frame>) {
      const socket = ws as AppWebSocket
      // An upgrade that was past the router when shutdown began.
      if (draining) {
        socket.close(Errors.SHUTTING_DOWN.closeCode, Errors.SHUTTING_DOWN.message)
        return
      }
      const log = handlers.log ?? new SocketLogger(app.log, { reqId: req.id })
      const served = new Served(socket, handlers as FrameHandlers<unknown>, log, nextSlot, new TokenBucket(opts.rateBurst, opts.ratePerSecond))
      nextSlot = (nextSlot + 1) % slots.length
      socket.served = served
      slots[served.slot]!.add(served)
      metrics.socketServed(socket, handlers.kind, handlers.kind === 'queue' ? 'agent' : 'pending')
      if (handlers.onOpen) enqueue(served, () => served.handlers.onOpen!())
      socket.on('message', onMessage)
      socket.on('close', onClose)
      socket.on('error', onError)
      releaseUpgrade(socket, req, onError)
    })
  },
  { name: 'switchboard-sockets', dependencies: ['switchboard-metrics'] },
)

/**
 * @fastify/websocket keeps the upgrade's HTTP request and reply alive for as
 * long as the socket is open: its 'error' listener closes over them, and the
 * HTTP response it routed the upgrade with stays attached to the TCP
 * connection. Neither is used once the socket is served (its errors are
 * logged by our own listener, `ours`, and ws closes a socket that errs), so
 * both are let go: about 2 KB of heap per open socket. The other listeners
 * are removed one by one after ours was added: removing an event's last
 * listener deletes a property of the emitter's `_events`, which turns that
 * object into a slower, larger dictionary for the rest of the socket's life.
 */
function releaseUpgrade(socket: WebSocket, req: FastifyRequest, ours: (...args: never[]) => void): void {
  for (const listener of socket.listeners('error')) if (listener !== ours) socket.removeListener('error', listener as (...args: unknown[]) => void)
  detachUpgradeResponse(req.raw.socket)
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
