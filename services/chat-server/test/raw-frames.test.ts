import t from 'tap'
import { Opcode, closePayload, fragments, frame, rawConnect, rawHandshake, startStack, type RawSocket, type Teardown, type TestSocket } from '@switchboard/testing'

/**
 * Hostile WebSocket frames, written byte by byte over a raw TCP socket, at
 * ChatServer's /chat/{chatId}: each must close the connection with the exact
 * RFC 6455 close code, and leave the server healthy and the chat's stored
 * history untouched.
 */

type Asserts = Pick<typeof t, 'equal' | 'same' | 'ok' | 'match' | 'notOk' | 'not'>

const MAX_FRAME_BYTES = 1024

t.test('raw frames at /chat/{chatId}', async (t) => {
  // Agents join without a token here: agent authentication is tested elsewhere.
  const stack = await startStack(t, { env: { MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), AGENT_AUTH: 'off' } })
  const chat = stack.chatServers[0]!

  // Chat A: visitor Nika, an agent, one message. The hostile sockets attack it.
  const nika = await stack.joinVisitor('Nika')
  const user = await stack.socket(`${chat.ws}/chat/${nika.chatId}`, 'pong:user')
  user.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const agent = await stack.socket(`${chat.ws}/chat/${nika.chatId}`, 'pong:support')
  agent.send({ type: 'Join', args: { userId: nika.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args as { supportId: string }
  await user.nextOfType('SupportJoinedUser')
  user.send({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content: 'the only message', from: 'User' } })
  await user.nextOfType('ChatMessage')
  await agent.nextOfType('ChatMessage')

  const urlA = `${chat.ws}/chat/${nika.chatId}`
  const rejoinA = JSON.stringify({ type: 'Join', args: { userId: nika.userId, supportId, username: 'Nika', from: 'User' } })
  /** A ChatMessage that, were it accepted, would change chat A's history. */
  const sneaky = (content = 'sneaked in') =>
    JSON.stringify({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content, from: 'User' } })

  const history = await historyOf(stack, urlA, rejoinA)
  t.match(history, /"messages":\[\{"userId":"[0-9a-f]{32}","supportId":"[0-9a-f]{32}","content":"the only message","timestamp":"[^"]+","from":"User"\}\]\}\}$/)

  // Chat B: a visitor still waiting for an agent; every Join of theirs is answered with UserJoined.
  const dodo = await stack.joinVisitor('Dodo')
  const urlB = `${chat.ws}/chat/${dodo.chatId}`
  const joinB = JSON.stringify({ type: 'Join', args: { userId: dodo.userId, username: 'Dodo', from: 'User' } })
  const userJoinedB = `{"type":"UserJoined","args":{"username":"Dodo","userId":"${dodo.userId}","chatId":"${dodo.chatId}"}}`
  {
    const first = await stack.socket(urlB)
    first.send(joinB)
    t.equal((await first.next()).text, userJoinedB)
    await first.close()
  }

  /** A raw socket on chat A, closed at teardown. */
  async function raw(url = urlA): Promise<RawSocket> {
    const socket = await rawConnect(url)
    t.teardown(() => socket.destroy())
    return socket
  }

  /** A raw socket on chat A that has re-joined as the visitor (got ChatHistory), so a ChatMessage from it would be stored. */
  async function joinedRaw(): Promise<RawSocket> {
    const socket = await raw()
    await socket.sendText(rejoinA)
    const answer = await socket.nextJson()
    if (answer.json?.type !== 'ChatHistory') throw new Error(`expected ChatHistory, got ${answer.text.slice(0, 200)}`)
    return socket
  }

  /** /health answers 200, a fresh socket's Join is answered, and chat A's history is what it was. */
  async function expectHealthy(t: Asserts) {
    const res = await fetch(`${chat.http}/health`)
    t.equal(res.status, 200, 'GET /health 200')
    t.same(await res.json(), { status: 'ok', redis: 'up' })
    const fresh = await stack.socket(urlB)
    fresh.send(joinB)
    t.equal((await fresh.next()).text, userJoinedB, "a fresh socket's Join is answered")
    await fresh.close()
    t.equal(await historyOf(stack, urlA, rejoinA), history, "chat A's stored history is unchanged")
  }

  /** Sends the bytes on a joined raw socket and expects the server to close with `code`, then a healthy server. */
  async function expectClose(t: Asserts, bytes: Buffer, code: number, opts: { joined?: boolean } = {}) {
    const socket = opts.joined === false ? await raw() : await joinedRaw()
    await socket.write(bytes)
    const closed = await socket.waitClosed()
    t.equal(closed.code, code, `close code ${code}`)
    t.same(socket.serverErrors, [], 'the server sent well-formed frames')
    t.notOk(
      socket.messages.some((m) => m.text?.includes('"ChatMessage"')),
      'no ChatMessage echo: nothing was stored',
    )
    await expectHealthy(t)
  }

  await t.test('an unmasked client frame → 1002', async (t) => {
    await expectClose(t, frame({ opcode: Opcode.TEXT, mask: false, payload: sneaky() }), 1002)
  })

  await t.test('an unmasked frame before Join → 1002', async (t) => {
    await expectClose(t, frame({ opcode: Opcode.TEXT, mask: false, payload: rejoinA }), 1002, { joined: false })
  })

  await t.test('invalid UTF-8 in a text frame → 1007', async (t) => {
    const cases: [string, Buffer][] = [
      ['a lone 0xFF byte', Buffer.from([0xff])],
      ['a lone continuation byte', Buffer.from([0x80])],
      ['an overlong "/"', Buffer.from([0xc0, 0xaf])],
      ['a UTF-16 surrogate encoded as UTF-8', Buffer.from([0xed, 0xa0, 0x80])],
      ['a code point above U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
      ['a character cut short at the end', Buffer.from([0xe2, 0x82])],
    ]
    for (const [what, bad] of cases) {
      await t.test(what, async (t) => {
        // The broken bytes sit inside the content of an otherwise valid ChatMessage.
        const [before, after] = sneaky('@@').split('@@') as [string, string]
        const payload = Buffer.concat([Buffer.from(before), Buffer.from('ok '), bad, Buffer.from(after)])
        await expectClose(t, frame({ opcode: Opcode.TEXT, payload }), 1007)
      })
    }
    await t.test('invalid UTF-8 spread over fragments', async (t) => {
      const [before, after] = sneaky('@@').split('@@') as [string, string]
      const payload = Buffer.concat([Buffer.from(before), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(after)])
      const at = before.length + 1
      await expectClose(t, Buffer.concat(fragments(payload, [at, payload.length - at]).map(frame)), 1007)
    })
  })

  await t.test('a reserved opcode → 1002', async (t) => {
    for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      await t.test(`opcode 0x${opcode.toString(16)}`, async (t) => {
        await expectClose(t, frame({ opcode, payload: sneaky() }), 1002)
      })
    }
  })

  await t.test('RSV bits without a negotiated extension → 1002', async (t) => {
    for (const bit of ['rsv1', 'rsv2', 'rsv3'] as const) {
      await t.test(bit, async (t) => {
        await expectClose(t, frame({ opcode: Opcode.TEXT, [bit]: true, payload: sneaky() }), 1002)
      })
    }
    await t.test('rsv1 on a continuation frame', async (t) => {
      const [first, last] = fragments(sneaky(), 2)
      await expectClose(t, Buffer.concat([frame(first!), frame({ ...last!, rsv1: true })]), 1002)
    })
  })

  await t.test('control frames', async (t) => {
    await t.test('a ping with a 126-byte payload → 1002', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.PING, payload: Buffer.alloc(126, 0x61) }), 1002)
    })
    await t.test('a ping with a 125-byte payload is answered with a pong carrying it', async (t) => {
      const socket = await raw(urlB)
      const payload = Buffer.alloc(125, 0x62)
      await socket.sendAll([{ opcode: Opcode.PING, payload }, { opcode: Opcode.TEXT, payload: joinB }])
      t.equal((await socket.nextJson()).text, userJoinedB)
      // The pong is written before the answer to the Join sent after the ping.
      const pongs = socket.frames.filter((f) => f.opcode === Opcode.PONG)
      t.equal(pongs.length, 1, 'one pong frame')
      t.same(pongs[0]?.payload, payload, 'carrying the ping payload')
      await socket.close()
    })
    await t.test('a fragmented ping (FIN clear) → 1002', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.PING, fin: false, payload: 'x' }), 1002)
    })
    await t.test('a fragmented close (FIN clear) → 1002', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.CLOSE, fin: false, payload: closePayload(1000) }), 1002)
    })
    await t.test('a close frame with a 1-byte payload → 1002', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.CLOSE, payload: Buffer.from([0x03]) }), 1002)
    })
    await t.test('a close frame with an invalid code → 1002', async (t) => {
      for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000]) {
        await t.test(String(code), async (t) => {
          await expectClose(t, frame({ opcode: Opcode.CLOSE, payload: closePayload(code) }), 1002)
        })
      }
    })
    await t.test('a close frame with an invalid UTF-8 reason → 1007', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.CLOSE, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }), 1007)
    })
    await t.test('a clean close (1000) is echoed with 1000', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.CLOSE, payload: closePayload(1000, 'bye') }), 1000)
    })
    await t.test('a flood of pings is cut off (ws drops the connection after 60 unanswered pongs)', async (t) => {
      const socket = await joinedRaw()
      await socket.sendAll(Array.from({ length: 5000 }, () => ({ opcode: Opcode.PING, payload: Buffer.alloc(125, 0x70) })))
      const closed = await socket.waitClosed()
      t.equal(closed.code, null, 'dropped without a close frame')
      const pongs = socket.frames.filter((f) => f.opcode === Opcode.PONG).length
      t.ok(pongs < 5000, `not every ping got its pong (${pongs})`)
      await expectHealthy(t)
    })
    await t.test('a ping between the fragments of a message is answered, and the message still arrives whole', async (t) => {
      const socket = await raw(urlB)
      const [a, b] = fragments(joinB, 2)
      await socket.sendAll([a!, { opcode: Opcode.PING, payload: 'mid' }, b!])
      const answer = await socket.nextJson()
      t.equal(answer.text, userJoinedB)
      t.same(
        socket.frames.filter((f) => f.opcode === Opcode.PONG).map((f) => f.payload.toString()),
        ['mid'],
        'one pong with the ping payload',
      )
      await socket.close()
    })
  })

  await t.test('messages over MAX_FRAME_BYTES → 1009', async (t) => {
    const big = sneaky('x'.repeat(MAX_FRAME_BYTES))
    t.ok(Buffer.byteLength(big) > MAX_FRAME_BYTES)
    await t.test('in one frame', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.TEXT, payload: big }), 1009)
    })
    await t.test('only the header of a huge frame: refused before the payload comes', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.TEXT, lengthOverride: 10 * 1024 * 1024 }), 1009)
    })
    await t.test('split over fragments each under the limit', async (t) => {
      const pieces = Math.ceil(Buffer.byteLength(big) / 300)
      const specs = fragments(big, pieces)
      t.ok(specs.every((s) => (s.payload as Buffer).length < MAX_FRAME_BYTES), 'every fragment is under the limit')
      await expectClose(t, Buffer.concat(specs.map(frame)), 1009)
    })
    await t.test('a binary message over the limit', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.BINARY, payload: Buffer.alloc(MAX_FRAME_BYTES + 1) }), 1009)
    })
    await t.test('exactly MAX_FRAME_BYTES in fragments is accepted', async (t) => {
      const socket = await raw(urlB)
      const padded = JSON.stringify({ type: 'Join', args: { userId: dodo.userId, username: 'Dodo', from: 'User', pad: '' } })
      const exact = padded.replace('"pad":""', `"pad":"${'p'.repeat(MAX_FRAME_BYTES - Buffer.byteLength(padded))}"`)
      t.equal(Buffer.byteLength(exact), MAX_FRAME_BYTES)
      await socket.sendAll(fragments(exact, 4))
      t.equal((await socket.nextJson()).text, userJoinedB)
      await socket.close()
    })
  })

  await t.test('64-bit lengths', async (t) => {
    for (const [what, length, code] of [
      ['2^53', 2n ** 53n, 1009],
      ['2^53 - 1', 2n ** 53n - 1n, 1009],
      ['2^63 (most significant bit set)', 2n ** 63n, 1009],
      ['2^64 - 1', 2n ** 64n - 1n, 1009],
    ] as const) {
      await t.test(`a frame that declares ${what} bytes → ${code}`, async (t) => {
        await expectClose(t, frame({ opcode: Opcode.TEXT, lengthOverride: length, payload: 'abc' }), code)
      })
    }
  })

  await t.test('fragmentation', async (t) => {
    await t.test('a Join in 3 fragments (text + 2 continuation) is reassembled and answered', async (t) => {
      const socket = await raw(urlB)
      const specs = fragments(joinB, 3)
      t.same(specs.map((s) => [s.opcode, s.fin]), [[Opcode.TEXT, false], [Opcode.CONTINUATION, false], [Opcode.CONTINUATION, true]])
      for (const spec of specs) await socket.send(spec)
      t.equal((await socket.nextJson()).text, userJoinedB)
      await socket.close()
    })
    await t.test('a multi-byte character split between fragments is fine', async (t) => {
      const socket = await raw(urlB)
      // The name in a Join is not checked against the chat's: the answer is the chat's visitor.
      const text = JSON.stringify({ type: 'Join', args: { userId: dodo.userId, username: 'Łódź 😀', from: 'User' } })
      const cut = Buffer.from(text).indexOf(Buffer.from('😀')) + 2
      await socket.sendAll(fragments(text, [cut, Buffer.byteLength(text) - cut]))
      t.equal((await socket.nextJson()).text, userJoinedB)
      await socket.close()
    })
    await t.test('empty fragments are fine', async (t) => {
      const socket = await raw(urlB)
      const len = Buffer.byteLength(joinB)
      await socket.sendAll(fragments(joinB, [0, len, 0]))
      t.equal((await socket.nextJson()).text, userJoinedB)
      await socket.close()
    })
    await t.test('a continuation frame with no message started → 1002', async (t) => {
      await expectClose(t, frame({ opcode: Opcode.CONTINUATION, payload: sneaky() }), 1002)
    })
    await t.test('a new text frame inside a fragmented message → 1002', async (t) => {
      const [first] = fragments(sneaky(), 2)
      await expectClose(t, Buffer.concat([frame(first!), frame({ opcode: Opcode.TEXT, payload: sneaky() })]), 1002)
    })
    await t.test('a fragmented binary message gets BINARY_NOT_SUPPORTED and the socket stays open', async (t) => {
      const socket = await raw(urlB)
      await socket.sendAll(fragments(joinB, 3, Opcode.BINARY))
      const answer = await socket.nextJson()
      t.equal(answer.json?.args?.code, 'BINARY_NOT_SUPPORTED')
      await socket.sendText(joinB)
      t.equal((await socket.nextJson()).text, userJoinedB, 'still answers')
      await socket.close()
    })
  })

  await t.test('a message that never ends: more fragments than ws buffers (16384) → 1008', async (t) => {
    const [first] = fragments(sneaky(), 2)
    // Empty continuation frames add nothing to the size, so only the fragment count stops them.
    const empty = frame({ opcode: Opcode.CONTINUATION, fin: false })
    await expectClose(t, Buffer.concat([frame(first!), ...Array.from({ length: 16_400 }, () => empty)]), 1008)
  })

  await t.test('a masked Join written one byte per TCP write is answered', async (t) => {
    const socket = await raw(urlB)
    await socket.writeBytewise(frame({ opcode: Opcode.TEXT, payload: joinB }))
    t.equal((await socket.nextJson()).text, userJoinedB)
    // and a 16-bit-length frame, byte by byte too
    const padded = JSON.stringify({ type: 'Join', args: { userId: dodo.userId, username: 'Dodo', from: 'User', pad: 'p'.repeat(200) } })
    const bytes = frame({ opcode: Opcode.TEXT, payload: padded })
    t.equal(bytes[1]! & 0x7f, 126, '16-bit length')
    await socket.writeBytewise(bytes)
    const again = await socket.nextJson()
    t.equal(again.json?.args?.code, 'ALREADY_JOINED', 'the second Join on the socket is refused as usual')
    await socket.close()
  })

  await t.test('the TCP connection dropped in the middle of a frame', async (t) => {
    const socket = await joinedRaw()
    const bytes = frame({ opcode: Opcode.TEXT, payload: sneaky() })
    await socket.write(bytes.subarray(0, bytes.length - 5))
    socket.socket.end()
    const closed = await socket.waitClosed()
    t.equal(closed.code, null, 'no close frame: the server just ends the connection')
    await expectHealthy(t)
  })

  await t.test('a handshake ws cannot accept is refused with an HTTP status, not an upgrade', async (t) => {
    for (const [what, headers] of [
      ['no Sec-WebSocket-Key', { 'Sec-WebSocket-Key': null }],
      ['a Sec-WebSocket-Key that is not 16 bytes', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }],
      ['Sec-WebSocket-Version 12', { 'Sec-WebSocket-Version': '12' }],
    ] as const) {
      const answer = await rawHandshake(urlA, { headers })
      t.equal(answer.status, 400, `${what}: 400`)
      t.equal(answer.socket, null, `${what}: no socket`)
    }
    await expectHealthy(t)
  })

  await t.test('the sockets of chat A survived all of it', async (t) => {
    t.same(user.unconsumed.map((m) => m.text), [], 'the visitor got no frame from any of it')
    t.same(agent.unconsumed.map((m) => m.text), [], 'nor did the agent')
    agent.send({ type: 'ChatMessage', args: { userId: nika.userId, supportId, content: 'still here', from: 'Support' } })
    t.equal((await user.nextOfType('ChatMessage')).json.args.content, 'still here')
    t.equal((await agent.nextOfType('ChatMessage')).json.args.content, 'still here')
  })

  await t.test('control: the same ChatMessage in a well-formed frame is stored (so the checks above can fail)', async (t) => {
    const before = await historyOf(stack, urlA, rejoinA)
    const socket = await joinedRaw()
    await socket.sendText(sneaky('well-formed this time'))
    const echo = await socket.nextJson()
    t.equal(echo.json?.type, 'ChatMessage')
    t.equal(echo.json?.args?.content, 'well-formed this time')
    const after = await historyOf(stack, urlA, rejoinA)
    t.not(after, before, 'the history changed')
    t.equal(after, before.replace(/\]\}\}$/, `,${echo.text.slice('{"type":"ChatMessage","args":'.length, -1)}]}}`), 'by exactly that message')
    await socket.close()
  })
})

