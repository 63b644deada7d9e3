import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { Agent, request } from 'node:http'
import { randomBytes } from 'node:crypto'
import { startStack, type RunningApp } from '@switchboard/testing'

/** The headers of a WebSocket handshake, plus `extra`. */
function upgradeHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    ...extra,
  }
}

/**
 * Sends one handshake on a raw TCP connection and reads until the server
 * ends it: the status, the response's headers, and whether the connection
 * was closed by the server (the 'end' of its side).
 */
async function refusedOnRawConnection(server: RunningApp, path: string, extra: Record<string, string> = {}) {
  const { port } = new URL(server.http)
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  const head = Object.entries({ Host: `127.0.0.1:${port}`, ...upgradeHeaders(extra) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  socket.write(`GET ${path} HTTP/1.1\r\n${head}\r\n`)
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (text += chunk))
  // Resolves when the server ends the connection; a connection left open for reuse never does,
  // and the test's own timeout reports it.
  await once(socket, 'end')
  socket.destroy()
  const [headLines = ''] = text.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = headLines.split('\r\n')
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers }
}

/**
 * A keep-alive HTTP client (one connection at most) sends a refused handshake,
 * then a plain GET /health: the second must be answered, on a new connection,
 * not reset on the one the refusal left behind.
 */
async function keepAliveAfterRefusal(server: RunningApp, path: string, extra: Record<string, string> = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const { port } = new URL(server.http)
  const get = (p: string, headers: Record<string, string>) =>
    new Promise<{ status: number; connection: string | undefined; local: number | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: p, agent, headers }, (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, local: req.socket?.localPort }))
      })
      req.on('error', reject)
      req.end()
    })
  try {
    const refused = await get(path, upgradeHeaders(extra))
    const health = await get('/health', {})
    return { refused, health }
  } finally {
    agent.destroy()
  }
}

t.test('a refused upgrade answers Connection: close and the server closes the connection', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on', MAX_SOCKETS_PER_IP: '1' } })
  const chat = stack.chatServers[0]!
  const subscriber = stack.subscribers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const chatPath = `/chat/${visitor.chatId}`

  const cases: { what: string; server: RunningApp; path: string; headers?: Record<string, string>; status: number }[] = [
    { what: '/users without a token (401)', server: subscriber, path: '/users', status: 401 },
    { what: '/users with a bad token (401)', server: subscriber, path: '/users', headers: { Authorization: 'Bearer not.a.token' }, status: 401 },
    { what: '/chat with a bad token (401)', server: chat, path: chatPath, headers: { Authorization: 'Bearer not.a.token' }, status: 401 },
    { what: '/chat from a foreign origin (403)', server: chat, path: chatPath, headers: { Origin: 'http://evil.example' }, status: 403 },
    { what: '/users from a foreign origin (403)', server: subscriber, path: '/users', headers: { Origin: 'http://evil.example' }, status: 403 },
  ]
  for (const c of cases) {
    await t.test(c.what, async (t) => {
      const raw = await refusedOnRawConnection(c.server, c.path, c.headers)
      t.equal(raw.status, c.status, 'refused')
      t.equal(raw.headers.connection, 'close', 'Connection: close')
      t.pass('the server ended the connection')
      const { refused, health } = await keepAliveAfterRefusal(c.server, c.path, c.headers)
      t.equal(refused.status, c.status)
      t.equal(refused.connection, 'close')
      t.equal(health.status, 200, 'a keep-alive client’s next request is answered, not reset')
    })
  }

  await t.test('/chat over MAX_SOCKETS_PER_IP (429)', async (t) => {
    // The one socket this address may have.
    await stack.socket(`${chat.ws}${chatPath}`)
    const raw = await refusedOnRawConnection(chat, chatPath)
    t.equal(raw.status, 429, 'refused')
    t.equal(raw.headers.connection, 'close', 'Connection: close')
    const { refused, health } = await keepAliveAfterRefusal(chat, chatPath)
    t.equal(refused.status, 429)
    t.equal(refused.connection, 'close')
    t.equal(health.status, 200, 'a keep-alive client’s next request is answered, not reset')
  })

  await t.test('plain requests keep their keep-alive', async (t) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const { port } = new URL(chat.http)
    const res = await new Promise<{ connection: string | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/health', agent }, (res) => {
        res.resume()
        res.on('end', () => resolve({ connection: res.headers.connection }))
      })
      req.on('error', reject)
      req.end()
    })
    t.equal(res.connection, 'keep-alive', 'only refused upgrades close')
  })
})
