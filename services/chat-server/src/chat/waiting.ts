import type { FastifyInstance } from 'fastify'

/** What a waiting visitor needs from their socket's session. */
export interface WaitingHost {
  readonly app: FastifyInstance
  readonly chatId: string
  readonly version: 1 | 2
  readonly closed: boolean
  send(frame: string): void
}

/**
 * A visitor's socket while they wait for an agent: the chat stays alive while
 * they are here (app.waitingVisitors), and a v2 visitor is told where they
 * stand (app.queuePositions).
 */
export class WaitingVisitor {
  #waiting = false
  /** Stops the QueuePosition updates of a waiting v2 visitor. */
  #unwatch: (() => void) | undefined

  constructor(private readonly host: WaitingHost) {}

  start(): void {
    const { app, chatId } = this.host
    // A socket that closed meanwhile must not keep the visitor queued.
    if (this.#waiting || this.host.closed) return
    this.#waiting = true
    app.waitingVisitors.add(chatId)
    if (this.host.version === 2) this.#unwatch = app.queuePositions.watch(chatId, (frame) => this.host.send(frame))
  }

  stop(): void {
    if (!this.#waiting) return
    this.#waiting = false
    this.host.app.waitingVisitors.delete(this.host.chatId)
    this.#unwatch?.()
    this.#unwatch = undefined
  }
}
