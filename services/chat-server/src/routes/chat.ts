import type {} from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import {
  ChatClientFrames,
  Errors,
  ProtocolError,
  compileFrameParser,
  encode,
  isId,
  type ChatMessageArgs,
  type JoinArgs,
} from '@switchboard/protocol'
import {
  appendMessage,
  channels,
  enqueueVisitor,
  getChat,
  joinSupport,
  openEnvelope,
  readHistory,
  supportJoinedOf,
  type ChatRecord,
  type ExpiryOptions,
} from '@switchboard/domain'
import { acceptAgent, sendError, type AgentIdentity } from '@switchboard/server-kit'

export interface ChatRouteOptions extends ExpiryOptions {
  /** Longest ChatMessage content, in characters. */
  maxMessageLength: number
  /** Sockets that have joined one chat, on this instance. */
  maxSocketsPerChat: number
}

/**
 * Seats on a chat, taken by sockets that have joined it (proved who they
 * are). Sockets that never join take none, so a leaked chatId cannot be used
 * to fill a chat and lock its visitor out; those are bounded per IP instead.
 */
class ChatSeats {
  readonly #taken = new Map<string, number>()
  constructor(private readonly max: number) {}
  take(chatId: string): boolean {
    const n = this.#taken.get(chatId) ?? 0
    if (n >= this.max) return false
    this.#taken.set(chatId, n + 1)
    return true
  }
  release(chatId: string): void {
    const n = (this.#taken.get(chatId) ?? 1) - 1
    if (n > 0) this.#taken.set(chatId, n)
    else this.#taken.delete(chatId)
  }
}

const parser = compileFrameParser(ChatClientFrames)
type Role = 'user' | 'support'

const CHAT_EXPIRED_PREFIX = '{"type":"ChatExpired"'
const SUPPORT_JOINED_PREFIX = '{"type":"SupportJoinedUser"'
const CHAT_MESSAGE_PREFIX = '{"type":"ChatMessage","args":'

/** WebSocket `/chat/:chatId`: the conversation between one visitor and one agent. */
export async function chatRoute(app: FastifyInstance, opts: ChatRouteOptions) {
  const seats = new ChatSeats(opts.maxSocketsPerChat)

  app.get<{ Params: { chatId: string } }>(
    '/chat/:chatId',
    {
      websocket: true,
      // Before the upgrade: a token that is present must be valid (401).
      preValidation: acceptAgent,
    },
    (socket, req) => {
      const { chatId } = req.params
      if (!isId(chatId)) {
        sendError(socket, 'INVALID_CHAT_ID')
        socket.close(Errors.INVALID_CHAT_ID.closeCode, 'INVALID_CHAT_ID')
        return
      }
      const log = req.log.child({ chatId, ...(req.agent ? { agentId: req.agent.agentId } : {}) })
      const session = new ChatSession(app, socket, chatId, log, opts, req.agent, seats)
      app.serveSocket(socket, req, {
        log,
        parser,
        onOpen: () => session.expireOnGone(() => session.open()),
        onFrame: (frame) =>
          session.expireOnGone(() => (frame.type === 'Join' ? session.join(frame.args) : session.sendMessage(frame.args))),
        onClose: () => session.close(),
      })
    },
  )
}

/** One socket on one chat: who it joined as, and the chat frames it receives. */
class ChatSession {
  #role: Role | undefined
  #chat: ChatRecord | undefined
  #unsubscribe: (() => Promise<void>) | undefined
  /** Live frames that arrive while a Join is being answered; sent right after the answer. */
  #held: string[] | undefined
  #waiting = false
  #closed = false

  constructor(
    private readonly app: FastifyInstance,
    private readonly socket: WebSocket,
    private readonly chatId: string,
    private readonly log: FastifyBaseLogger,
    private readonly opts: ChatRouteOptions,
    /** The agent the handshake's token named, if any. */
    private readonly agent: AgentIdentity | null,
    private readonly seats: ChatSeats,
  ) {}

  #seated = false

  /** An unknown or expired chat is answered with ChatExpired and a 4410 close. */
  async open(): Promise<void> {
    const chat = await getChat(this.app.redis.commands, this.chatId)
    if (chat === null) throw new ProtocolError('CHAT_EXPIRED')
    this.#chat = chat
  }

