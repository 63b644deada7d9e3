import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { Errors, FRAME_TYPES, frameTypeOf, type ErrorCode } from '@switchboard/protocol'
import { queueLength } from '@switchboard/domain'

/** Which socket: a chat's (`/chat/:chatId`) or the agents' queue (`/users`). */
export type SocketKind = 'chat' | 'queue'
/** Who a socket speaks for; a chat socket is `pending` until its Join is answered. */
export type SocketRole = 'visitor' | 'agent' | 'pending'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry and the metrics the rest of the code moves. */
    metrics: Metrics
  }
}

/** Label for anything that is not a known frame type or error code: labels never carry what a client wrote. */
const OTHER = 'other'
const KNOWN_FRAME_TYPES: ReadonlySet<string> = new Set(
  [...FRAME_TYPES.chat.client, ...FRAME_TYPES.chat.server, ...FRAME_TYPES.queue.client, ...FRAME_TYPES.queue.server].map(String),
)
/** Close codes that name one error of the table, for closes sent without an Error frame (idle, shutdown, expired, too big). */
const ERROR_OF_CLOSE_CODE: ReadonlyMap<number, ErrorCode> = (() => {
  const byCode = new Map<number, ErrorCode[]>()
  for (const [code, spec] of Object.entries(Errors) as [ErrorCode, { closeCode?: number }][]) {
    if (spec.closeCode !== undefined) byCode.set(spec.closeCode, [...(byCode.get(spec.closeCode) ?? []), code])
  }
  return new Map([...byCode].filter(([, codes]) => codes.length === 1).map(([closeCode, [code]]) => [closeCode, code!]))
})()
const ERROR_PREFIX = '{"type":"Error","args":{"code":"'

/** A frame type as a label: one of the protocol's, or `other`. */
export function frameTypeLabel(type: unknown): string {
  return typeof type === 'string' && KNOWN_FRAME_TYPES.has(type) ? type : OTHER
}

/** An error code as a label: one of the table's, or `other`. */
export function errorCodeLabel(code: unknown): string {
  return typeof code === 'string' && Object.hasOwn(Errors, code) ? code : OTHER
}

/** The type of a frame this server encoded (frameTypeOf; a v1 queue entry is a bare visitor). */
function outgoingType(text: string): string {
  const type = frameTypeOf(text)
  if (type === undefined) return text.startsWith('{"username":') ? 'Visitor' : OTHER
  return frameTypeLabel(type)
}

interface SocketLabels {
  readonly socket: SocketKind
  readonly role: SocketRole
}
const socketLabels = (socket: SocketKind): Record<SocketRole, SocketLabels> => ({
  visitor: Object.freeze({ socket, role: 'visitor' }),
  agent: Object.freeze({ socket, role: 'agent' }),
  pending: Object.freeze({ socket, role: 'pending' }),
})
const SOCKET_LABELS: Record<SocketKind, Record<SocketRole, SocketLabels>> = { chat: socketLabels('chat'), queue: socketLabels('queue') }

export interface Metrics {
  /** Everything below plus Node's process metrics; what `/metrics` exposes. */
  readonly registry: Registry
  /** ChatMessages stored. */
  readonly messagesStored: Counter
  /** Time to store one ChatMessage (the appendMessage script round trip). */
  readonly storeSeconds: Histogram
  /** Time to claim one visitor for an agent (JoinUser). */
  readonly claimSeconds: Histogram
  /** Redis reconnect attempts, per connection (`commands`, `subscriber`). */
  readonly redisReconnects: Counter<'connection'>
  /** ChatServer: recoveries after Redis came back (chat holds taken again, chat sockets caught up). */
  readonly chatRecoveries: Counter
  /**
   * A frame the server sends on this socket: counted by type (strings only:
   * the heartbeat's ping is not counted), and an Error frame's code as an
   * error reported. Called by the socket's own `send`, for every socket.
   */
  frameSent(socket: WebSocket, data: unknown): void
  /**
   * The server closes this socket with `code`: counted as an error when the
   * code (or the reason) names one and it was not reported on this socket
   * already by an Error frame (each error once). Called by the socket's own `close`.
   */
  socketClosing(socket: WebSocket, code: number | undefined, reason: unknown): void
  /** The socket is served as `kind`: counted as open until `socketClosed`. */
  socketServed(socket: WebSocket, kind: SocketKind, role: SocketRole): void
  /** The socket now speaks for `role` (a chat socket's Join was answered). */
  socketRole(socket: WebSocket, role: SocketRole): void
  /** A served socket closed. */
  socketClosed(socket: WebSocket): void
  /** A frame received: its type if it parsed, else `other`. */
  frameIn(type: unknown): void
}

const count = (byType: Map<string, number>, type: string) => void byType.set(type, (byType.get(type) ?? 0) + 1)

/** Adds the counts gathered since the last read to `counter`, by type. */
function addCounts(counter: Counter<'type'>, byType: Map<string, number>): void {
  for (const [type, n] of byType) counter.inc({ type }, n)
  byType.clear()
}

