import t from 'tap'
import { startStack, type Stack, type TestSocket } from '@switchboard/testing'


function agent(stack: Stack, pong: string | null = 'pong:support'): Promise<TestSocket> {
  return stack.socket(`${stack.subscribers[0]!.ws}/users`, pong)
}

const bare = (v: { username: string; userId: string; chatId: string }) =>
  `{"username":"${v.username}","userId":"${v.userId}","chatId":"${v.chatId}"}`
const errorFrame = (code: string, message: string) => `{"type":"Error","args":{"code":"${code}","message":"${message}"}}`
const isError = (code: string) => (m: { json: any }) => m.json?.type === 'Error' && m.json.args.code === code

/** Resolves after `n` more pings; rejects if the socket closes first. */
async function morePings(socket: TestSocket, n: number): Promise<void> {
  const closed = socket.closed.then(({ code }) => Promise.reject(new Error(`closed (${code}) while waiting for pings`)))
  closed.catch(() => {})
  const target = socket.pings + n
  while (socket.pings < target) await Promise.race([socket.nextPing(), closed])
}

t.test('frame errors on /users are answered with Error frames and the socket stays open', async (t) => {
  const stack = await startStack(t)
  const nika = await stack.waitingVisitor('Nika')

  t.test('malformed JSON → INVALID_JSON, then Load still works', async (t) => {
    const a = await agent(stack)
    a.send('{"type":"Load"')
    t.equal((await a.next()).text, errorFrame('INVALID_JSON', 'Frame is not valid JSON'), 'exact bytes')
    a.send({ type: 'Load' })
    t.equal((await a.next()).text, bare(nika), 'the next frame is answered as usual')
    t.equal(a.ws.readyState, a.ws.OPEN)
  })

  t.test('unknown type → UNKNOWN_TYPE', async (t) => {
    const a = await agent(stack)
    a.send({ type: 'Subscribe', args: {} })
    const reply = await a.next()
    t.equal(reply.json.type, 'Error')
    t.equal(reply.json.args.code, 'UNKNOWN_TYPE')
    t.match(reply.json.args.message, /Load, JoinUser/, 'the message names the frame types this socket accepts')
    t.same(Object.keys(reply.json.args), ['code', 'message'])
    a.send({ type: 'Load' })
    t.equal((await a.next()).text, bare(nika))
  })

  t.test('JSON that is not a {type, args} object → INVALID_FRAME', async (t) => {
    const a = await agent(stack)
    for (const text of ['[]', 'null', '"Load"', '42', '{"args":{}}', '{"type":7}']) {
      a.send(text)
      const reply = await a.next()
      t.equal(reply.json?.args?.code, 'INVALID_FRAME', text)
    }
  })

  t.test('JoinUser without chatId, or with a malformed id → INVALID_FRAME', async (t) => {
    const a = await agent(stack)
    a.send({ type: 'JoinUser', args: { userId: nika.userId, username: 'Nika' } })
    const missing = await a.next()
    t.equal(missing.json.type, 'Error')
    t.equal(missing.json.args.code, 'INVALID_FRAME')
    t.match(missing.json.args.message, /chatId/, 'the message names the missing field')

    a.send({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId.toUpperCase(), username: 'Nika' } })
    t.equal((await a.next()).json.args.code, 'INVALID_FRAME', 'ids are 32 lowercase hex characters')
    a.send({ type: 'JoinUser' })
    t.equal((await a.next()).json.args.code, 'INVALID_FRAME', 'no args at all')

    // Nothing was claimed by the invalid frames: the visitor is still listed.
    a.send({ type: 'Load' })
    t.equal((await a.next()).text, bare(nika))
  })

  t.test('a binary frame → BINARY_NOT_SUPPORTED', async (t) => {
    const a = await agent(stack)
    a.ws.send(Buffer.from(JSON.stringify({ type: 'Load' })), { binary: true })
    t.equal(
      (await a.next()).text,
      errorFrame('BINARY_NOT_SUPPORTED', 'Binary frames are not supported; send JSON text frames'),
    )
    a.send({ type: 'Load' })
    t.equal((await a.next()).text, bare(nika), 'a text frame afterwards is answered')
  })

  t.test('a pong is not a frame: it gets no answer', async (t) => {
    const a = await agent(stack)
    a.send('pong:support')
    a.send('pong:user')
    a.send({ type: 'Load' })
    t.equal((await a.next()).text, bare(nika), 'the first answer is the Load, no Error for the pongs')
  })
})

