import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { launchChromium, startStack } from '@switchboard/testing'

// README's pictures are refreshed with SCREENSHOTS_DIR=docs/screenshots npm test; by default they go to .tap/.
const root = fileURLToPath(new URL('../../../', import.meta.url))
const screenshots = join(root, process.env.SCREENSHOTS_DIR ?? '.tap/screenshots', '/')
const XSS = '<img src=x onerror=alert(1)>'

/** Texts of the messages in a conversation list, in order. */
async function conversation(page: Page, label: string | RegExp): Promise<string[]> {
  return page.getByRole('list', { name: label }).locator('.msg__body').allTextContents()
}

t.test('visitor page and agent console: the whole seed flow in Chromium', async (t) => {
  // The secure default: agents sign in with tokens.
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const chat = stack.chatServers[0]!
  const sub = stack.subscribers[0]!
  const browser = await launchChromium(t)
  const consoleUrl = (token: string) => `${sub.http}/?chatServer=${encodeURIComponent(chat.http)}&token=${token}`

  const dialogs: string[] = []
  const newPage = async (width = 1100) => {
    const context = await browser.newContext({ viewport: { width, height: 800 } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    return page
  }

  // Two agents open the console with their token links, as printed at start.
  const agent = await newPage()
  await agent.goto(consoleUrl(await stack.agentToken('Vika')))
  await agent.getByText('Signed in as Vika').waitFor()
  t.notMatch(agent.url(), /token=/, 'the token is taken out of the address bar')
  const agent2 = await newPage()
  await agent2.goto(consoleUrl(await stack.agentToken('Kiku')))
  await agent2.getByText('Signed in as Kiku').waitFor()
  await agent.getByText('No one is waiting.').waitFor()

  // A visitor starts a chat and waits.
  const visitor = await newPage(390) // a phone-width screen
  await visitor.goto(`${chat.http}/`)
  await visitor.getByLabel('Name').fill('Nika')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  // Both agents see the visitor, with the time waiting.
  await agent.getByRole('button', { name: 'Claim Nika' }).waitFor()
  await agent2.getByRole('button', { name: 'Claim Nika' }).waitFor()
  t.match(await agent.getByRole('list', { name: 'Waiting visitors' }).innerText(), /Nika\s+waiting \d+:\d\d/)
  await mkdir(screenshots, { recursive: true })
  await agent.screenshot({ path: `${screenshots}agent-queue.png` })

  // Vika claims; Kiku sees the visitor disappear.
  await agent.getByRole('button', { name: 'Claim Nika' }).click()
  await agent2.getByRole('button', { name: 'Claim Nika' }).waitFor({ state: 'detached' })
  await agent2.getByText('No one is waiting.').waitFor()
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()

  // Messages both ways; the hostile one renders as text.
  await visitor.getByLabel('Message').fill(XSS)
  await visitor.getByLabel('Message').press('Enter')
  await agent.getByRole('list', { name: 'Conversation with Nika' }).getByText(XSS).waitFor()
  await visitor.getByRole('list', { name: 'Conversation' }).getByText(XSS).waitFor()
  await agent.getByLabel('Message').fill('Hello Nika, how can I help?')
  await agent.getByRole('button', { name: 'Send' }).click()
  await visitor.getByText('Hello Nika, how can I help?').waitFor()

  const expected = [XSS, 'Hello Nika, how can I help?']
  t.same(await conversation(visitor, 'Conversation'), expected, 'the visitor sees each message once, in order')
  t.same(await conversation(agent, 'Conversation with Nika'), expected, 'the agent sees the same')
  t.equal(await visitor.locator('.messages img').count(), 0, 'no element was injected on the visitor page')
  t.equal(await agent.locator('.messages img').count(), 0, 'no element was injected on the console')
  t.match(await visitor.getByRole('list', { name: 'Conversation' }).innerText(), /You\s+\d{1,2}:\d\d/, 'messages say who and when')

  // Both refresh: the conversation is still there.
  await visitor.reload()
  await agent.reload()
  await visitor.getByText('Hello Nika, how can I help?').waitFor()
  await agent.getByRole('list', { name: 'Conversation with Nika' }).getByText('Hello Nika, how can I help?').waitFor()
  t.same(await conversation(visitor, 'Conversation'), expected, 'history after the visitor refreshed')
  t.same(await conversation(agent, 'Conversation with Nika'), expected, 'history after the agent refreshed')

  // And the chat goes on after the refresh.
  await visitor.getByLabel('Message').fill('Thanks!')
  await visitor.getByRole('button', { name: 'Send' }).click()
  await agent.getByRole('list', { name: 'Conversation with Nika' }).getByText('Thanks!').waitFor()

  await visitor.screenshot({ path: `${screenshots}visitor.png` })
  await agent.screenshot({ path: `${screenshots}agent-console.png` })
  t.same(dialogs, [], 'no script ran from message content')
})

t.test('an expired chat is marked on both pages, and the visitor can start again', async (t) => {
  // AGENT_AUTH=off: the console asks for a name instead of a token.
  const stack = await startStack(t, { env: { CHAT_TTL_SECONDS: '1.5' }, sweepIntervalMs: 50 })
  const chat = stack.chatServers[0]!
  const sub = stack.subscribers[0]!
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const visitor = await context.newPage()
  const agentContext = await browser.newContext()
  t.teardown(() => agentContext.close())
  const agent = await agentContext.newPage()

  await visitor.goto(`${chat.http}/`)
  await visitor.getByLabel('Name').fill('Dodo')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  await agent.goto(`${sub.http}/?chatServer=${encodeURIComponent(chat.http)}`)
  await agent.getByLabel('Agent name').fill('Vika')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByRole('button', { name: 'Claim Dodo' }).click()
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()

  // No message for CHAT_TTL_SECONDS: the chat expires on both sides.
  await visitor.getByText('This chat has expired.').waitFor({ timeout: 10_000 })
  await agent.getByRole('tab', { name: 'Dodo (expired)' }).waitFor({ timeout: 10_000 })
  t.ok(await agent.getByLabel('Message').isDisabled(), 'the agent cannot write into an expired chat')

  await visitor.getByRole('button', { name: 'Start a new chat' }).click()
  await visitor.getByLabel('Name').fill('Dodo')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()
  await agent.getByRole('button', { name: 'Claim Dodo' }).waitFor()
  t.equal(await agent.getByRole('button', { name: 'Claim Dodo' }).count(), 1, 'the new chat reached the queue, once')
})

t.test('the visitor page says when the connection is down and recovers by itself', async (t) => {
  const stack = await startStack(t)
  const first = stack.chatServers[0]!
  const port = Number(new URL(first.http).port)
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const visitor = await context.newPage()
  await visitor.goto(`${first.http}/`)
  await visitor.getByLabel('Name').fill('Zaza')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  // The agent side, over raw frames.
  const visitorIds = await visitor.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.visitor') ?? '{}').visitor)
  const support = await stack.socket(`${first.ws}/chat/${visitorIds.chatId}`, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitorIds.userId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  support.send({ type: 'ChatMessage', args: { userId: visitorIds.userId, supportId, content: 'before the outage', from: 'Support' } })
  await visitor.getByText('before the outage').waitFor()

  // ChatServer goes away: the page says so while it is down.
  await first.app.close()
  await visitor.getByText(/Connection lost — reconnecting/).waitFor()

  // A new ChatServer on the same port: the page reconnects, re-joins, and the conversation goes on.
  const { buildApp } = await import('@switchboard/chat-server')
  const second = await buildApp(stack.config)
  t.teardown(() => second.close())
  await second.listen({ port, host: '127.0.0.1' })
  await visitor.getByText(/Connection lost/).waitFor({ state: 'hidden', timeout: 15_000 })
  t.same(await conversation(visitor, 'Conversation'), ['before the outage'], 'the history is shown once after the re-join')

  const agentAgain = await stack.socket(`ws://127.0.0.1:${port}/chat/${visitorIds.chatId}`, 'pong:support')
  agentAgain.send({ type: 'Join', args: { userId: visitorIds.userId, supportId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
  await agentAgain.nextOfType('ChatHistory')
  await visitor.getByLabel('Message').fill('after the outage')
  await visitor.getByLabel('Message').press('Enter')
  const echoed = await agentAgain.nextOfType('ChatMessage')
  t.equal(echoed.json.args.content, 'after the outage', 'the visitor can write again')
})

t.test('without a token link, the console asks for a token and refuses a bad one', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const sub = stack.subscribers[0]!
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const agent = await context.newPage()
  await agent.goto(`${sub.http}/`)
  await agent.getByLabel('Agent token').fill('not-a-token')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByText('That token is not valid or has expired.').waitFor()
  const expired = await stack.agentToken('Vika', { ttlSeconds: -60 })
  await agent.getByLabel('Agent token').fill(expired)
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByText('That token is not valid or has expired.').waitFor()
  t.equal(await agent.getByText(/Signed in as/).count(), 0, 'no console for a bad token')

  await agent.getByLabel('Agent token').fill(await stack.agentToken('Vika'))
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByText('Signed in as Vika').waitFor()
  await agent.reload()
  await agent.getByText('Signed in as Vika').waitFor()
  t.equal(await agent.getByLabel('Agent token').count(), 0, 'the token is kept across a refresh')
})

t.test('protocol v2 in the pages: typing, read ticks, unread badges, ending a chat', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const chat = stack.chatServers[0]!
  const sub = stack.subscribers[0]!
  const browser = await launchChromium(t)
  const page = async () => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    return context.newPage()
  }
  const startVisitor = async (name: string) => {
    const visitor = await page()
    await visitor.goto(`${chat.http}/`)
    await visitor.getByLabel('Name').fill(name)
    await visitor.getByRole('button', { name: 'Start chat' }).click()
    await visitor.getByText('Waiting for an agent…').waitFor()
    return visitor
  }
  const nika = await startVisitor('Nika')
  const dodo = await startVisitor('Dodo')
  const agent = await page()
  await agent.goto(`${sub.http}/?chatServer=${encodeURIComponent(chat.http)}&token=${await stack.agentToken('Vika')}`)
  await agent.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await agent.getByRole('button', { name: 'Claim Dodo' }).click()
  await dodo.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()

  // Typing shows on the other side.
  await agent.getByRole('tab', { name: 'Nika' }).click()
  await agent.getByRole('tabpanel', { name: 'Chat with Nika' }).getByLabel('Message').pressSequentially('Hel')
  await nika.getByText('Vika is typing…').waitFor()

  // Nika writes; Vika has the chat open, so it is read and Nika's tick says so.
  await nika.getByLabel('Message').fill('Is anyone there?')
  await nika.getByLabel('Message').press('Enter')
  await agent.getByRole('tabpanel', { name: 'Chat with Nika' }).getByText('Is anyone there?').waitFor()
  await nika.locator('.msg--mine .ticks[aria-label="Read"]').waitFor()
  t.equal(await nika.locator('.msg--mine .ticks').getAttribute('aria-label'), 'Read', 'the visitor sees their message read')

  // Dodo writes into the chat Vika is not looking at: an unread badge, gone once she opens it.
  await dodo.getByLabel('Message').fill('Hello?')
  await dodo.getByLabel('Message').press('Enter')
  await agent.getByRole('tab', { name: /Dodo.*1 unread/ }).waitFor()
  await dodo.locator('.msg--mine .ticks[aria-label="Delivered"]').waitFor()
  await agent.getByRole('tab', { name: /Dodo/ }).click()
  await agent.getByRole('tab', { name: /1 unread/ }).waitFor({ state: 'detached' })
  await dodo.locator('.msg--mine .ticks[aria-label="Read"]').waitFor()
  t.equal(await agent.locator('.badge').count(), 0, 'no unread badge once read')

  // Nika ends the chat: both pages say so; the agent can no longer write into it.
  await nika.getByRole('button', { name: 'End chat' }).click()
  await nika.getByText('You ended this chat.').waitFor()
  await agent.getByRole('tab', { name: 'Nika (ended)' }).click()
  await agent.getByText('Nika ended this chat.').waitFor()
  t.ok(await agent.getByRole('tabpanel', { name: 'Chat with Nika' }).getByLabel('Message').isDisabled(), 'the ended chat is read-only')
  await nika.getByRole('button', { name: 'Start a new chat' }).waitFor()

  // After a refresh the ticks are still right.
  await dodo.reload()
  await dodo.locator('.msg--mine .ticks[aria-label="Read"]').waitFor()
  t.equal(await dodo.locator('.msg--mine .ticks').getAttribute('aria-label'), 'Read', 'read state survives a refresh')
})
