import t from 'tap'
import { Opcode, fragments, frame, rawConnect, rawHandshake, startStack, type RawSocket } from '@switchboard/testing'

/**
 * Hostile WebSocket frames at Subscriber's /users, over a raw TCP socket:
 * exact close codes, and afterwards a healthy server whose queue still lists
 * the waiting visitor (a hostile JoinUser must not have claimed them).
 */

type Asserts = Pick<typeof t, 'equal' | 'same' | 'ok' | 'notOk'>

const MAX_FRAME_BYTES = 1024

t.test('raw frames at /users', async (t) => {
  // Agent authentication is tested elsewhere; here the agents connect without a token.
  const stack = await startStack(t, { env: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), AGENT_AUTH: 'off' } })
  const sub = stack.subscribers[0]!
  const usersUrl = `${sub.ws}/users`

  // One visitor waiting in the queue.
  const nika = await stack.joinVisitor('Nika')
  const visitorSocket = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${nika.chatId}`)
  visitorSocket.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', from: 'User' } })
  await visitorSocket.nextOfType('UserJoined')
  const listed = `{"username":"Nika","userId":"${nika.userId}","chatId":"${nika.chatId}"}`
  /** Would claim the visitor, were it accepted. */
  const claim = JSON.stringify({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'Nika' } })

  /** /health 200, and a fresh agent's Load still lists the visitor: nothing was claimed. */
  async function expectHealthy(t: Asserts) {
    const res = await fetch(`${sub.http}/health`)
    t.equal(res.status, 200, 'GET /health 200')
    t.same(await res.json(), { status: 'ok', redis: 'up' })
    const agent = await stack.socket(usersUrl, 'pong:support')
    agent.send({ type: 'Load' })
    t.equal((await agent.next()).text, listed, 'Load on a fresh socket lists the waiting visitor')
    await agent.close()
  }

  async function raw(): Promise<RawSocket> {
    const socket = await rawConnect(usersUrl)
    t.teardown(() => socket.destroy())
    return socket
  }

  async function expectClose(t: Asserts, bytes: Buffer, code: number) {
    const socket = await raw()
    await socket.write(bytes)
    const closed = await socket.waitClosed()
    t.equal(closed.code, code, `close code ${code}`)
    t.same(socket.serverErrors, [], 'the server sent well-formed frames')
    t.notOk(socket.messages.some((m) => m.text?.includes('RemoveUser')), 'no RemoveUser: nothing was claimed')
    await expectHealthy(t)
  }

  await t.test('a well-formed masked Load on a raw socket is answered', async (t) => {
    const socket = await raw()
    await socket.sendText('{"type":"Load"}')
    t.equal((await socket.nextJson()).text, listed)
    await socket.close()
  })

  await t.test('an unmasked JoinUser → 1002', async (t) => {
    await expectClose(t, frame({ opcode: Opcode.TEXT, mask: false, payload: claim }), 1002)
  })

  await t.test('invalid UTF-8 in a text frame → 1007', async (t) => {
    const payload = Buffer.concat([Buffer.from(claim.slice(0, -2)), Buffer.from([0xc0, 0xaf]), Buffer.from(claim.slice(-2))])
    await expectClose(t, frame({ opcode: Opcode.TEXT, payload }), 1007)
  })

  await t.test('a reserved opcode → 1002', async (t) => {
    await expectClose(t, frame({ opcode: 0x3, payload: claim }), 1002)
  })

  await t.test('a continuation frame with no message started → 1002', async (t) => {
    await expectClose(t, frame({ opcode: Opcode.CONTINUATION, payload: claim }), 1002)
  })

  await t.test('over MAX_FRAME_BYTES → 1009', async (t) => {
    const big = JSON.stringify({ type: 'JoinUser', args: { userId: nika.userId, chatId: nika.chatId, username: 'N'.repeat(MAX_FRAME_BYTES) } })
    await t.test('in one frame', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.TEXT, payload: big }), 1009)
    })
    await t.test('in fragments each under the limit', async (t) => {
      await expectClose(t, Buffer.concat(fragments(big, 5).map(frame)), 1009)
    })
    await t.test('a 64-bit length of 2^53', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.TEXT, lengthOverride: 2n ** 53n, payload: 'x' }), 1009)
    })
  })

  await t.test('control: a well-formed JoinUser does claim the visitor (so the checks above can fail)', async (t) => {
    const socket = await raw()
    await socket.sendAll(fragments(claim, 3))
    t.equal((await socket.nextJson()).text, `{"type":"RemoveUser","args":{"userId":"${nika.userId}"}}`)
    const agent = await stack.socket(usersUrl, 'pong:support')
    agent.send({ type: 'Load' })
    agent.send({ type: 'Nothing' })
    // Load lists nobody now, so the next frame is the answer to the frame after it.
    t.equal((await agent.next()).json?.args?.code, 'UNKNOWN_TYPE', 'the queue is empty')
    await socket.close()
  })
})

t.test('with agent authentication on, an upgrade without a token is refused before any frame', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const answer = await rawHandshake(`${stack.subscribers[0]!.ws}/users`)
  t.equal(answer.status, 401)
  t.equal(answer.socket, null)
  const res = await fetch(`${stack.subscribers[0]!.http}/health`)
  t.equal(res.status, 200)
})
