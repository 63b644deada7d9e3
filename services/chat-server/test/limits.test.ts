import t, { type Test } from 'tap'
import type { Duplex } from 'node:stream'
import { connect } from 'node:net'
import { once } from 'node:events'
import { pbkdf2, randomBytes } from 'node:crypto'
import { WebSocket } from 'ws'
import { Errors } from '@switchboard/protocol'
import { startStack, type Stack, type TestSocket, handshake, type HandshakeOutcome, trackUpgrades, closesWithin } from '@switchboard/testing'

type Visitor = { userId: string; username: string; chatId: string }
type Outcome = HandshakeOutcome


const TOO_MANY = {
  upgraded: false,
  status: 429,
  body: { statusCode: 429, code: 'TOO_MANY_CONNECTIONS', error: 'Too Many Requests', message: Errors.TOO_MANY_CONNECTIONS.message },
}



/**
 * Opens a socket, retrying while the server still answers 429 because it has
 * not yet seen an earlier socket's close (bounded: 100 attempts, each a real
 * handshake, no sleeping).
 */
async function openOnceFreed(stack: Stack, url: string): Promise<{ socket: TestSocket; attempts: number }> {
  for (let attempt = 1; attempt <= 100; attempt++) {
    try {
      return { socket: await stack.socket(url), attempts: attempt }
    } catch (err) {
      if ((err as Error).message !== 'HTTP 429') throw err
    }
  }
  throw new Error(`${url}: still 429 after 100 handshakes`)
}

