import type { FastifyBaseLogger } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = Parameters<FastifyBaseLogger['child']>[1]

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type LogArgs = [unknown?, ...unknown[]]

/**
 * A socket's logger: the app's logger with the socket's fields (reqId,
 * chatId, agentId…) added to every line it writes, the same fields a pino
 * child would write. A pino child per socket (and fastify's per-request
 * child, which a socket would otherwise keep alive for its whole life) is
 * its own prototype with its own level methods: about 1 KB of heap per open
 * socket, and more once the heap's slack is counted, for loggers that most
 * sockets use once or twice. This is one object holding two references; the
 * fields are merged only when a line is actually written.
 *
 * The line's own fields win over the socket's when both name one (a pino
 * child would write the key twice). `child` gives another socket logger
 * with more fields. The level is the app logger's: set it there.
 */
export class SocketLogger implements FastifyBaseLogger {
  constructor(
    private readonly root: FastifyBaseLogger,
    private readonly fields: Bindings,
  ) {}

  get level(): string {
    return this.root.level
  }

  set level(level: string) {
    this.root.level = level
  }

  fatal(...args: LogArgs): void {
    this.#write('fatal', args)
  }
  error(...args: LogArgs): void {
    this.#write('error', args)
  }
  warn(...args: LogArgs): void {
    this.#write('warn', args)
  }
  info(...args: LogArgs): void {
    this.#write('info', args)
  }
  debug(...args: LogArgs): void {
    this.#write('debug', args)
  }
  trace(...args: LogArgs): void {
    this.#write('trace', args)
  }
  silent(): void {}

  child(bindings: Bindings, _options?: ChildLoggerOptions): FastifyBaseLogger {
    return new SocketLogger(this.root, { ...this.fields, ...bindings })
  }

  /** pino's call forms: (obj, msg?, …args), (err, msg?, …args), (msg, …args). */
  #write(level: Level, [first, ...rest]: LogArgs): void {
    const log = this.root[level] as (...args: unknown[]) => void
    if (first instanceof Error) log.call(this.root, { ...this.fields, err: first }, ...(rest.length > 0 ? rest : [first.message]))
    else if (typeof first === 'object' && first !== null) log.call(this.root, { ...this.fields, ...first }, ...rest)
    else log.call(this.root, this.fields, first, ...rest)
  }
}