/** The exact ChatHistory frame a fresh socket gets for this re-join. */
async function historyOf(stack: { socket(url: string): Promise<TestSocket> }, url: string, rejoin: string): Promise<string> {
  const socket = await stack.socket(url)
  socket.send(rejoin)
  const answer = await socket.next()
  await socket.close()
  if (answer.json?.type !== 'ChatHistory') throw new Error(`expected ChatHistory, got ${answer.text.slice(0, 200)}`)
  return answer.text
}

t.test('a frame that never completes does not hold the socket open: the idle timeout closes it (4408)', async (t) => {
  const stack = await startStack(t, { env: { IDLE_TIMEOUT_SECONDS: '0.5', HEARTBEAT_INTERVAL_MS: '100', AGENT_AUTH: 'off' } })
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const socket = await rawConnect(`${chat.ws}/chat/${visitor.chatId}`)
  t.teardown(() => socket.destroy())
  const join = JSON.stringify({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  // The header and half of the payload, then nothing.
  const bytes = frame({ opcode: Opcode.TEXT, payload: join })
  await socket.write(bytes.subarray(0, bytes.length - Math.floor(join.length / 2)))
  const closed = await socket.waitClosed(5000)
  t.equal(closed.code, 4408)
  t.same(socket.messages.map((m) => m.text), [], 'the half frame was never answered')
  const res = await fetch(`${chat.http}/health`)
  t.equal(res.status, 200)
})

t.test('a visitor whose connection drops while their Join is being answered still leaves the queue', async (t) => {
  const stack = await startStack(t, { env: { CHAT_TTL_SECONDS: '0.5', AGENT_AUTH: 'off' }, sweepIntervalMs: 50 })
  const chat = stack.chatServers[0]!
  const agent = await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support')
  agent.send({ type: 'Load' })
  const removeUser = (userId: string) => `{"type":"RemoveUser","args":{"userId":"${userId}"}}`

  /** A visitor's raw socket, past its first answer (so the server has read the chat). */
  async function visitorSocket(t: Asserts & Teardown) {
    const visitor = await stack.joinVisitor('Nika')
    const socket = await rawConnect(`${chat.ws}/chat/${visitor.chatId}`)
    t.teardown(() => socket.destroy())
    await socket.sendText('not json')
    t.equal((await socket.nextJson()).json?.args?.code, 'INVALID_JSON', 'the socket is served')
    const join = frame({ opcode: Opcode.TEXT, payload: JSON.stringify({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } }) })
    return { visitor, socket, join }
  }

  await t.test('control: leaving after the answer', async (t) => {
    const { visitor, socket, join } = await visitorSocket(t)
    await socket.write(join)
    t.equal((await socket.nextJson()).json?.type, 'UserJoined')
    socket.destroy()
    t.equal((await agent.nextOfType('UserJoined')).json.args.userId, visitor.userId)
    // CHAT_TTL_SECONDS after leaving, the chat expires and agents are told.
    t.equal((await agent.nextOfType('RemoveUser', 3000)).text, removeUser(visitor.userId))
  })

  await t.test('leaving in the same moment as the Join', async (t) => {
    const { visitor, socket, join } = await visitorSocket(t)
    socket.socket.end(join)
    t.equal((await socket.waitClosed()).code, null)
    t.equal((await agent.nextOfType('UserJoined')).json.args.userId, visitor.userId, 'the Join was handled')
    const removed = await agent.nextOfType('RemoveUser', 3000).then(
      (m) => m.text,
      () => 'no RemoveUser 3 s after leaving (CHAT_TTL_SECONDS is 0.5)',
    )
    t.equal(removed, removeUser(visitor.userId), 'the visitor leaves the queue like any visitor who left')
  })
})
