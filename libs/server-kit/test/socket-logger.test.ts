import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { SocketLogger } from '@switchboard/server-kit'

/** fastify's own pino logger, writing its JSON lines into an array. */
async function pinoLines(t: Test, level = 'info') {
  const lines: Record<string, unknown>[] = []
  const app = Fastify({ logger: { level, stream: { write: (line: string) => void lines.push(JSON.parse(line)) } } })
  t.teardown(() => app.close())
  return { root: app.log, lines }
}

t.test("a socket logger writes the socket's fields in every line, as a pino child would", async (t) => {
  const { root, lines } = await pinoLines(t)
  const log = new SocketLogger(root, { reqId: 'req-7', chatId: 'chat-1' })
  const child = root.child({ reqId: 'req-7', chatId: 'chat-1' })

  log.info({ by: 'User' }, 'chat ended')
  child.info({ by: 'User' }, 'chat ended')
  const [ours, pinos] = lines.map(({ time: _time, ...rest }) => rest)
  t.same(ours, pinos, 'the same line as a pino child with the same bindings writes')
  t.match(ours, { level: 30, reqId: 'req-7', chatId: 'chat-1', by: 'User', msg: 'chat ended' })

  lines.length = 0
  log.warn('socket closed for %s', 'flooding')
  t.match(lines[0], { level: 40, reqId: 'req-7', chatId: 'chat-1', msg: 'socket closed for flooding' }, 'a message alone, with format arguments')

  lines.length = 0
  log.error(new Error('boom'))
  t.match(lines[0], { level: 50, chatId: 'chat-1', msg: 'boom', err: { type: 'Error', message: 'boom' } }, 'an Error alone: its message is the line')
  log.error(new Error('boom'), 'while handling a frame')
  t.match(lines[1], { msg: 'while handling a frame', err: { message: 'boom' } }, 'an Error with a message')
})

t.test("the line's own fields win; child adds fields; the level is the app logger's", async (t) => {
  const { root, lines } = await pinoLines(t)
  const log = new SocketLogger(root, { reqId: 'req-7', chatId: 'chat-1' })
  log.info({ chatId: 'chat-2' }, 'moved')
  t.equal(lines[0]!.chatId, 'chat-2', "the line's chatId, written once")

  log.child({ agentId: 'agent-vika' }).info('agent joined chat')
  t.match(lines[1], { reqId: 'req-7', chatId: 'chat-1', agentId: 'agent-vika' })
  t.equal(new SocketLogger(root, {}).child({ agentId: 'x' }).level, 'info')

  log.debug('not written at info')
  t.equal(lines.length, 2, 'below the level: nothing written')
  root.level = 'debug'
  t.equal(log.level, 'debug', 'follows the app logger')
  log.debug('written at debug')
  t.equal(lines.length, 3)
  t.equal(lines[2]!.msg, 'written at debug')
})
