import t from 'tap'
import type { Socket } from 'node:net'
import type { WebSocket as ServerSocket } from 'ws'
import { WebSocket } from 'ws'
import { Errors } from '@switchboard/protocol'
import { startStack } from '@switchboard/testing'

/** Small, so a few hundred messages fill it past what the kernel buffers hold too. */
const MAX_BUFFERED_BYTES = 64 * 1024
const CONTENT = 'x'.repeat(16_000)
/** More than the kernel's socket buffers can hold on any machine this runs on, with MAX_BUFFERED_BYTES on top. */
const MAX_MESSAGES = 5000

t.test('a client that stops reading is closed with 1013 SLOW_CONSUMER; the others are unaffected', async (t) => {
  const stack = await startStack(t, { env: { MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES), MAX_MESSAGE_LENGTH: String(CONTENT.length + 10) } })
  const { app, ws } = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const url = `${ws}/chat/${visitor.chatId}`

  // The server's side of the visitor's socket, to see when and how the server gives up on it.
  const serverSide = new Promise<ServerSocket>((resolve) => app.websocketServer.once('connection', resolve))
  const user = await stack.socket(url, 'pong:user')
  const server = await serverSide
  user.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })
  await user.nextOfType('UserJoined')
  const agent = await stack.socket(url, 'pong:support')
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')

  let closedByServer: { code: number; reason: string; bufferedBefore: number } | undefined
  const close = server.close.bind(server)
  server.close = ((code: number, reason: string) => {
    closedByServer ??= { code, reason, bufferedBefore: server.bufferedAmount }
    close(code, reason)
  }) as ServerSocket['close']

  // The visitor stops reading: its TCP socket is paused, so what the server sends piles up.
  const tcp = (user.ws as unknown as { _socket: Socket })._socket
  tcp.pause()

  // The agent keeps talking, and reads every echo: the server keeps serving it throughout.
  const wrongEchoes: number[] = []
  const say = async (n: number) => {
    agent.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: `${n}:${CONTENT}`, from: 'Support' } })
    const echo = await agent.nextOfType('ChatMessage')
    if (echo.json.args.content !== `${n}:${CONTENT}`) wrongEchoes.push(n)
  }
  let sent = 0
  while (closedByServer === undefined && sent < MAX_MESSAGES) await say(++sent)
  t.ok(closedByServer, `the server closed the visitor's socket after ${sent} messages`)
  t.equal(closedByServer!.code, Errors.SLOW_CONSUMER.closeCode)
  t.equal(closedByServer!.code, 1013)
  t.equal(closedByServer!.reason, 'SLOW_CONSUMER')
  const frameBytes = Buffer.byteLength(`{"type":"ChatMessage","args":{}}`) + 300 + CONTENT.length
  t.ok(
    closedByServer!.bufferedBefore > MAX_BUFFERED_BYTES && closedByServer!.bufferedBefore <= MAX_BUFFERED_BYTES + frameBytes,
    `buffered at the close: ${closedByServer!.bufferedBefore} bytes, at most MAX_BUFFERED_BYTES + one frame`,
  )

  // Nothing more is queued for it while the close waits behind the unread bytes.
  const bufferedAtClose = server.bufferedAmount
  for (let i = 0; i < 20; i++) await say(++sent)
  t.ok(server.bufferedAmount <= bufferedAtClose, `buffered stays at ${server.bufferedAmount} (was ${bufferedAtClose} at the close)`)
  t.equal(agent.ws.readyState, WebSocket.OPEN, 'the agent, who reads, is still connected')
  t.same(wrongEchoes, [], `the agent got each of its ${sent} messages back, in order`)

  // Another chat on the same instance works as usual.
  const other = await stack.waitingVisitor('Other')
  t.equal(other.socket.ws.readyState, WebSocket.OPEN)
  t.equal((await fetch(`${stack.chatServers[0]!.http}/status`)).status, 200, 'the process still answers')

  // Once the visitor reads again it gets what was queued, then the close: 1013, so a client reconnects.
  tcp.resume()
  const closed = await user.closed
  t.equal(closed.code, 1013)
  t.equal(closed.reason, 'SLOW_CONSUMER')
  const delivered = user.received.filter((m) => m.json?.type === 'ChatMessage').length
  t.ok(delivered > 0 && delivered < sent, `the visitor got ${delivered} of ${sent} messages before the close (the rest were never queued)`)

  // Everything was stored: a v2 reconnect resumes after the last message it has (here a few before the end,
  // so the catch-up stays under this test's small MAX_BUFFERED_BYTES).
  const back = await stack.socket(url, 'pong:user', { v2: true })
  back.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, supportId, from: 'User', lastSeq: sent - 2 } })
  const history = (await back.nextOfType('ChatHistory')).json.args
  t.same(history.messages.map((m: { seq: number }) => m.seq), [sent - 1, sent], 'the reconnect gets the messages after its lastSeq')
})
