import t from 'tap'
import { get } from 'node:http'
import { ConfigError, loadConfig } from '@switchboard/server-kit'
import { launchChromium, startStack } from '@switchboard/testing'

/*
 * Where the console finds ChatServer (issue 15, item 11): Subscriber says it
 * in GET /agent/config (CHAT_SERVER_PUBLIC_URL, else the request's host with
 * CHAT_SERVER_PORT), so a console opened from the printed link works when
 * ChatServer is not on port 9000. The test stacks listen on free ports, never 9000.
 */

/** GET with headers fetch() will not send (Host). */
function getJson(url: string, headers: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve(JSON.parse(body)))
    }).on('error', reject)
  })
}

t.test('GET /agent/config says where ChatServer is', async (t) => {
  const stack = await startStack(t)
  const sub = stack.subscribers[0]!
  const chatPort = new URL(stack.chatServers[0]!.http).port
  t.not(chatPort, '9000', 'ChatServer is not on the port the console used to assume')
  const config = (await (await fetch(`${sub.http}/agent/config`)).json()) as { chatServer: string }
  t.equal(config.chatServer, `http://127.0.0.1:${chatPort}`, 'the host the request came to, with CHAT_SERVER_PORT')
  // A console opened by another name for this machine is sent to ChatServer by that name (same site, same cookies, same allowlist entry).
  const byName = await getJson(`${sub.http}/agent/config`, { host: `localhost:${new URL(sub.http).port}` })
  t.equal((byName as { chatServer: string }).chatServer, `http://localhost:${chatPort}`)
})

t.test('CHAT_SERVER_PUBLIC_URL is given as it is set, without a trailing slash, and a bad one is refused at start', async (t) => {
  const stack = await startStack(t, { env: { CHAT_SERVER_PUBLIC_URL: 'https://chat.example.com/support/' } })
  const config = (await (await fetch(`${stack.subscribers[0]!.http}/agent/config`)).json()) as { chatServer: string }
  t.equal(config.chatServer, 'https://chat.example.com/support')
  for (const bad of ['chat.example.com', 'ws://chat.example.com', 'https://chat.example.com/?x=1', 'https://']) {
    t.throws(() => loadConfig({ CHAT_SERVER_PUBLIC_URL: bad }), ConfigError, `${bad} is refused`)
  }
})

t.test('a console opened without ?chatServer= claims and chats with ChatServer on a port other than 9000', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const sub = stack.subscribers[0]!
  const browser = await launchChromium(t)
  const newPage = async () => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    context.setDefaultTimeout(10_000)
    return context.newPage()
  }
  const visitor = await newPage()
  await visitor.goto(`${chat.http}/`)
  await visitor.getByLabel('Name').fill('Nika')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  // Only the Subscriber's address, as printed at start.
  const agent = await newPage()
  const chatSockets: string[] = []
  agent.on('websocket', (ws) => chatSockets.push(ws.url()))
  await agent.goto(`${sub.http}/`)
  await agent.getByLabel('Agent name').fill('Vika')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByRole('button', { name: 'Claim Nika' }).click()
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  t.ok(
    chatSockets.some((url) => url.startsWith(`${chat.ws}/chat/`)),
    'the console opened its chat socket on the ChatServer Subscriber named',
  )

  await agent.getByLabel('Message').fill('Hello from another port')
  await agent.getByRole('button', { name: 'Send' }).click()
  await visitor.getByText('Hello from another port').waitFor()
  await visitor.getByLabel('Message').fill('Got it')
  await visitor.getByLabel('Message').press('Enter')
  await agent.getByRole('list', { name: 'Conversation with Nika' }).getByText('Got it').waitFor()
})

t.test('?chatServer= still wins over what Subscriber says', async (t) => {
  // Subscriber points at a ChatServer that is not there; the query parameter names the real one.
  const stack = await startStack(t, { env: { CHAT_SERVER_PUBLIC_URL: 'http://127.0.0.1:9' } })
  const chat = stack.chatServers[0]!
  const visitorIds = await stack.waitingVisitor('Dodo')
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  context.setDefaultTimeout(10_000)
  const agent = await context.newPage()
  await agent.goto(`${stack.subscribers[0]!.http}/?chatServer=${encodeURIComponent(chat.http)}`)
  await agent.getByLabel('Agent name').fill('Vika')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByRole('button', { name: 'Claim Dodo' }).click()
  const joined = await visitorIds.socket.nextOfType('SupportJoinedUser')
  t.equal(joined.json.args.supportUserName, 'Vika', 'the console joined the chat on the ChatServer the query named')
})
