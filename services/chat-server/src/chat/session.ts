import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { WebSocket } from 'ws'
import { Errors, ProtocolError, encode, type FrameParser, type JoinArgsV2, type Party } from '@switchboard/protocol'
import { getChat, type ChatRecord } from '@switchboard/domain'
import { sendError, type AgentIdentity, type FrameHandlers } from '@switchboard/server-kit'
import type { SessionContext } from './context.js'
import { Delivery, type ControlFrameType, type DeliveryHost } from './delivery.js'
import { CHAT_FRAME_PARSERS, type ArgsOf, type ChatFrame, type ChatFrameType } from './frames.js'
import { loadMore } from './history.js'
import { joinChat } from './join.js'
import { sendMessage } from './messages.js'
import type { ChatRouteOptions } from './options.js'
import { ConversationSignals, type SignalsHost } from './signals.js'
import type { ChatSocketLimit } from './socket-limit.js'
import { WaitingVisitor, type WaitingHost } from './waiting.js'

/** What a chat socket's session is made with. */
export interface ChatSessionDeps {
  app: FastifyInstance
  socket: WebSocket
  chatId: string
  log: FastifyBaseLogger
  opts: ChatRouteOptions
  /** The agent the handshake's token named, if any. */
  agent: AgentIdentity | null
  /** The per-chat socket limit of this instance. */
  socketLimit: ChatSocketLimit
  /** 1: seed 004, byte for byte; 2: the switchboard.v2 subprotocol. */
  version: 1 | 2
  /** The route's open sessions: this one is in it from when it is served until its socket closes. */
  sessions: Set<ChatSession>
}

type Handler<T extends ChatFrameType> = (session: ChatSession, args: ArgsOf<T>) => Promise<void>

/** Each client frame type's handler. */
const FRAME_HANDLERS: { readonly [T in ChatFrameType]: Handler<T> } = {
  Join: (s, args) => s.join(args),
  ChatMessage: (s, args) => sendMessage(s, args),
  LoadMore: (s, args) => loadMore(s, args),
  Typing: (s, args) => s.signals.typing(args.state),
  Received: (s, args) => s.signals.receipt('delivered', args.seq),
  Read: (s, args) => s.signals.receipt('read', args.seq),
  EndChat: (s, args) => s.signals.end(args.reason ?? null),
}

/** What a live control frame does to the socket receiving it. */
const CONTROL_FRAMES: { readonly [T in ControlFrameType]: (session: ChatSession, frame: string) => void } = {
  ChatExpired: (s) => {
    s.waiting.stop()
    s.expire()
  },
  ChatUnassigned: (s, frame) => s.unassigned(frame),
  // Once an agent has joined, the chat lives by its messages, not by the visitor's presence.
  SupportJoinedUser: (s, frame) => {
    s.waiting.stop()
    s.send(frame)
  },
  // Only ever sent to the visitor: their agent put them back in the queue.
  UserJoined: (s, frame) => {
    s.send(frame)
    s.waiting.start()
  },
}

/**
 * One socket on one chat: its lifecycle (open, frames, close), the Join
 * deadline, and its subscription to the chat channel. It is the socket's
 * frame handlers itself (no closures per socket); each frame type's work is
 * in its own module (join, messages, history, signals), and its live frames
 * go through its Delivery.
 */
export class ChatSession implements FrameHandlers<ChatFrame>, SessionContext, DeliveryHost, SignalsHost, WaitingHost {
  readonly app: FastifyInstance
  readonly socket: WebSocket
  readonly chatId: string
  readonly log: FastifyBaseLogger
  readonly opts: ChatRouteOptions
  readonly agent: AgentIdentity | null
  readonly version: 1 | 2
  readonly #socketLimit: ChatSocketLimit
  readonly #sessions: Set<ChatSession>
  readonly delivery: Delivery = new Delivery(this)
  readonly signals: ConversationSignals = new ConversationSignals(this)
  readonly waiting: WaitingVisitor = new WaitingVisitor(this)
  chat: ChatRecord | undefined
  #party: Party | undefined
  /** The Join was answered: frames other than Join may be handled. */
  #joined = false
  #closed = false
  #unsubscribe: (() => Promise<void>) | undefined
  /** Admitted to the chat (ChatSocketLimit): from the moment its Join passed every check until the Join fails or the socket closes. */
  #admitted = false
  /** Closes the socket unless a Join has succeeded by then. */
  #joinTimer: ReturnType<typeof setTimeout> | undefined
  /** A Join is being answered. */
  #joining = false
  /** The deadline passed while a Join was being answered: if that Join fails, the socket is closed. */
  #deadlinePassed = false

  constructor(deps: ChatSessionDeps) {
    this.app = deps.app
    this.socket = deps.socket
    this.chatId = deps.chatId
    this.log = deps.log
    this.opts = deps.opts
    this.agent = deps.agent
    this.version = deps.version
    this.#socketLimit = deps.socketLimit
    this.#sessions = deps.sessions
  }

  get kind(): 'chat' {
    return 'chat'
  }

  get parser(): FrameParser<ChatFrame> {
    return CHAT_FRAME_PARSERS[this.version]
  }

  get redis(): Redis {
    return this.app.redis.commands
  }

  get closed(): boolean {
    return this.#closed
  }

  get party(): Party | undefined {
    return this.#party
  }

  onOpen(): Promise<void> {
    if (!this.#closed) {
      this.#sessions.add(this)
      // A socket that never joins (or whose Joins are all refused) is not admitted to the chat, but
      // it holds a connection and answers pings: it is closed after a while instead.
      this.#joinTimer = setTimeout(() => this.#joinDeadline(), this.opts.joinTimeoutMs)
      this.#joinTimer.unref()
    }
    return this.expireOnGone(() => this.open())
  }