t.test('a frame over MAX_FRAME_BYTES closes the socket with 1009; one at the limit is handled', async (t) => {
  const stack = await startStack(t, { env: { MAX_FRAME_BYTES: '1024' } })
  const nika = await stack.waitingVisitor('Nika')

  const atLimit = await agent(stack)
  const prefix = '{"type":"Load","args":{"pad":"'
  const suffix = '"}}'
  const exact = prefix + 'x'.repeat(1024 - prefix.length - suffix.length) + suffix
  t.equal(Buffer.byteLength(exact), 1024)
  atLimit.send(exact)
  t.equal((await atLimit.next()).text, bare(nika), 'a frame of exactly MAX_FRAME_BYTES is handled')

  const over = await agent(stack)
  over.send(prefix + 'x'.repeat(2000) + suffix)
  const closed = await over.closed
  t.equal(closed.code, 1009, 'closed with 1009 (message too big)')
  t.same(over.received, [], 'and nothing was answered')
  // Multi-byte characters count as bytes: 500 × "é" is 533 characters but 1033 bytes.
  const multi = await agent(stack)
  multi.send(prefix + 'é'.repeat(500) + suffix)
  t.equal((await multi.closed).code, 1009, 'the limit is in bytes, not characters')

  // The other socket was not affected.
  atLimit.send({ type: 'Load' })
  t.equal((await atLimit.next()).text, bare(nika))
})

t.test('heartbeat: ping every HEARTBEAT_INTERVAL_MS, and a silent client is closed with 4408', async (t) => {
  const stack = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '50', IDLE_TIMEOUT_SECONDS: '0.5' } })

  // Opened together: one answers every ping, the other never says anything.
  const [lively, silent] = await Promise.all([agent(stack, 'pong:support'), agent(stack, null)])
  const opened = Date.now()

  await morePings(silent, 1)
  t.ok(silent.pings >= 1, 'the server sends "ping" text frames')
  t.same(silent.received, [], 'ping is the only thing sent: no JSON frame')

  const closed = await silent.closed
  const after = Date.now() - opened
  t.equal(closed.code, 4408, 'the silent client is closed with 4408')
  t.ok(after >= 400, `not before IDLE_TIMEOUT_SECONDS (${after} ms)`)
  t.ok(silent.pings >= 3, `it got several pings before (${silent.pings})`)

  t.equal(lively.ws.readyState, lively.ws.OPEN, 'the client that answers is still open when the silent one is closed')
  // Another idle timeout later (12 pings × 50 ms = 600 ms > 0.5 s), it is still served.
  await morePings(lively, 12)
  lively.send({ type: 'Marker' })
  const reply = await lively.next(isError('UNKNOWN_TYPE'))
  t.ok(reply, 'it still gets answers')
  t.equal(lively.ws.readyState, lively.ws.OPEN)
})

t.test('a client that sends frames but never answers ping is not idle', async (t) => {
  const stack = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '50', IDLE_TIMEOUT_SECONDS: '0.5' } })
  const [busy, silent] = await Promise.all([agent(stack, null), agent(stack, null)])
  // busy sends a frame at every ping; silent does nothing.
  let answers = 0
  const closedSilent = silent.closed.then((c) => c.code)
  let silentCode: number | undefined
  void closedSilent.then((c) => (silentCode = c))
  while (silentCode === undefined) {
    await morePings(busy, 1)
    busy.send({ type: 'Marker' })
    await busy.next(isError('UNKNOWN_TYPE'))
    answers++
    if (answers > 200) throw new Error('the silent client was never closed')
  }
  t.equal(silentCode, 4408)
  // And a further idle timeout's worth of pings later, busy is still open.
  for (let i = 0; i < 12; i++) {
    await morePings(busy, 1)
    busy.send({ type: 'Marker' })
    await busy.next(isError('UNKNOWN_TYPE'))
  }
  t.equal(busy.ws.readyState, busy.ws.OPEN, 'frames count as activity')
})