  async join(args: JoinArgs): Promise<void> {
    if (this.#role !== undefined) throw new ProtocolError('ALREADY_JOINED')
    // Read the chat again: an agent may have joined since the socket opened.
    const chat = await getChat(this.app.redis.commands, this.chatId)
    if (chat === null) throw new ProtocolError('CHAT_EXPIRED')
    this.#chat = chat
    if (args.userId !== chat.userId) throw new ProtocolError('IDENTITY_MISMATCH', 'userId does not belong to this chat')
    const role: Role = args.from === 'User' ? 'user' : 'support'
    // Identity comes from the connection: an agent's token never speaks for a
    // visitor, and only a token speaks for an agent.
    if (role === 'user' && this.agent !== null) {
      throw new ProtocolError('IDENTITY_MISMATCH', "An agent's socket cannot join as the visitor")
    }
    if (role === 'support' && this.agent === null && this.app.agentAuth.enabled) throw new ProtocolError('UNAUTHORIZED')
    // One seat per socket, however many Joins it tries.
    if (!this.#seated) {
      if (!this.seats.take(this.chatId)) {
        this.log.warn('too many sockets joined one chat')
        sendError(this.socket, 'TOO_MANY_CONNECTIONS', `More than ${this.opts.maxSocketsPerChat} sockets joined this chat here`)
        this.socket.close(Errors.FLOODING.closeCode, 'TOO_MANY_CONNECTIONS')
        return
      }
      this.#seated = true
    }

    if (args.supportId !== undefined) {
      if (args.supportId !== chat.supportId) {
        throw new ProtocolError('IDENTITY_MISMATCH', 'supportId does not belong to this chat')
      }
      if (role === 'support' && this.agent !== null && chat.agentId !== undefined && chat.agentId !== this.agent.agentId) {
        throw new ProtocolError('IDENTITY_MISMATCH', 'Another agent has this chat')
      }
      await this.#listen(role)
      await this.#answerJoin(() => this.#sendHistory(chat))
      return
    }

    if (role === 'support') {
      // An authenticated agent is named by their token, not by the frame.
      const name = this.agent?.name ?? args.supportUserName
      if (name === undefined) {
        throw new ProtocolError('INVALID_FRAME', 'Join: an agent joining without supportId must send supportUserName')
      }
      await this.#listen(role)
      // SupportJoinedUser reaches both participants through the chat channel.
      await this.#answerJoin(async () => {
        const joined = await joinSupport(this.app.redis.commands, chat, name, this.opts, this.agent?.agentId)
        this.#chat = { ...chat, state: 'active', supportId: joined.supportId, supportUserName: joined.supportUserName }
        if (joined.rejoined) {
          // This agent has the chat already (a console that lost its supportId): give it back, with the history.
          this.#send(encode.supportJoinedUser(joined))
          await this.#sendHistory(this.#chat)
          return
        }
        this.log.info({ supportId: joined.supportId }, 'agent joined chat')
      })
      return
    }

