import type {} from '@fastify/websocket'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { QueueClientFrames, compileFrameParser, encode, type JoinUserArgs } from '@switchboard/protocol'
import { claimVisitor, listQueue, type QueueEvent } from '@switchboard/domain'
import { requireAgent, type AgentIdentity } from '@switchboard/server-kit'
import type { QueueListener } from '../plugins/queue-feed.js'

const parser = compileFrameParser(QueueClientFrames)

/** WebSocket `/users`: the agents' live queue of waiting visitors. */
export async function usersRoute(app: FastifyInstance) {
  // A valid agent token is required before the upgrade (401), unless AGENT_AUTH=off.
  app.get('/users', { websocket: true, preValidation: requireAgent }, (socket, req) => {
    const log = req.agent ? req.log.child({ agentId: req.agent.agentId }) : req.log
    const session = new AgentSession(app, socket, log, req.agent)
    app.serveSocket(socket, req, {
      log,
      parser,
      onFrame: async (frame) => {
        if (frame.type === 'Load') await session.load()
        else await session.claim(frame.args)
      },
      onClose: () => session.close(),
    })
  })
}

class AgentSession {
  /** Set once Load ran: from then on the socket gets every queue event. */
  #loaded = false
  /** Events that arrive while Load reads the queue; sent after it. */
  #held: { event: QueueEvent; frame: string }[] | undefined
  readonly #listener: QueueListener = (event, frame) => {
    if (this.#held !== undefined) this.#held.push({ event, frame })
    else this.#send(frame)
  }

  constructor(
    private readonly app: FastifyInstance,
    private readonly socket: WebSocket,
    private readonly log: FastifyBaseLogger,
    private readonly agent: AgentIdentity | null,
  ) {}

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
    for (const visitor of visitors) this.#send(encode.visitor(visitor))
    // A visitor who joined while the queue was read is already in the list.
    const listed = new Set(visitors.map((v) => v.chatId))
    const held = this.#held
    this.#held = undefined
    for (const { event, frame } of held) {
      if (event.kind === 'joined' && listed.has(event.visitor.chatId)) continue
      this.#send(frame)
    }
  }

  /** JoinUser: claims the visitor; every agent on every instance then gets RemoveUser. */
  async claim(args: JoinUserArgs): Promise<void> {
    // The claim records the agent, so no other agent can join that chat.
    await claimVisitor(this.app.redis.commands, args.chatId, args.userId, this.agent?.agentId)
    this.log.info({ chatId: args.chatId }, 'visitor claimed')
    // An agent that never sent Load does not get the broadcast: answer it directly.
    if (!this.#loaded) this.#send(encode.removeUser(args.userId))
  }

  close(): void {
    this.app.queueFeed.delete(this.#listener)
  }

  #send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame)
  }
}