/** Latency buckets for one Redis round trip, in seconds: 0.5 ms to 2.5 s. */
const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/**
 * Prometheus metrics in a registry of this app's own (tests run several apps
 * in one process; the global registry would mix them), served at `/metrics`.
 * Registered before the other plugins, so they can move them.
 */
export const metricsPlugin = fp(
  async function metricsPlugin(app: FastifyInstance) {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const registers = [registry]

    const socketsOpen = new Gauge({
      name: 'switchboard_sockets_open',
      help: 'Open WebSockets by socket (chat, queue) and role (visitor, agent, pending: a chat socket not joined yet)',
      labelNames: ['socket', 'role'] as const,
      registers,
    })
    // Frames are counted per type in plain maps and added to their counters
    // when the counters are read: a Map update per frame instead of a
    // prom-client call (which builds a label key and checks the labels).
    const framesInByType = new Map<string, number>()
    const framesOutByType = new Map<string, number>()
    new Counter({
      name: 'switchboard_frames_in_total',
      help: 'Frames received, by type (other: not valid, binary or rate-limited)',
      labelNames: ['type'] as const,
      registers,
      collect() {
        addCounts(this, framesInByType)
      },
    })
    new Counter({
      name: 'switchboard_frames_out_total',
      help: 'Frames sent, by type',
      labelNames: ['type'] as const,
      registers,
      collect() {
        addCounts(this, framesOutByType)
      },
    })
    const errors = new Counter({
      name: 'switchboard_errors_total',
      help: 'Errors reported to clients (Error frames and error closes), by code',
      labelNames: ['code'] as const,
      registers,
    })
    const messagesStored = new Counter({ name: 'switchboard_messages_stored_total', help: 'ChatMessages stored', registers })
    const storeSeconds = new Histogram({
      name: 'switchboard_store_duration_seconds',
      help: 'Time to store one ChatMessage in Redis',
      buckets: REDIS_BUCKETS,
      registers,
    })
    const claimSeconds = new Histogram({
      name: 'switchboard_claim_duration_seconds',
      help: 'Time to claim one visitor for an agent (JoinUser)',
      buckets: REDIS_BUCKETS,
      registers,
    })
    const redisReconnects = new Counter({
      name: 'switchboard_redis_reconnects_total',
      help: 'Redis reconnect attempts, by connection (commands, subscriber)',
      labelNames: ['connection'] as const,
      registers,
    })
    const chatRecoveries = new Counter({
      name: 'switchboard_chat_recoveries_total',
      help: 'Times a ChatServer took its chat holds again and caught its chat sockets up, after Redis came back (one per outage)',
      registers,
    })
    new Gauge({
      name: 'switchboard_queue_length',
      help: 'Chats waiting in the queue (read from Redis at each scrape; NaN while Redis does not answer)',
      registers,
      async collect() {
        if (!app.hasDecorator('redis')) return
        try {
          this.set(await queueLength(app.redis.commands))
        } catch {
          // A stale count would look like a queue that stopped moving.
          this.set(Number.NaN)
        }
      },
    })

    /** The open-sockets gauge's labels of each served socket (one shared object per pair: nothing per socket but the entry). */
    const served = new WeakMap<WebSocket, SocketLabels>()
    /** The last error reported on a socket, so a close that follows its Error frame is not counted twice. */
    const reported = new WeakMap<WebSocket, string>()
    const report = (socket: WebSocket, code: string) => {
      errors.inc({ code })
      reported.set(socket, code)
    }
    const metrics: Metrics = {
      registry,
      messagesStored,
      storeSeconds,
      claimSeconds,
      redisReconnects,
      chatRecoveries,
      frameSent(socket, data) {
        if (typeof data !== 'string') return
        count(framesOutByType, outgoingType(data))
        if (data.startsWith(ERROR_PREFIX)) report(socket, errorCodeLabel(data.slice(ERROR_PREFIX.length, data.indexOf('"', ERROR_PREFIX.length))))
      },
      socketClosing(socket, code, reason) {
        if (socket.readyState !== socket.OPEN || code === undefined) return
        const named = typeof reason === 'string' && Object.hasOwn(Errors, reason) ? (reason as ErrorCode) : ERROR_OF_CLOSE_CODE.get(code)
        if (named !== undefined && named !== reported.get(socket)) report(socket, named)
      },
      socketServed(socket, kind, role) {
        const labels = SOCKET_LABELS[kind][role]
        served.set(socket, labels)
        socketsOpen.inc(labels)
      },
      socketRole(socket, role) {
        const labels = served.get(socket)
        if (labels === undefined || labels.role === role || socket.readyState !== socket.OPEN) return
        socketsOpen.dec(labels)
        const next = SOCKET_LABELS[labels.socket][role]
        served.set(socket, next)
        socketsOpen.inc(next)
      },
      socketClosed(socket) {
        const labels = served.get(socket)
        if (labels === undefined) return
        socketsOpen.dec(labels)
        served.delete(socket)
      },
      frameIn(type) {
        count(framesInByType, frameTypeLabel(type))
      },
    }
    app.decorate('metrics', metrics)

    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics',
          description: 'This instance\'s metrics in the Prometheus text exposition format, Node process metrics included.',
          tags: ['operations'],
          response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    )
  },
  { name: 'switchboard-metrics' },
)