const userJoin = (v: Visitor) => ({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User' } })
const agentJoin = (v: Visitor) => ({ type: 'Join', args: { userId: v.userId, username: v.username, supportUserName: 'Vika', from: 'Support' } })
const chatMessage = (v: Visitor, supportId: string, from: 'User' | 'Support', content: string) => ({
  type: 'ChatMessage',
  args: { userId: v.userId, supportId, content, from },
})
const MARKER = { type: 'Marker' }
const isCode = (code: string) => (m: { json: any }) => m.json?.type === 'Error' && m.json.args.code === code

t.test('MAX_MESSAGE_LENGTH=10: 10 characters pass (emoji count as one), 11 are refused and not stored', async (t) => {
  const stack = await startStack(t, { env: { MAX_MESSAGE_LENGTH: '10' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url, 'pong:user')
  user.send(userJoin(visitor))
  await user.nextOfType('UserJoined')
  const agent = await stack.socket(url, 'pong:support')
  agent.send(agentJoin(visitor))
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')

  const accepted = ['abcdefghij', '🙂'.repeat(10), 'ნიკა ნიკა!']
  const TOO_LONG = JSON.stringify({ type: 'Error', args: { code: 'MESSAGE_TOO_LONG', message: 'Message content is longer than 10 characters' } })
  for (const [i, content] of accepted.entries()) {
    user.send(chatMessage(visitor, supportId, 'User', content))
    t.equal((await user.next()).json.args.content, content, `accepted ${i + 1}: echoed`)
    t.equal((await agent.next()).json.args.content, content, `accepted ${i + 1}: delivered`)
  }
  for (const content of ['abcdefghijk', '🙂'.repeat(11), 'x'.repeat(1000)]) {
    user.send(chatMessage(visitor, supportId, 'User', content))
    t.equal((await user.next()).text, TOO_LONG, `${[...content].length} characters from the visitor → MESSAGE_TOO_LONG`)
    agent.send(chatMessage(visitor, supportId, 'Support', content))
    t.equal((await agent.next()).text, TOO_LONG, `${[...content].length} characters from the agent → MESSAGE_TOO_LONG`)
  }
  // The sockets stay open, nothing refused was delivered: the next frame each gets is this marker message.
  agent.send(chatMessage(visitor, supportId, 'Support', 'ok'))
  t.equal((await user.next()).json.args.content, 'ok')
  t.equal((await agent.next()).json.args.content, 'ok')

  const reader = await stack.socket(url, 'pong:user')
  reader.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportId, from: 'User' } })
  t.same(
    (await reader.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content),
    [...accepted, 'ok'],
    'only the accepted messages were stored',
  )
})

t.test('token bucket per socket: RATE_LIMIT_BURST=5, RATE_LIMIT_PER_SECOND=1, RATE_LIMIT_CLOSE_AFTER=20', async (t) => {
  // Pings every 250 ms: the recovery check below tries a frame on each.
  const stack = await startStack(t, { env: { RATE_LIMIT_BURST: '5', RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_CLOSE_AFTER: '20', HEARTBEAT_INTERVAL_MS: '250' } })
  const visitor = await stack.joinVisitor('Nika')
  const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`

  await t.test('a burst of 10 frames: 5 answered, 5 RATE_LIMITED, the socket stays open and recovers', async (t) => {
    // No pongs: a pong is a frame too, and would take a token.
    const socket = await stack.socket(url, null)
    for (let i = 0; i < 10; i++) socket.send(MARKER)
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await socket.next())
    const codes = answers.map((m) => m.json?.args?.code)
    t.equal(codes.filter((c) => c === 'UNKNOWN_TYPE').length, 5, '5 frames handled')
    t.equal(codes.filter((c) => c === 'RATE_LIMITED').length, 5, '5 refused')
    t.equal(
      answers.find((m) => m.json?.args?.code === 'RATE_LIMITED')?.text,
      JSON.stringify({ type: 'Error', args: { code: 'RATE_LIMITED', message: Errors.RATE_LIMITED.message } }),
    )
    t.equal(socket.ws.readyState, WebSocket.OPEN, 'open')

    // Tokens come back at 1/s: on each server ping, try one frame, until one is handled
    // (bounded: 8 pings are 2 s; 5 + 8 refusals stay under RATE_LIMIT_CLOSE_AFTER).
    let recovered = false
    for (let ping = 0; ping < 8 && !recovered; ping++) {
      await socket.nextPing()
      socket.send(MARKER)
      recovered = (await socket.next()).json?.args?.code === 'UNKNOWN_TYPE'
    }
    t.ok(recovered, 'a frame is handled again once a token came back')
  })

  await t.test('30 frames in a row: Error FLOODING, then close 1008; another socket is unaffected', async (t) => {
    const bystander = await stack.socket(url, null)
    const flooder = await stack.socket(url, null)
    for (let i = 0; i < 30; i++) flooder.send(MARKER)
    const closed = await flooder.closed
    t.equal(closed.code, 1008, 'closed with 1008 (policy violation)')
    t.equal(closed.reason, 'FLOODING')
    const codes = flooder.received.map((m) => m.json?.args?.code)
    t.equal(codes.filter((c) => c === 'FLOODING').length, 1, 'one FLOODING')
    t.equal(
      flooder.received.at(-1)?.text,
      JSON.stringify({ type: 'Error', args: { code: 'FLOODING', message: Errors.FLOODING.message } }),
      'FLOODING is the last frame before the close',
    )
    t.ok(
      codes.every((c) => c === 'FLOODING' || c === 'RATE_LIMITED' || c === 'UNKNOWN_TYPE'),
      'before it, only answers and RATE_LIMITED',
    )
    t.ok(codes.filter((c) => c === 'UNKNOWN_TYPE').length <= 5, 'at most the burst was handled')

    bystander.send(MARKER)
    t.ok(isCode('UNKNOWN_TYPE')(await bystander.next()), 'the other socket on the same chat and server is served')
    bystander.send(userJoin(visitor))
    t.equal((await bystander.nextOfType('UserJoined')).json.args.userId, visitor.userId, 'and can join')
  })

  await t.test('the same limit holds on Subscriber /users', async (t) => {
    const agent = await stack.socket(`${stack.subscribers[0]!.ws}/users`, null)
    for (let i = 0; i < 10; i++) agent.send(MARKER)
    const answers = []
    for (let i = 0; i < 10; i++) answers.push((await agent.next()).json?.args?.code)
    t.equal(answers.filter((c) => c === 'RATE_LIMITED').length, 5)
    t.equal(agent.ws.readyState, WebSocket.OPEN)
  })
})

t.test('MAX_SOCKETS_PER_CHAT=3: the 4th socket to join a chat → Error TOO_MANY_CONNECTIONS, close 1008; a freed admission is reusable', async (t) => {
  const stack = await startStack(t, { env: { MAX_SOCKETS_PER_CHAT: '3' } })
  const nika = await stack.joinVisitor('Nika')
  const dodo = await stack.joinVisitor('Dodo')
  const url = `${stack.chatServers[0]!.ws}/chat/${nika.chatId}`

  const open = [await stack.socket(url), await stack.socket(url), await stack.socket(url)]
  for (const socket of open) {
    socket.send(userJoin(nika))
    t.equal((await socket.nextOfType('UserJoined')).json.args.userId, nika.userId, 'joined')
  }
  const fourth = await stack.socket(url)
  fourth.send(userJoin(nika))
  t.ok(isCode('TOO_MANY_CONNECTIONS')(await fourth.next()), 'the 4th Join: Error TOO_MANY_CONNECTIONS')
  t.equal((await fourth.closed).code, 1008, 'and close 1008')

  const other = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${dodo.chatId}`)
  other.send(userJoin(dodo))
  t.equal((await other.nextOfType('UserJoined')).json.args.userId, dodo.userId, 'another chat is not affected')

  // The three are still served.
  for (const socket of open) {
    socket.send(MARKER)
    t.ok(isCode('UNKNOWN_TYPE')(await socket.next()))
  }

  await open[0]!.close()
  // The server sees the close a moment later: retry the Join on fresh sockets, bounded.
  let joined = false
  for (let attempt = 0; attempt < 50 && !joined; attempt++) {
    const again = await stack.socket(url)
    again.send(userJoin(nika))
    const answer = await again.next((m) => m.json?.type === 'UserJoined' || m.json?.type === 'Error')
    joined = answer.json.type === 'UserJoined'
  }
  t.ok(joined, 'an admission freed by a close is reused')
})

