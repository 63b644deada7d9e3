import type {} from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import {
  ProtocolError,
  QueueClientFrames,
  QueueClientFramesV2,
  SUBPROTOCOL_V2,
  compileFrameParser,
  encode,
  encodeV2,
  type AgentStatus,
  type FrameParser,
  type JoinUserArgs,
  type QueueClientFrameV2,
  type TransferChatArgs,
} from '@switchboard/protocol'
import { claimVisitor, listQueue, newId, setAgentStatus, transferChat, type ExpiryOptions, type QueueEvent } from '@switchboard/domain'
import { SocketLogger, requireAgent, type AgentIdentity } from '@switchboard/server-kit'
import type { QueueFrames, QueueListener } from '../plugins/queue-feed.js'
import type { AgentSocket } from '../plugins/agents.js'

/** A client frame of either version (the registry's); v1 frames are a subset of v2's. */
type QueueFrame = QueueClientFrameV2

// v1 accepts only seed 004's frame types.
const parsers: Record<1 | 2, FrameParser<QueueFrame>> = {
  1: compileFrameParser(QueueClientFrames),
  2: compileFrameParser(QueueClientFramesV2),
}

type QueueHandler<T extends QueueFrame['type']> = (session: AgentSession, args: Extract<QueueFrame, { type: T }>['args']) => Promise<void>

/** Each queue frame type's handler. */
const QUEUE_FRAME_HANDLERS: { readonly [T in QueueFrame['type']]: QueueHandler<T> } = {
  Load: (s) => s.load(),
  JoinUser: (s, args) => s.claim(args),
  SetStatus: (s, args) => s.setStatus(args.status),
  TransferChat: (s, args) => s.transfer(args),
}

export interface UsersRouteOptions extends ExpiryOptions {
  maxChatsPerAgent: number
  /** How long an agent's record outlives their presence (AGENT_FORGET_AFTER_SECONDS). */
  agentForgetAfterMs?: number
}

/** WebSocket `/users`: the agents' live queue of waiting visitors, and (v2) the team and the agent's own chats. */
export async function usersRoute(app: FastifyInstance, opts: UsersRouteOptions) {
  // A valid agent token is required before the upgrade (401), unless AGENT_AUTH=off.
  app.get('/users', { websocket: true, preValidation: requireAgent }, (socket, req) => {
    const log = new SocketLogger(app.log, { reqId: req.id, ...(req.agent ? { agentId: req.agent.agentId } : {}) })
    const version = socket.protocol === SUBPROTOCOL_V2 ? 2 : 1
    const session = new AgentSession({ app, socket, log, agent: req.agent, version, opts })
    app.serveSocket(socket, req, {
      kind: 'queue',
      log,
      parser: parsers[version],
      onOpen: () => session.open(),
      onFrame: (frame) => session.handle(frame),
      onClose: () => session.close(),
    })
  })
}

/** What an agent's queue socket session is made with. */
interface AgentSessionDeps {
  app: FastifyInstance
  socket: WebSocket
  log: FastifyBaseLogger
  /** The agent the handshake's token named; null with AGENT_AUTH=off. */
  agent: AgentIdentity | null
  /** 1: seed 004; 2: switchboard.v2. */
  version: 1 | 2
  opts: UsersRouteOptions
}

class AgentSession {
  /** Set once Load ran: from then on the socket gets every queue event. */
  #loaded = false
  /** Events that arrive while Load reads the queue; sent after it. */
  #held: { event: QueueEvent; frames: QueueFrames }[] | undefined
  readonly #listener: QueueListener = (event, frames) => {
    if (this.#held !== undefined) this.#held.push({ event, frames })
    else this.#send(this.#pick(frames))
  }
  /** How the presence registry sees this socket. */
  readonly #presence: AgentSocket

  private readonly app: FastifyInstance
  private readonly socket: WebSocket
  private readonly log: FastifyBaseLogger
  private readonly agent: AgentIdentity | null
  private readonly version: 1 | 2
  private readonly opts: UsersRouteOptions

