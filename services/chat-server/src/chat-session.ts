import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import {
  Errors,
  ProtocolError,
  encode,
  encodeV2,
  isStoredMessage,
  storedSeq,
  HISTORY_PAGE_SIZE,
  type ChatMessageArgsV2,
  type EndChatArgs,
  type JoinArgsV2,
  type LoadMoreArgs,
  type Party,
  type ReceiptArgs,
  type TypingArgs,
  ChatClientFrames,
  ChatClientFramesV2,
  compileFrameParser,
  type FrameParser,
} from '@switchboard/protocol'
import {
  appendMessage,
  channels,
  endChat,
  enqueueVisitor,
  envelope,
  getChat,
  isRedisUnavailable,
  joinSupport,
  lastSeq,
  markReceipt,
  openEnvelope,
  readMessages,
  type OpenedEnvelope,
  readState,
  supportJoinedOf,
  type ChatRecord,
} from '@switchboard/domain'
import { sendError, type AgentIdentity, type FrameHandlers } from '@switchboard/server-kit'
import type { ChatRouteOptions, ChatSeats } from './routes/chat.js'

type Role = 'user' | 'support'
/** A frame of either version; v1 frames are a subset of v2's. */
export type ChatFrame =
  | { type: 'Join'; args: JoinArgsV2 }
  | { type: 'ChatMessage'; args: ChatMessageArgsV2 }
  | { type: 'LoadMore'; args: LoadMoreArgs }
  | { type: 'Typing'; args: TypingArgs }
  | { type: 'Received'; args: ReceiptArgs }
  | { type: 'Read'; args: ReceiptArgs }
  | { type: 'EndChat'; args: EndChatArgs }

const CHAT_EXPIRED_PREFIX = '{"type":"ChatExpired"'
const SUPPORT_JOINED_PREFIX = '{"type":"SupportJoinedUser"'
const USER_JOINED_PREFIX = '{"type":"UserJoined"'
const CHAT_UNASSIGNED_PREFIX = '{"type":"ChatUnassigned"'

/** How long a failed read of missed messages waits before it is tried again. */
const CATCH_UP_RETRY_MS = 500

/**
 * The last chat-channel publication, opened, and the frames of the last
 * stored message. Every socket of a chat on this instance gets the same
 * publication, one listener right after another: the envelope is opened and
 * each version's frame built once per message, not once per socket, and
 * every socket is given the very same string (so ws measures and encodes a
 * flat string rather than a fresh concatenation each time).
 */
let lastPublication: { message: string; opened: OpenedEnvelope | null; unreadFrame: string } = { message: '', opened: null, unreadFrame: '' }
const lastStored = { stored: '', v1: '', v2: '' }

function openPublication(message: string): OpenedEnvelope | null {
  if (message !== lastPublication.message) lastPublication = { message, opened: openEnvelope(message), unreadFrame: '' }
  return lastPublication.opened
}

/** The UnreadCount frame a message's publication carries for its recipient's v2 sockets, built once. */
function unreadFrameOf(chatId: string, unread: { count: number }): string {
  return (lastPublication.unreadFrame ||= encodeV2.unreadCount(chatId, unread.count))
}

/** A stored message as a ChatMessage frame of `version`, byte for byte what the encoders make. */
function storedMessageFrame(stored: string, version: 1 | 2): string {
  if (stored !== lastStored.stored) {
    lastStored.stored = stored
    lastStored.v1 = ''
    lastStored.v2 = ''
  }
  if (version === 2) return (lastStored.v2 ||= encodeV2.chatMessageFromStored(stored))
  return (lastStored.v1 ||= encode.chatMessageFromStored(stored))
}

// v1 accepts only seed 004's frame types; its frames are a subset of v2's.
const PARSERS: Record<1 | 2, FrameParser<ChatFrame>> = {
  1: compileFrameParser(ChatClientFrames),
  2: compileFrameParser(ChatClientFramesV2),
}

