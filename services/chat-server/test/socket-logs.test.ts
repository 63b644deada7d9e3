import t from 'tap'
import { EventEmitter } from 'node:events'
import { buildApp } from '@switchboard/chat-server'
import { startStack } from '@switchboard/testing'

/*
 * A chat socket's log lines carry its request's reqId, its chatId and, for an
 * agent with a token, the agentId, without a pino child logger per socket
 * (SocketLogger, docs/performance.md): operators find a chat's lines by
 * these fields, and the upgrade's own request line by the reqId.
 */

type Line = Record<string, unknown> & { msg?: string; reqId?: string }

/** A ChatServer whose log lines (info and up) are kept, with a wait for the first line that matches. */
async function loggedChatServer(t: Parameters<typeof startStack>[0], config: Parameters<typeof buildApp>[0]) {
  const lines: Line[] = []
  const written = new EventEmitter()
  const app = await buildApp(config, {
    logger: {
      level: 'info',
      stream: {
        write(text: string) {
          const line = JSON.parse(text) as Line
          lines.push(line)
          written.emit('line', line)
        },
      },
    },
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    line(match: (line: Line) => boolean): Promise<Line> {
      const found = lines.find(match)
      if (found) return Promise.resolve(found)
      return new Promise((resolve) => {
        const onLine = (line: Line) => {
          if (!match(line)) return
          written.off('line', onLine)
          resolve(line)
        }
        written.on('line', onLine)
      })
    },
  }
}

t.test("a chat socket's lines carry its reqId, chatId and agentId", async (t) => {
  const stack = await startStack(t, { chatServers: 0, subscribers: 0, env: { AGENT_AUTH: 'on' } })
  const server = await loggedChatServer(t, stack.config)
  const visitor = (await (await fetch(`${server.http}/user/join/Nika`)).json()) as { userId: string; chatId: string }
  const url = `${server.ws}/chat/${visitor.chatId}`
  const upgrade = (requestUrl: string) => (line: Line) => line.msg === 'incoming request' && (line.req as { url?: string } | undefined)?.url === requestUrl

  const user = await stack.socket(url, 'pong:user')
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const queued = await server.line((line) => line.msg === 'visitor queued')
  const userUpgrade = await server.line(upgrade(`/chat/${visitor.chatId}`))
  t.match(queued, { chatId: visitor.chatId, reqId: String }, "the visitor's line names the chat")
  t.equal(queued.reqId, userUpgrade.reqId, "and the reqId of the visitor socket's upgrade request")
  t.notOk('agentId' in queued, 'no agentId on a visitor socket')

  const agent = await stack.socket(url, 'pong:support', { token: await stack.agentToken('Vika') })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  await agent.nextOfType('SupportJoinedUser')
  const joined = await server.line((line) => line.msg === 'agent joined chat')
  t.match(joined, { chatId: visitor.chatId, agentId: 'agent-vika', supportId: String, reqId: String }, "the agent's line names the chat and the agent")
  t.not(joined.reqId, queued.reqId, 'each socket has its own reqId')

  // The upgrade's own "request completed" line is not written: the socket's end is.
  await user.close()
  const closed = await server.line((line) => line.msg === 'socket closed')
  t.match(closed, { level: 30, reqId: queued.reqId, chatId: visitor.chatId, code: 1005, ms: Number }, "the visitor's socket: when and how it ended")
})