  onFrame(frame: ChatFrame): Promise<void> {
    return this.expireOnGone(() => this.handle(frame))
  }

  onClose(): void {
    this.#sessions.delete(this)
    this.close()
  }

  /** An unknown or expired chat is answered with ChatExpired and a 4410 close. */
  async open(): Promise<void> {
    const chat = await getChat(this.redis, this.chatId)
    if (chat === null) throw new ProtocolError('CHAT_EXPIRED')
    this.chat = chat
  }

  handle(frame: ChatFrame): Promise<void> {
    return (FRAME_HANDLERS[frame.type] as Handler<ChatFrameType>)(this, frame.args)
  }

  /** A Join sent in time but slow to answer (a loaded server, Redis failing over) is let finish, not cut off. */
  async join(args: JoinArgsV2): Promise<void> {
    this.#joining = true
    try {
      await joinChat(this, args)
    } catch (err) {
      // After the refusal itself, which the socket layer sends once this rejects.
      if (this.#deadlinePassed) setImmediate(() => this.#joinTimedOut())
      throw err
    } finally {
      this.#joining = false
    }
  }

  joinedParty(): Party {
    if (!this.#joined) throw new ProtocolError('NOT_JOINED')
    return this.#party!
  }

  async listen(party: Party): Promise<void> {
    // The admission is taken once every check of the frame has passed; a Join refused
    // later (ALREADY_CLAIMED, AGENT_AT_CAPACITY, Redis away) gives it back. A socket
    // that closed meanwhile has released everything already: it takes nothing.
    if (!this.#admitted && !this.#closed) {
      if (!this.#socketLimit.admit(this.chatId)) {
        this.log.warn('too many sockets joined one chat')
        throw new ProtocolError('TOO_MANY_CONNECTIONS', `More than ${this.opts.maxSocketsPerChat} sockets joined this chat here`)
      }
      this.#admitted = true
    }
    this.#party = party
    this.delivery.hold(party)
    try {
      const unsubscribe = await this.app.chatChannels.listen(this.chatId, (message) => this.delivery.onPublication(message))
      if (this.#closed) await unsubscribe()
      else this.#unsubscribe = unsubscribe
    } catch (err) {
      this.#party = undefined
      this.delivery.joinFailed()
      this.#releaseAdmission()
      throw err
    }
  }

  async answerJoin(answer: () => Promise<void>): Promise<void> {
    try {
      await answer()
      await this.delivery.settleStart()
    } catch (err) {
      this.#party = undefined
      this.delivery.joinFailed()
      this.#releaseAdmission()
      const unsubscribe = this.#unsubscribe
      this.#unsubscribe = undefined
      await unsubscribe?.()
      throw err
    }
    this.#clearJoinTimer()
    this.#deadlinePassed = false
    this.#joined = true
    this.app.metrics.socketRole(this.socket, this.#party === 'Support' ? 'agent' : 'visitor')
    this.delivery.joined()
  }

  /** The Redis subscriber came back: read what was missed meanwhile. */
  catchUp(): void {
    this.delivery.catchUp()
  }

  onControlFrame(type: ControlFrameType, frame: string): void {
    CONTROL_FRAMES[type](this, frame)
  }

  /** The chat was handed on: an agent's socket other than the new agent's is told (v2) and closed with 4403. */
  unassigned(frame: string): void {
    const { args } = JSON.parse(frame) as { args: { toAgentId: string | null } }
    if (this.#party !== 'Support' || (this.agent !== null && this.agent.agentId === args.toAgentId)) return
    this.signals.stopTyping().catch(() => {})
    if (this.version === 2) this.send(frame)
    this.socket.close(Errors.CHAT_TRANSFERRED.closeCode, 'CHAT_TRANSFERRED')
  }

  /** Runs `work`; if the chat turns out to be gone, answers ChatExpired (not an Error frame) and closes. */
  async expireOnGone(work: () => Promise<void>): Promise<void> {
    try {
      await work()
    } catch (err) {
      if (err instanceof ProtocolError && err.code === 'CHAT_EXPIRED') this.expire()
      else throw err
    }
  }

  expire(): void {
    this.send(encode.chatExpired(this.chatId))
    this.socket.close(Errors.CHAT_EXPIRED.closeCode, 'CHAT_EXPIRED')
  }

  close(): void {
    this.#closed = true
    this.delivery.close()
    this.#clearJoinTimer()
    this.#releaseAdmission()
    this.waiting.stop()
    this.signals.close()
    const unsubscribe = this.#unsubscribe
    this.#unsubscribe = undefined
    unsubscribe?.().catch(() => {})
  }

  send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame)
  }

  #joinDeadline(): void {
    this.#joinTimer = undefined
    if (this.#joining) this.#deadlinePassed = true
    else this.#joinTimedOut()
  }

  #clearJoinTimer(): void {
    clearTimeout(this.#joinTimer)
    this.#joinTimer = undefined
  }

  #joinTimedOut(): void {
    if (this.#closed) return
    this.log.info('socket closed: no successful Join in time')
    sendError(this.socket, 'JOIN_TIMEOUT')
    this.socket.close(Errors.JOIN_TIMEOUT.closeCode, 'JOIN_TIMEOUT')
  }

  /** A Join is refused or failed, or the socket closed: its admission goes back, so refused sockets cannot fill the chat. */
  #releaseAdmission(): void {
    if (!this.#admitted) return
    this.#admitted = false
    this.#socketLimit.release(this.chatId)
  }
}