const partyOf = (role: Role): Party => (role === 'user' ? 'User' : 'Support')
const otherRole = (role: Role): Role => (role === 'user' ? 'support' : 'user')

/**
 * One socket on one chat: who it joined as, which protocol it speaks, and the
 * chat frames it receives. It is the socket's frame handlers itself (no
 * closures per socket).
 */
export class ChatSession implements FrameHandlers<ChatFrame> {
  #role: Role | undefined
  #chat: ChatRecord | undefined
  #unsubscribe: (() => Promise<void>) | undefined
  /** Live frames that arrive while a Join is being answered; sent right after the answer. */
  #held: string[] | undefined
  /** A channel frame this socket was sent directly already. */
  #skipOnce: string | undefined
  #waiting = false
  /** Stops the QueuePosition updates of a waiting v2 visitor. */
  #unwatch: (() => void) | undefined
  #closed = false
  /** A Typing start that has not been stopped; it stops by itself when the timer fires. */
  #typingTimer: ReturnType<typeof setTimeout> | undefined
  /**
   * The seq of the last stored message this socket has (from the history or
   * live); undefined until its Join is answered. A live message at or below
   * it is a copy; one more than one above it means publications were lost.
   */
  #lastDelivered: number | undefined
  /** Live frames that arrive while missed messages are read from the store; sent after them. */
  #queued: string[] | undefined
  /** Another read of missed messages was asked for while one ran. */
  #catchUpAgain = false
  /** The Redis subscriber came back while the Join was being answered: catch up once it is. */
  #catchUpAfterJoin = false
  #catchUpRetry: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly app: FastifyInstance,
    private readonly socket: WebSocket,
    private readonly chatId: string,
    readonly log: FastifyBaseLogger,
    private readonly opts: ChatRouteOptions,
    /** The agent the handshake's token named, if any. */
    private readonly agent: AgentIdentity | null,
    private readonly seats: ChatSeats,
    /** 1: seed 004, byte for byte; 2: the switchboard.v2 subprotocol. */
    readonly version: 1 | 2,
    /** The route's open sessions: this one is in it from when it is served until its socket closes. */
    private readonly sessions: Set<ChatSession>,
  ) {}

  get kind(): 'chat' {
    return 'chat'
  }

  get parser(): FrameParser<ChatFrame> {
    return PARSERS[this.version]
  }

  onOpen(): Promise<void> {
    if (!this.#closed) {
      this.sessions.add(this)
      // A socket that never joins (or whose Joins are all refused) takes no seat, but
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
    this.sessions.delete(this)
    this.close()
  }

  /** This socket holds one of the chat's seats: from the moment its Join passed every check until the Join fails or the socket closes. */
  #seated = false
  /** Closes the socket unless a Join has succeeded by then. */
  #joinTimer: ReturnType<typeof setTimeout> | undefined
  /** A Join is being answered. */
  #joining = false
  /** The deadline passed while a Join was being answered: if that Join fails, the socket is closed. */
  #deadlinePassed = false

  /** A Join sent in time but slow to answer (a loaded server, Redis failing over) is let finish, not cut off. */
  #joinDeadline(): void {
    this.#joinTimer = undefined
    if (this.#joining) this.#deadlinePassed = true
    else this.#joinTimedOut()
  }

  async #joinBeforeDeadline(args: JoinArgsV2): Promise<void> {
    this.#joining = true
    try {
      await this.join(args)
    } catch (err) {
      // After the refusal itself, which the socket layer sends once this rejects.
      if (this.#deadlinePassed) setImmediate(() => this.#joinTimedOut())
      throw err
    } finally {
      this.#joining = false
    }
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

  /** A Join is refused or failed: its seat goes back, so refused sockets cannot fill the chat. */
  #releaseSeat(): void {
    if (!this.#seated) return
    this.#seated = false
    this.seats.release(this.chatId)
  }

  /** An unknown or expired chat is answered with ChatExpired and a 4410 close. */
  async open(): Promise<void> {
    const chat = await getChat(this.app.redis.commands, this.chatId)
    if (chat === null) throw new ProtocolError('CHAT_EXPIRED')
    this.#chat = chat
  }

  handle(frame: ChatFrame): Promise<void> {
    switch (frame.type) {
      case 'Join':
        return this.#joinBeforeDeadline(frame.args)
      case 'ChatMessage':
        return this.sendMessage(frame.args)
      case 'LoadMore':
        return this.loadMore(frame.args)
      case 'Typing':
        return this.typing(frame.args.state)
      case 'Received':
        return this.receipt('delivered', frame.args.seq)
      case 'Read':
        return this.receipt('read', frame.args.seq)
      case 'EndChat':
        return this.end(frame.args.reason ?? null)
    }
  }

  async join(args: JoinArgsV2): Promise<void> {
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
    // Only v2 resumes from a seq; a seed-004 socket always gets the whole history.
    const resumeAfter = this.version === 2 ? args.lastSeq : undefined
    if (resumeAfter !== undefined) await this.#checkResume(resumeAfter)

    // A visitor naming a supportId their chat had before a transfer is behind, not someone else: they get the chat as it is now.
    const stale = role === 'user' && args.supportId !== undefined && args.supportId !== chat.supportId && (chat.pastSupportIds ?? []).includes(args.supportId)
    if (args.supportId !== undefined && !stale) {
      if (args.supportId !== chat.supportId) {
        throw new ProtocolError('IDENTITY_MISMATCH', 'supportId does not belong to this chat')
      }
      if (role === 'support' && this.agent !== null && chat.agentId !== undefined && chat.agentId !== this.agent.agentId) {
        throw new ProtocolError('IDENTITY_MISMATCH', 'Another agent has this chat')
      }
      await this.#listen(role)
      await this.#answerJoin(() => this.#sendHistory(chat, resumeAfter))
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
        const joined = await joinSupport(this.app.redis.commands, chat, name, this.opts, this.agent?.agentId, this.opts.maxChatsPerAgent)
        this.#chat = { ...chat, state: 'active', supportId: joined.supportId, supportUserName: joined.supportUserName }
        if (joined.rejoined) {
          // This agent has the chat already (a console that lost its supportId): give it back, with the history.
          this.#send(encode.supportJoinedUser(joined))
          await this.#sendHistory(this.#chat, resumeAfter)
          return
        }
        if ((chat.pastSupportIds ?? []).length > 0 || (await lastSeq(this.app.redis.commands, this.chatId)) > 0) {
          // A chat put back in the queue, or one whose v2 visitor wrote while waiting, has a conversation
          // already: the new agent gets it after SupportJoinedUser, and the channel's copy of that frame is not sent twice.
          const frame = encode.supportJoinedUser(joined)
          this.#skipOnce = frame
          this.#send(frame)
          await this.#sendHistory(this.#chat, resumeAfter)
        }
        this.log.info({ supportId: joined.supportId }, 'agent joined chat')
      })
      return
    }

    await this.#listen(role)
    await this.#answerJoin(async () => {
      const state = await enqueueVisitor(this.app.redis.commands, chat, this.opts)
      if (state === 'active' || state === 'ended') {
        // A visitor who lost their supportId (a seed-004 page that kept only
        // chatId) is given it back, with the conversation so far.
        const current = await getChat(this.app.redis.commands, this.chatId)
        if (current === null) throw new ProtocolError('CHAT_EXPIRED')
        if (current.supportId !== undefined) this.#send(encode.supportJoinedUser(supportJoinedOf(current)))
        await this.#sendHistory(current, resumeAfter)
        return
      }
      this.#send(encode.userJoined(chat))
      // A v2 visitor back after a reload (or put back in the queue) gets what they wrote while waiting.
      if (this.version === 2 && (await lastSeq(this.app.redis.commands, this.chatId)) > 0) await this.#sendHistory(chat, resumeAfter)
      this.#startWaiting()
      if (state === 'queued') this.log.info('visitor queued')
    })
  }

  async sendMessage(args: ChatMessageArgsV2): Promise<void> {
    // A seed-004 socket's frame is taken as seed 004 defines it: no clientMessageId.
    const clientMessageId = this.version === 2 ? args.clientMessageId : undefined
    try {
      const role = this.#joinedRole()
      const chat = this.#chat!
      if ((args.from === 'User') !== (role === 'user')) {
        throw new ProtocolError('IDENTITY_MISMATCH', `This socket joined as ${partyOf(role)}`)
      }
      if (args.userId !== chat.userId) throw new ProtocolError('IDENTITY_MISMATCH', 'userId does not belong to this chat')
      // Only a v2 visitor may leave supportId out (they are waiting for an agent); seed 004's schema requires it.
      if (args.supportId === undefined && role === 'support') throw new ProtocolError('INVALID_FRAME', 'ChatMessage: an agent must send supportId')
      if (exceeds(args.content, this.opts.maxMessageLength)) {
        throw new ProtocolError('MESSAGE_TOO_LONG', `Message content is longer than ${this.opts.maxMessageLength} characters`)
      }
      // The echo arrives through the chat channel, after the message is stored.
      const stored = this.app.metrics.storeSeconds.startTimer()
      const appended = await appendMessage(
        this.app.redis.commands,
        {
          chatId: this.chatId,
          userId: args.userId,
          supportId: args.supportId ?? '',
          content: args.content,
          from: args.from,
          ...(clientMessageId !== undefined ? { clientMessageId } : {}),
          ...(role === 'support' && this.agent !== null ? { agentId: this.agent.agentId } : {}),
          // A v2 visitor may write while waiting: the agent who joins gets it in ChatHistory. Seed 004 keeps NO_AGENT_YET.
          ...(role === 'user' && this.version === 2 ? { beforeAgent: true } : {}),
        },
        this.opts,
      ).finally(() => stored())
      // Only this instance holds the chat: the message was not published, and its sockets here get it now.
      if (appended.local !== undefined) this.app.chatChannels.deliverLocally(this.chatId, appended.local)
      if (!appended.duplicate) this.app.metrics.messagesStored.inc()
      if (clientMessageId !== undefined) {
        const { messageId, seq, timestamp } = appended.message
        this.#send(encodeV2.ack({ clientMessageId, messageId, seq, timestamp }))
      }
    } catch (err) {
      if (clientMessageId === undefined) throw err
      // The sender learns which message failed; never an Ack for it.
      const code = err instanceof ProtocolError ? err.code : isRedisUnavailable(err) ? 'STORE_UNAVAILABLE' : undefined
      if (code === undefined) throw err
      this.#send(encodeV2.errorFor(code, err instanceof ProtocolError ? err.message : Errors.STORE_UNAVAILABLE.message, clientMessageId))
      if (code === 'CHAT_EXPIRED') this.expire()
      return
    }
    this.#stopTyping()
  }

  /** LoadMore → ChatHistoryPage: up to `limit` messages before `beforeSeq`, oldest first. */
  async loadMore(args: LoadMoreArgs): Promise<void> {
    this.#joinedRole()
    const limit = args.limit ?? HISTORY_PAGE_SIZE
    const from = Math.max(1, args.beforeSeq - limit)
    const messages = await readMessages(this.app.redis.commands, this.chatId, from, args.beforeSeq - 1)
    this.#send(encodeV2.chatHistoryPage(messages, from > 1))
  }

  /**
   * Typing goes to the other participant (v2 sockets), not stored. A repeated
   * start only keeps it alive; a start without a stop ends by itself.
   */
  async typing(state: 'start' | 'stop'): Promise<void> {
    this.#joinedRole()
    if (state === 'stop') return this.#stopTyping()
    const wasTyping = this.#typingTimer !== undefined
    if (wasTyping) clearTimeout(this.#typingTimer)
    this.#typingTimer = setTimeout(() => void this.#stopTyping().catch(() => {}), this.opts.typingTimeoutMs)
    this.#typingTimer.unref()
    if (!wasTyping) await this.#publishTyping('start')
  }

  async receipt(kind: 'delivered' | 'read', seq: number): Promise<void> {
    const role = this.#joinedRole()
    await markReceipt(this.app.redis.commands, this.chatId, role, kind, seq)
  }

  async end(reason: string | null): Promise<void> {
    const role = this.#joinedRole()
    const ended = await endChat(this.app.redis.commands, this.chatId, partyOf(role), reason)
    if (!ended) throw new ProtocolError('CHAT_ENDED', 'This chat has already ended')
    this.log.info({ by: partyOf(role) }, 'chat ended')
    this.#stopWaiting()
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
    if (this.#catchUpRetry !== undefined) clearTimeout(this.#catchUpRetry)
    this.#catchUpRetry = undefined
    this.#queued = undefined
    this.#clearJoinTimer()
    this.#releaseSeat()
    this.#stopWaiting()
    if (this.#typingTimer !== undefined) void this.#stopTyping().catch(() => {})
    const unsubscribe = this.#unsubscribe
    this.#unsubscribe = undefined
    unsubscribe?.().catch(() => {})
  }

  /**
   * A resume from a seq the chat has not reached is refused before the Join
   * changes anything: the socket would take every live message for one it
   * has already and drop it. The client joins again without lastSeq.
   */
  async #checkResume(resumeAfter: number): Promise<void> {
    const last = await lastSeq(this.app.redis.commands, this.chatId)
    if (resumeAfter > last) {
      throw new ProtocolError('INVALID_SEQ', `lastSeq ${resumeAfter} is beyond this chat's last message (seq ${last}); join again without lastSeq`)
    }
  }

  #joinedRole(): Role {
    if (this.#role === undefined || this.#chat === undefined || this.#held !== undefined) throw new ProtocolError('NOT_JOINED')
    return this.#role
  }

  async #stopTyping(): Promise<void> {
    if (this.#typingTimer === undefined) return
    clearTimeout(this.#typingTimer)
    this.#typingTimer = undefined
    await this.#publishTyping('stop')
  }

  async #publishTyping(state: 'start' | 'stop'): Promise<void> {
    const role = this.#role!
    await this.app.redis.commands.publish(
      channels.chat(this.chatId),
      envelope(`${otherRole(role)}:v2`, encodeV2.typing(this.chatId, partyOf(role), state)),
    )
  }

  /** Subscribes to the chat channel before anything is read, so nothing published meanwhile is missed. */
  async #listen(role: Role): Promise<void> {
    // The seat is taken once every check of the frame has passed; a Join refused
    // later (ALREADY_CLAIMED, AGENT_AT_CAPACITY, Redis away) gives it back. A socket
    // that closed meanwhile has released everything already: it takes nothing.
    if (!this.#seated && !this.#closed) {
      if (!this.seats.take(this.chatId)) {
        this.log.warn('too many sockets joined one chat')
        throw new ProtocolError('TOO_MANY_CONNECTIONS', `More than ${this.opts.maxSocketsPerChat} sockets joined this chat here`)
      }
      this.#seated = true
    }
    this.#role = role
    this.#held = []
    try {
      const unsubscribe = await this.app.chatChannels.listen(this.chatId, (message) => this.#onChannel(message))
      if (this.#closed) await unsubscribe()
      else this.#unsubscribe = unsubscribe
    } catch (err) {
      this.#role = undefined
      this.#held = undefined
      this.#releaseSeat()
      throw err
    }
  }

  /** Runs the answer to a Join, then releases the live frames held meanwhile (minus any already in the history). */
  async #answerJoin(answer: () => Promise<void>): Promise<void> {
    try {
      await answer()
      if (this.#lastDelivered === undefined) {
        // No history was sent: what was stored before the subscription is not this socket's to
        // deliver, and what was published since is held (so it starts at the first held message).
        const stored = await lastSeq(this.app.redis.commands, this.chatId)
        const firstHeld = (this.#held ?? []).find(isStoredMessage)
        this.#lastDelivered = firstHeld === undefined ? stored : Math.min(stored, storedSeq(firstHeld) - 1)
      }
    } catch (err) {
      this.#role = undefined
      this.#held = undefined
      this.#lastDelivered = undefined
      this.#releaseSeat()
      const unsubscribe = this.#unsubscribe
      this.#unsubscribe = undefined
      await unsubscribe?.()
      throw err
    }
    this.#clearJoinTimer()
    this.#deadlinePassed = false
    this.app.metrics.socketRole(this.socket, this.#role === 'support' ? 'agent' : 'visitor')
    const held = this.#held ?? []
    this.#held = undefined
    for (const frame of held) this.#deliver(frame)
    if (this.#catchUpAfterJoin) {
      this.#catchUpAfterJoin = false
      this.catchUp()
    }
  }

  /**
   * Sends the stored messages after the last one this socket has, holding
   * live frames until they are out: after the Redis subscriber connection
   * was down (what was published meanwhile is lost), or on a gap in seqs.
   */
  catchUp(): void {
    if (this.#closed) return
    if (this.#lastDelivered === undefined) {
      // Mid-Join: its history may have been read before the publications stopped.
      if (this.#held !== undefined) this.#catchUpAfterJoin = true
      return
    }
    if (this.#queued !== undefined) {
      this.#catchUpAgain = true
      return
    }
    this.#queued = []
    void this.#readMissed()
  }

  async #readMissed(): Promise<void> {
    let progressed = false
    do {
      this.#catchUpAgain = false
      if (this.#lastDelivered === undefined) {
        // The Join failed meanwhile: nothing is this socket's to deliver.
        this.#queued = undefined
        return
      }
      let missed: string[]
      try {
        missed = await readMessages(this.app.redis.commands, this.chatId, this.#lastDelivered + 1)
      } catch (err) {
        if (this.#closed) return
        this.log.warn({ err: (err as Error).message }, 'could not read missed messages; trying again')
        this.#catchUpRetry = setTimeout(() => {
          this.#catchUpRetry = undefined
          void this.#readMissed()
        }, CATCH_UP_RETRY_MS)
        return
      }
      if (this.#closed) return
      for (const stored of missed) this.#deliverStored(stored, true)
      if (missed.length > 0) progressed = true
    } while (this.#catchUpAgain)
    const queued = this.#queued ?? []
    this.#queued = undefined
    // A gap the store could not fill (the chat is gone) is not read again and again.
    for (const frame of queued) this.#deliver(frame, !progressed)
  }

  /**
   * The history: all of it for seed 004; for v2 the messages after
   * `resumeAfter`, or the last page, followed by where the receipts and the
   * unread count stand (so ticks and badges survive a refresh) and ChatEnded
   * if the chat has ended.
   */
  async #sendHistory(chat: ChatRecord, resumeAfter?: number): Promise<void> {
    const redis = this.app.redis.commands
    if (this.version === 1) {
      const messages = await readMessages(redis, this.chatId, 1)
      this.#send(encode.chatHistoryFromStored(chat, messages))
      this.#lastDelivered = messages.length
    } else {
      const fromSeq = resumeAfter !== undefined ? resumeAfter + 1 : Math.max(1, (await lastSeq(redis, this.chatId)) - HISTORY_PAGE_SIZE + 1)
      const messages = await readMessages(redis, this.chatId, fromSeq)
      this.#send(encodeV2.chatHistory(chat, messages, fromSeq, fromSeq > 1))
      this.#lastDelivered = fromSeq - 1 + messages.length
      const role = this.#role!
      const other = otherRole(role)
      const state = await readState(redis, this.chatId)
      if (state.delivered[other] > state.read[other]) {
        this.#send(encodeV2.receipt(this.chatId, state.delivered[other], 'delivered', partyOf(other)))
      }
      if (state.read[other] > 0) this.#send(encodeV2.receipt(this.chatId, state.read[other], 'read', partyOf(other)))
      this.#send(encodeV2.unreadCount(this.chatId, state.unread[role]))
      if (chat.state === 'ended') this.#send(encodeV2.chatEnded(this.chatId, chat.endedBy ?? 'User', chat.endReason ?? null))
    }
    // Messages stored between the subscription and the read are in both: their live copies are skipped by seq.
    const held = this.#held ?? []
    this.#held = []
    for (const frame of held) this.#deliver(frame)
  }

  #onChannel(message: string): void {
    const opened = openPublication(message)
    if (opened === null || (opened.v2Only && this.version === 1) || (opened.to !== 'all' && opened.to !== this.#role)) return
    this.#take(opened.frame)
    // After the message, as if it had been published on its own.
    if (opened.unread !== undefined && this.version === 2 && opened.unread.reader === this.#role) this.#take(unreadFrameOf(this.chatId, opened.unread))
  }

  /** A live frame: held while a Join is answered, else delivered. */
  #take(frame: string): void {
    if (this.#held !== undefined) this.#held.push(frame)
    else this.#deliver(frame)
  }

  /** Sends a live frame; `acceptGap`: a stored message after a gap is sent as is, not read for again. */
  #deliver(payload: string, acceptGap = false): void {
    if (this.#queued !== undefined) {
      this.#queued.push(payload)
      return
    }
    if (payload === this.#skipOnce) {
      this.#skipOnce = undefined
      return
    }
    if (isStoredMessage(payload)) return this.#deliverStored(payload, acceptGap)
    if (payload.startsWith(CHAT_EXPIRED_PREFIX)) {
      this.#stopWaiting()
      this.expire()
      return
    }
    if (payload.startsWith(CHAT_UNASSIGNED_PREFIX)) return this.#unassigned(payload)
    // Once an agent has joined, the chat lives by its messages, not by the visitor's presence.
    if (payload.startsWith(SUPPORT_JOINED_PREFIX)) this.#stopWaiting()
    // Only ever sent to the visitor: their agent put them back in the queue.
    if (payload.startsWith(USER_JOINED_PREFIX)) {
      this.#send(payload)
      return this.#startWaiting()
    }
    this.#send(payload)
  }

  /** Each stored message once, in seq order: copies are dropped, and a gap is first filled from the store. */
  #deliverStored(stored: string, acceptGap: boolean): void {
    const seq = storedSeq(stored)
    const last = this.#lastDelivered
    if (seq > 0 && last !== undefined) {
      if (seq <= last) return
      if (seq > last + 1 && !acceptGap) {
        this.log.warn({ seq, lastDelivered: last }, 'missed messages on the chat channel; reading them from the store')
        this.catchUp()
        this.#queued?.push(stored)
        return
      }
      this.#lastDelivered = seq
    }
    this.#send(storedMessageFrame(stored, this.version))
  }

  /** The chat was handed on: an agent's socket other than the new agent's is told (v2) and closed with 4403. */
  #unassigned(payload: string): void {
    const { args } = JSON.parse(payload) as { args: { toAgentId: string | null } }
    if (this.#role !== 'support' || (this.agent !== null && this.agent.agentId === args.toAgentId)) return
    this.#stopTyping().catch(() => {})
    if (this.version === 2) this.#send(payload)
    this.socket.close(Errors.CHAT_TRANSFERRED.closeCode, 'CHAT_TRANSFERRED')
  }

  /** The visitor waits for an agent: the chat stays alive while they are here, and a v2 visitor is told where they stand. */
  #startWaiting(): void {
    // A socket that closed meanwhile must not keep the visitor queued.
    if (this.#waiting || this.#closed) return
    this.#waiting = true
    this.app.waitingVisitors.add(this.chatId)
    if (this.version === 2) this.#unwatch = this.app.queuePositions.watch(this.chatId, (frame) => this.#send(frame))
  }

  #stopWaiting(): void {
    if (!this.#waiting) return
    this.#waiting = false
    this.app.waitingVisitors.delete(this.chatId)
    this.#unwatch?.()
    this.#unwatch = undefined
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