t.test('MAX_SOCKETS_PER_CHAT: strangers who know a chatId cannot lock its visitor out', async (t) => {
  const stack = await startStack(t, { env: { MAX_SOCKETS_PER_CHAT: '3' } })
  const nika = await stack.joinVisitor('Nika')
  const url = `${stack.chatServers[0]!.ws}/chat/${nika.chatId}`
  // A leaked chatId (SECURITY.md: it travels in URLs): sockets that never Join and answer every ping.
  const strangers = [await stack.socket(url, 'pong:user'), await stack.socket(url, 'pong:user'), await stack.socket(url, 'pong:user'), await stack.socket(url, 'pong:user')]
  for (const s of strangers) {
    s.send(MARKER)
    t.ok(isCode('UNKNOWN_TYPE')(await s.next()), 'a stranger is connected')
  }
  const visitor = await stack.socket(url)
  visitor.send(userJoin(nika))
  t.equal((await visitor.nextOfType('UserJoined')).json.args.userId, nika.userId, 'the visitor still joins: only joined sockets are counted')
})

t.test('MAX_SOCKETS_PER_IP=4: a 5th socket from one address → 429 before the upgrade, across chats', async (t) => {
  const stack = await startStack(t, { env: { MAX_SOCKETS_PER_IP: '4' } })
  const upgrades = trackUpgrades(t, stack)
  const chat = stack.chatServers[0]!
  const [a, b, c] = [await stack.joinVisitor('A'), await stack.joinVisitor('B'), await stack.joinVisitor('C')]
  const chatUrl = (v: Visitor) => `${chat.ws}/chat/${v.chatId}`

  const open = [await stack.socket(chatUrl(a)), await stack.socket(chatUrl(a)), await stack.socket(chatUrl(b)), await stack.socket(chatUrl(b))]
  const before = upgrades.length
  t.strictSame(await handshake(chatUrl(c)), TOO_MANY, 'a 5th socket, on a third chat')
  t.ok(await closesWithin(upgrades[before]!, 500), 'the server closes the refused connection')
  t.strictSame(await handshake(`${chat.ws}/chat/${'0'.repeat(32)}`), TOO_MANY, 'any /chat path')

  // Plain HTTP is not a socket: still served.
  t.equal((await fetch(`${chat.http}/health`)).status, 200, 'GET /health')
  t.equal((await fetch(`${chat.http}/user/join/D`)).status, 200, 'GET /user/join')

  // The limit is per instance: Subscriber has its own count, with the same limit.
  const agents = [] as TestSocket[]
  for (let i = 0; i < 4; i++) agents.push(await stack.socket(`${stack.subscribers[0]!.ws}/users`, 'pong:support'))
  t.equal(agents.filter((a) => a.ws.readyState === WebSocket.OPEN).length, 4, 'Subscriber takes 4 sockets from the address that has 4 on ChatServer')
  t.strictSame(await handshake(`${stack.subscribers[0]!.ws}/users`), TOO_MANY, 'and refuses its 5th')

  await open[3]!.close()
  const { socket } = await openOnceFreed(stack, chatUrl(c))
  socket.send(userJoin(c))
  t.equal((await socket.nextOfType('UserJoined')).json.args.userId, c.userId, 'a slot freed by a close is reused')
  t.strictSame(await handshake(chatUrl(a)), TOO_MANY, 'and the address is at its limit again')
})

