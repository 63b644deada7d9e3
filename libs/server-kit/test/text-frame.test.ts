import t from 'tap'
import type { EventEmitter } from 'node:events'
import { Socket } from 'node:net'
import * as ws from 'ws'
import { textFrameBytes } from '@switchboard/server-kit'

// ws's own frame builder and parser: exported by ws, not described by @types/ws.
const { Sender, Receiver } = ws as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] }
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => EventEmitter & { write(chunk: Buffer): void }
}

/** What ws itself writes for `send(text)` from a server: its own frame builder, unmasked. */
function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }))
}

/** The text a client's ws Receiver reads from `bytes`. */
function readBack(bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 })
    receiver.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? reject(new Error('read as binary')) : resolve(data.toString())))
    receiver.on('error', reject)
    receiver.write(bytes)
  })
}

t.test('a text frame is the bytes ws would write for it, at every length encoding', async (t) => {
  const texts: [string, string][] = [
    ['empty', ''],
    ['ping', 'ping'],
    ['125 bytes (the largest 7-bit length)', 'a'.repeat(125)],
    ['126 bytes (the smallest 16-bit length)', 'a'.repeat(126)],
    ['65,535 bytes (the largest 16-bit length)', 'a'.repeat(65_535)],
    ['65,536 bytes (the smallest 64-bit length)', 'a'.repeat(65_536)],
    ['1 MB', 'x'.repeat(1 << 20)],
    ['multi-byte UTF-8 across the 126-byte edge', 'é'.repeat(62) + 'ab'],
    ['emoji and CJK', '{"type":"ChatMessage","args":{"content":"你好 👋🏽"}}'],
    ['a lone surrogate (written as U+FFFD, as ws and Buffer do)', 'a\ud800b'],
  ]
  for (const [name, text] of texts) {
    const bytes = textFrameBytes(text)
    t.same(bytes, wsFrame(text), `${name}: same bytes as ws`)
    t.equal(await readBack(bytes), Buffer.from(text).toString(), `${name}: a ws client reads the text back`)
  }
})

// What the sockets plugin relies on in ws: a server socket's TCP connection
// is `_socket`, and frames written there directly arrive whole and in order
// between ws's own (no compression: ws's sender never queues).
t.test("frames written to ws's TCP connection arrive in order between ws's own sends", async (t) => {
  const server = new ws.WebSocketServer({ port: 0, perMessageDeflate: false })
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const served = new Promise<ws.WebSocket>((resolve) => server.once('connection', resolve))
  const client = new ws.WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
  t.teardown(() => client.terminate())
  const socket = await served
  const tcp = (socket as unknown as { _socket?: unknown })._socket
  t.ok(tcp instanceof Socket, "ws keeps the server socket's TCP connection as _socket")
  const expected = Array.from({ length: 200 }, (_, i) => `${i % 2 === 0 ? 'ws' : 'direct'} ${i} ${'é'.repeat(i * 7)}`)
  const received: string[] = []
  const all = new Promise<void>((resolve) =>
    client.on('message', (data: Buffer, isBinary: boolean) => {
      received.push(isBinary ? 'binary!' : data.toString())
      if (received.length === expected.length) resolve()
    }),
  )
  await new Promise((resolve) => client.once('open', resolve))
  for (const [i, text] of expected.entries()) {
    if (i % 2 === 0) socket.send(text)
    else (tcp as Socket).write(textFrameBytes(text))
  }
  await all
  t.same(received, expected)
})