  constructor({ app, socket, log, agent, version, opts }: AgentSessionDeps) {
    this.app = app
    this.socket = socket
    this.log = log
    this.agent = agent
    this.version = version
    this.opts = opts
    this.#presence = {
      // Without a token every socket is its own anonymous agent: counted, never listed.
      agentId: agent?.agentId ?? `anonymous:${newId()}`,
      name: agent?.name ?? 'Agent',
      anonymous: agent === null,
      v2: version === 2,
      send: (frame) => this.#send(frame),
    }
  }

  /** The agent is online (for everyone) before any frame is handled; a v2 socket gets AgentsOnline and MyChats. */
  async open(): Promise<void> {
    await this.app.agents.connect(this.#presence)
  }

  handle(frame: QueueFrame): Promise<void> {
    return (QUEUE_FRAME_HANDLERS[frame.type] as QueueHandler<QueueFrame['type']>)(this, frame.args)
  }

  /** Sends each waiting visitor as a bare frame, oldest first, then streams UserJoined / RemoveUser. */
  async load(): Promise<void> {
    this.#held = []
    if (!this.#loaded) this.app.queueFeed.add(this.#listener)
    let visitors
    try {
      visitors = await listQueue(this.app.redis.commands)
    } catch (err) {
      if (!this.#loaded) this.app.queueFeed.delete(this.#listener)
      this.#held = undefined
      throw err
    }
    this.#loaded = true
    for (const visitor of visitors) this.#send(this.version === 2 ? encodeV2.queuedVisitor(visitor) : encode.visitor(visitor))
    // A visitor who joined while the queue was read is already in the list.
    const listed = new Set(visitors.map((v) => v.chatId))
    const held = this.#held
    this.#held = undefined
    for (const { event, frames } of held) {
      if (event.kind === 'joined' && listed.has(event.visitor.chatId)) continue
      this.#send(this.#pick(frames))
    }
  }

  /** JoinUser: claims the visitor; every agent on every instance then gets RemoveUser. */
  async claim(args: JoinUserArgs): Promise<void> {
    // The claim records the agent, so no other agent can join that chat.
    const timed = this.app.metrics.claimSeconds.startTimer()
    await claimVisitor(this.app.redis.commands, args.chatId, args.userId, this.agent?.agentId, this.opts.maxChatsPerAgent).finally(() => timed())
    this.log.info({ chatId: args.chatId }, 'visitor claimed')
    // An agent that never sent Load does not get the broadcast: answer it directly.
    if (!this.#loaded) this.#send(encode.removeUser(args.userId))
  }

  async setStatus(status: AgentStatus): Promise<void> {
    const agent = this.#identified('SetStatus')
    if (await setAgentStatus(this.app.redis.commands, agent.agentId, status, this.opts.agentForgetAfterMs)) this.log.info({ status }, 'agent status changed')
  }

  async transfer(args: TransferChatArgs): Promise<void> {
    const agent = this.#identified('TransferChat')
    await transferChat(this.app.redis.commands, args.chatId, agent.agentId, args.toAgentId, {
      chatTtlMs: this.opts.chatTtlMs,
      keyGraceMs: this.opts.keyGraceMs,
      maxChats: this.opts.maxChatsPerAgent,
    })
    this.log.info({ chatId: args.chatId, toAgentId: args.toAgentId }, 'chat transferred')
  }

  close(): void {
    this.app.queueFeed.delete(this.#listener)
    this.app.agents.disconnect(this.#presence)
  }

  #identified(what: string): AgentIdentity {
    if (this.agent === null) throw new ProtocolError('UNAUTHORIZED', `${what} needs an agent token at the handshake (AGENT_AUTH=on)`)
    return this.agent
  }

  #pick(frames: QueueFrames): string {
    return this.version === 2 ? frames.v2 : frames.v1
  }

  #send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame)
  }
}