    await this.#listen(role)
    await this.#answerJoin(async () => {
      const state = await enqueueVisitor(this.app.redis.commands, chat, this.opts)
      if (state === 'active') {
        // A visitor who lost their supportId (a seed-004 page that kept only
        // chatId) is given it back, with the conversation so far.
        const current = await getChat(this.app.redis.commands, this.chatId)
        if (current === null) throw new ProtocolError('CHAT_EXPIRED')
        this.#send(encode.supportJoinedUser(supportJoinedOf(current)))
        await this.#sendHistory(current)
        return
      }
      this.#send(encode.userJoined(chat))
      // A socket that closed meanwhile must not keep the visitor queued.
      if (this.#closed) return
      this.#waiting = true
      this.app.waitingVisitors.add(this.chatId)
      if (state === 'queued') this.log.info('visitor queued')
    })
  }

  async sendMessage(args: ChatMessageArgs): Promise<void> {
    const role = this.#role
    const chat = this.#chat
    if (role === undefined || chat === undefined) throw new ProtocolError('NOT_JOINED')
    if ((args.from === 'User') !== (role === 'user')) {
      throw new ProtocolError('IDENTITY_MISMATCH', `This socket joined as ${role === 'user' ? 'User' : 'Support'}`)
    }
    if (args.userId !== chat.userId) throw new ProtocolError('IDENTITY_MISMATCH', 'userId does not belong to this chat')
    if (exceeds(args.content, this.opts.maxMessageLength)) {
      throw new ProtocolError('MESSAGE_TOO_LONG', `Message content is longer than ${this.opts.maxMessageLength} characters`)
    }
    // The echo arrives through the chat channel, after the message is stored.
    await appendMessage(
      this.app.redis.commands,
      { chatId: this.chatId, userId: args.userId, supportId: args.supportId, content: args.content, from: args.from },
      this.opts,
    )
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

  /** Tells the client its chat is gone and closes with 4410. */
  expire(): void {
    this.#send(encode.chatExpired(this.chatId))
    this.socket.close(Errors.CHAT_EXPIRED.closeCode, 'CHAT_EXPIRED')
  }

  close(): void {
    this.#closed = true
    if (this.#seated) this.seats.release(this.chatId)
    this.#stopWaiting()
    const unsubscribe = this.#unsubscribe
    this.#unsubscribe = undefined
    unsubscribe?.().catch(() => {})
  }

  /** Subscribes to the chat channel before anything is read, so nothing published meanwhile is missed. */
  async #listen(role: Role): Promise<void> {
    this.#role = role
    this.#held = []
    try {
      const unsubscribe = await this.app.pubsub.subscribe(channels.chat(this.chatId), (message) => this.#onChannel(message))
      if (this.#closed) await unsubscribe()
      else this.#unsubscribe = unsubscribe
    } catch (err) {
      this.#role = undefined
      this.#held = undefined
      throw err
    }
  }

  /** Runs the answer to a Join, then releases the live frames held meanwhile (minus any already in the history). */
  async #answerJoin(answer: () => Promise<void>): Promise<void> {
    try {
      await answer()
    } catch (err) {
      this.#role = undefined
      this.#held = undefined
      const unsubscribe = this.#unsubscribe
      this.#unsubscribe = undefined
      await unsubscribe?.()
      throw err
    }
    const held = this.#held ?? []
    this.#held = undefined
    for (const frame of held) this.#deliver(frame)
  }

  async #sendHistory(chat: ChatRecord): Promise<void> {
    const messages = await readHistory(this.app.redis.commands, this.chatId)
    this.#send(encode.chatHistoryFromStored(chat, messages))
    // Messages stored between the subscription and the read are in both: skip their live copies.
    const inHistory = new Set(messages)
    const held = this.#held ?? []
    this.#held = []
    for (const frame of held) this.#deliver(frame, inHistory)
  }

  #onChannel(message: string): void {
    const opened = openEnvelope(message)
    if (opened === null || (opened.to !== 'all' && opened.to !== this.#role)) return
    if (this.#held !== undefined) this.#held.push(opened.frame)
    else this.#deliver(opened.frame)
  }

  #deliver(frame: string, skip?: ReadonlySet<string>): void {
    if (skip !== undefined && skip.size > 0 && frame.startsWith(CHAT_MESSAGE_PREFIX)) {
      if (skip.has(frame.slice(CHAT_MESSAGE_PREFIX.length, -1))) return
    }
    if (frame.startsWith(CHAT_EXPIRED_PREFIX)) {
      this.#stopWaiting()
      this.expire()
      return
    }
    // Once an agent has joined, the chat lives by its messages, not by the visitor's presence.
    if (frame.startsWith(SUPPORT_JOINED_PREFIX)) this.#stopWaiting()
    this.#send(frame)
  }

  #stopWaiting(): void {
    if (!this.#waiting) return
    this.#waiting = false
    this.app.waitingVisitors.delete(this.chatId)
  }

  #send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame)
  }
}

/** True when `text` has more than `max` characters (code points), without counting past the limit. */
function exceeds(text: string, max: number): boolean {
  if (text.length <= max) return false
  let count = 0
  for (const _ of text) if (++count > max) return true
  return false
}
