import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { WebSocket } from 'ws'
import type { Party } from '@switchboard/protocol'
import type { ChatRecord } from '@switchboard/domain'
import type { AgentIdentity } from '@switchboard/server-kit'
import type { ChatRouteOptions } from './options.js'
import type { Delivery } from './delivery.js'
import type { ConversationSignals } from './signals.js'
import type { WaitingVisitor } from './waiting.js'

/** One chat socket as the frame handlers (join, messages, history) see it: ChatSession implements it. */
export interface SessionContext {
  readonly app: FastifyInstance
  readonly redis: Redis
  readonly socket: WebSocket
  readonly chatId: string
  readonly log: FastifyBaseLogger
  readonly opts: ChatRouteOptions
  /** The agent the handshake's token named, if any. */
  readonly agent: AgentIdentity | null
  /** 1: seed 004, byte for byte; 2: the switchboard.v2 subprotocol. */
  readonly version: 1 | 2
  readonly closed: boolean
  /** Who the socket joins or joined as; undefined before a Join. */
  readonly party: Party | undefined
  /** The chat as last read. */
  chat: ChatRecord | undefined
  readonly delivery: Delivery
  readonly signals: ConversationSignals
  readonly waiting: WaitingVisitor
  /** Who the socket joined as; throws NOT_JOINED before its Join is answered. */
  joinedParty(): Party
  /** Subscribes to the chat channel as `party` (taking the socket's admission to the chat) before anything is read. */
  listen(party: Party): Promise<void>
  /** Runs the answer to a Join, then releases the live frames held meanwhile; a failed answer undoes the Join. */
  answerJoin(answer: () => Promise<void>): Promise<void>
  send(frame: string): void
  /** Tells the client its chat is gone and closes with 4410. */
  expire(): void
}