/** A masked client text frame (payload under 126 bytes), as RFC 6455 wants from a client. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  if (payload.length >= 126) throw new Error('short frames only')
  const mask = randomBytes(4)
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))])
}

/**
 * `n` agent handshakes that reach the server together: every TCP connection
 * is made first, then all requests are written in one go. Each ends up
 * refused before the upgrade (429), or upgraded and served (a frame of an
 * unknown type gets UNKNOWN_TYPE), or upgraded and then turned away by the
 * server (an Error or a close before any answer).
 */
async function agentsTogether(t: Pick<Test, 'teardown'>, base: string, path: string, n: number, token: string) {
  const { port } = new URL(base)
  const conns = await Promise.all(
    Array.from({ length: n }, () => {
      const socket = connect(Number(port), '127.0.0.1')
      t.teardown(() => socket.destroy())
      socket.on('error', () => {})
      return once(socket, 'connect').then(() => socket)
    }),
  )
  const outcomes = conns.map(
    (socket) =>
      new Promise<'refused' | 'served' | 'turned away'>((resolve) => {
        let buffer = Buffer.alloc(0)
        let upgraded = false
        socket.on('data', (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk])
          if (!upgraded) {
            const end = buffer.indexOf('\r\n\r\n')
            if (end < 0) return
            const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buffer.subarray(0, end).toString('latin1'))?.[1])
            if (status !== 101) return resolve(status === 429 ? 'refused' : 'turned away')
            upgraded = true
            buffer = buffer.subarray(end + 4)
            socket.write(clientTextFrame(JSON.stringify(MARKER)))
          }
          // Server frames are unmasked; ours are short.
          while (buffer.length >= 2) {
            const opcode = buffer[0]! & 0x0f
            let length = buffer[1]! & 0x7f
            let offset = 2
            if (length === 126) {
              if (buffer.length < 4) return
              length = buffer.readUInt16BE(2)
              offset = 4
            }
            if (buffer.length < offset + length) return
            const payload = buffer.subarray(offset, offset + length).toString()
            buffer = buffer.subarray(offset + length)
            if (opcode === 0x1 && payload === 'ping') continue
            return resolve(opcode === 0x1 && payload.includes('"code":"UNKNOWN_TYPE"') ? 'served' : 'turned away')
          }
        })
        socket.once('close', () => resolve('turned away'))
      }),
  )
  const request = () =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`
  for (const socket of conns) socket.write(request())
  const all = await Promise.all(outcomes)
  const count = (what: string) => all.filter((o) => o === what).length
  return { served: count('served'), refused: count('refused'), turnedAway: count('turned away') }
}

/**
 * Keeps libuv's thread pool busy for a while (a loaded server: file I/O,
 * password hashing, …), as the asynchronous token verification runs there.
 * Resolves when the work is done.
 */
function busyThreadPool(): Promise<void> {
  const threads = Math.min(Number(process.env.UV_THREADPOOL_SIZE ?? 4) || 4, 16)
  return Promise.all(
    Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => pbkdf2('load', 'salt', 100_000, 32, 'sha256', (err) => (err ? reject(err) : resolve())))),
  ).then(() => undefined)
}

t.test('agent handshakes arriving together on a busy server cannot overshoot the per-IP limit', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', MAX_SOCKETS_PER_IP: '5' } })
  trackUpgrades(t, stack)
  const token = await stack.agentToken('Vika')
  const load = busyThreadPool()
  const onUsers = await agentsTogether(t, stack.subscribers[0]!.http, '/users', 10, token)
  await load
  t.equal(onUsers.served + onUsers.refused + onUsers.turnedAway, 10, 'every handshake got an answer')
  t.ok(onUsers.served >= 5, `the first 5 are served (served ${onUsers.served}, refused ${onUsers.refused}, turned away ${onUsers.turnedAway})`)
  t.equal(onUsers.served, 5, 'no more than 5 are served (MAX_SOCKETS_PER_IP)')
  t.strictSame(await handshake(`${stack.subscribers[0]!.ws}/users`, { authorization: `Bearer ${token}` }), TOO_MANY, 'a later socket from that address is refused')
})

t.test('JOIN_RATE_LIMIT_PER_MINUTE=3: the 4th GET /user/join from one address → 429 RATE_LIMITED', async (t) => {
  const stack = await startStack(t, { env: { JOIN_RATE_LIMIT_PER_MINUTE: '3' } })
  const base = stack.chatServers[0]!.http
  for (let i = 1; i <= 3; i++) t.equal((await fetch(`${base}/user/join/V${i}`)).status, 200, `join ${i}`)

  const res = await fetch(`${base}/user/join/V4`)
  t.equal(res.status, 429)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = (await res.json()) as any
  t.strictSame(Object.keys(body), ['statusCode', 'code', 'error', 'message'])
  t.match(body, { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' })
  t.match(body.message, /^Too many visitors registered from this address; try again in /)
  t.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After says when')

  const spoofed = await fetch(`${base}/user/join/V5`, { headers: { 'x-forwarded-for': '203.0.113.77' } })
  t.equal(spoofed.status, 429, 'X-Forwarded-For is not trusted (TRUST_PROXY=false): no way around the limit')
  t.equal((await fetch(`${base}/health`)).status, 200, 'other routes are not limited')
})

t.test('JOIN_RATE_LIMIT_PER_MINUTE is shared by all ChatServer instances (through Redis)', async (t) => {
  const stack = await startStack(t, { chatServers: 2, env: { JOIN_RATE_LIMIT_PER_MINUTE: '3' } })
  const [one, two] = stack.chatServers
  t.equal((await fetch(`${one!.http}/user/join/A`)).status, 200)
  t.equal((await fetch(`${one!.http}/user/join/B`)).status, 200)
  t.equal((await fetch(`${two!.http}/user/join/C`)).status, 200, 'the 3rd, on the other instance')
  const fourth = await fetch(`${two!.http}/user/join/D`)
  t.equal(fourth.status, 429, 'the 4th, on the other instance')
  t.equal(((await fourth.json()) as any).code, 'RATE_LIMITED')
  t.equal((await fetch(`${one!.http}/user/join/E`)).status, 429, 'and on the first')
})
