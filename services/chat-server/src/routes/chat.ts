import type {} from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import { Errors, SUBPROTOCOL_V2, isId } from '@switchboard/protocol'
import { SocketLogger, acceptAgent, sendError } from '@switchboard/server-kit'
import { ChatSession } from '../chat/session.js'
import { ChatSocketLimit } from '../chat/socket-limit.js'
import type { ChatRouteOptions } from '../chat/options.js'
import '../chat-channels.js'

export type { ChatRouteOptions } from '../chat/options.js'

/** WebSocket `/chat/:chatId`: the conversation between one visitor and one agent. */
export async function chatRoute(app: FastifyInstance, opts: ChatRouteOptions) {
  const socketLimit = new ChatSocketLimit(opts.maxSocketsPerChat)
  const sessions = new Set<ChatSession>()
  const sessionOpts: ChatRouteOptions = { ...opts, holder: app.chatChannels.holder }
  // After Redis was away, this instance holds its chats again (a failover may have lost a
  // hold, and with it the publications of the other instances), then every socket reads
  // what it missed from the store.
  const recover = () => {
    app.metrics.chatRecoveries.inc()
    return app.chatChannels
      .holdAgain()
      .catch((err: Error) => app.log.warn({ err: err.message }, 'could not hold the chats again; the next reconnect tries'))
      .then(() => {
        for (const session of sessions) session.catchUp()
      })
  }
  // Publications made while the subscriber connection was down are lost: once it is back
  // (ioredis re-subscribes before 'ready' is emitted; a PING answered after the SUBSCRIBE
  // replies means they took effect), every socket catches up. Once both connections are
  // ready: when Redis restarts both come back, and the second to be ready starts the one
  // recovery (each socket's catch-up is a read, so two would double the reads of a restart).
  const { commands, subscriber } = app.redis
  const onReady = () => {
    if (commands.status === 'ready' && subscriber.status === 'ready') subscriber.ping().then(recover, () => {})
  }
  subscriber.on('ready', onReady)
  commands.on('ready', onReady)
  app.addHook('onClose', async () => {
    subscriber.off('ready', onReady)
    commands.off('ready', onReady)
  })

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
      const log = new SocketLogger(app.log, { reqId: req.id, chatId, ...(req.agent ? { agentId: req.agent.agentId } : {}) })
      // A client that offered the switchboard.v2 subprotocol (and got it) speaks v2; any other, seed 004.
      const version = socket.protocol === SUBPROTOCOL_V2 ? 2 : 1
      app.serveSocket(socket, req, new ChatSession({ app, socket, chatId, log, opts: sessionOpts, agent: req.agent, socketLimit, version, sessions }))
    },
  )
}
