import t, { type Test } from 'tap'
import type { Browser, Locator, Page } from 'playwright-core'
import { UserMessages } from '@switchboard/protocol'
import { launchChromium, screenshot, startStack, type RunningApp, type Stack } from '@switchboard/testing'

/*
 * The agent workflow (docs/agent-workflow.md) as people meet it, in headless
 * Chromium: the console's Team card (presence, status, seats), transfers
 * between consoles and back to the queue, the seat limit, and the visitor
 * page's availability and queue-position lines.
 */

// Two seats make the limit reachable with few visitors; a short grace period makes a closed console go offline quickly.
// Several consoles in one browser, one after another: about 45 s on an idle 2-core machine, close to the suite's 60 s per file.
t.setTimeout(180_000)

const ENV = {
  AGENT_AUTH: 'on',
  MAX_CHATS_PER_AGENT: '2',
  AGENT_OFFLINE_AFTER_SECONDS: '1',
  // A second Subscriber listens on a port the default allowlist does not know; its console must still reach ChatServer.
  ALLOWED_ORIGINS: '*',
}

interface Browsing {
  stack: Stack
  browser: Browser
  /** A page in its own browser context (its own sessionStorage), closed at teardown. */
  newPage(width?: number): Promise<Page>
  /** An agent console signed in with a token, on the given Subscriber, showing its Team card. */
  agent(name: string, on?: RunningApp): Promise<Page>
  /** A visitor page that has started a chat and is waiting. */
  visitor(name: string): Promise<Page>
}

async function setUp(t: Test, subscribers = 1): Promise<Browsing> {
  const stack = await startStack(t, { subscribers, env: ENV })
  const chat = stack.chatServers[0]!
  const browser = await launchChromium(t)
  const newPage = async (width = 1100) => {
    const context = await browser.newContext({ viewport: { width, height: 900 } })
    t.teardown(() => context.close())
    // Well under tap's per-file timeout, so a missing element fails the step that waited for it.
    context.setDefaultTimeout(10_000)
    return context.newPage()
  }
  return {
    stack,
    browser,
    newPage,
    async agent(name, on = stack.subscribers[0]!) {
      const page = await newPage()
      const token = await stack.agentToken(name)
      await page.goto(`${on.http}/?chatServer=${encodeURIComponent(chat.http)}&token=${token}`)
      await page.getByText(`Signed in as ${name}`).waitFor()
      await page.getByRole('region', { name: 'Team' }).waitFor()
      return page
    },
    async visitor(name) {
      const page = await newPage(390)
      await page.goto(`${chat.http}/`)
      await page.getByLabel('Name').fill(name)
      await page.getByRole('button', { name: 'Start chat' }).click()
      await page.getByText('Waiting for an agent…').waitFor()
      return page
    },
  }
}

/** The Team card's entry whose text matches, e.g. /Vika away · 0 chats/. */
const teamEntry = (page: Page, text: RegExp): Locator =>
  page.getByRole('list', { name: 'Agents online' }).getByRole('listitem').filter({ hasText: text })
const teamTexts = (page: Page): Promise<string[]> => page.getByRole('list', { name: 'Agents online' }).getByRole('listitem').allTextContents()
const seats = (page: Page, text: string): Locator => page.locator('.seats', { hasText: text })
const position = (page: Page, text: RegExp): Locator => page.locator('.position', { hasText: text })
const chatPanel = (page: Page, username: string): Locator => page.getByRole('tabpanel', { name: `Chat with ${username}` })
const conversation = (page: Page, label: string): Promise<string[]> =>
  page.getByRole('list', { name: label }).locator('.msg__body').allTextContents()

async function say(page: Page, panel: Locator | Page, text: string): Promise<void> {
  const input = panel.getByLabel(/^(Message|Type a message)/)
  await input.fill(text)
  await input.press('Enter')
  await page.getByText(text).first().waitFor()
}

t.test('two consoles on two Subscribers see the team; one agent going away shows on the other', async (t) => {
  const { agent, stack } = await setUp(t, 2)
  const vika = await agent('Vika', stack.subscribers[0])
  const kiku = await agent('Kiku', stack.subscribers[1])

  // Each console lists both agents, itself marked, sorted by name.
  await teamEntry(vika, /Kiku online · 0 chats/).waitFor()
  await teamEntry(kiku, /Vika online · 0 chats/).waitFor()
  t.same(await teamTexts(vika), ['Kiku online · 0 chats', 'Vika (you) online · 0 chats'], "Vika's Team card")
  t.same(await teamTexts(kiku), ['Kiku (you) online · 0 chats', 'Vika online · 0 chats'], "Kiku's Team card")
  await seats(vika, 'Seats: 0 of 2 in use').waitFor()
  await seats(kiku, 'Seats: 0 of 2 in use').waitFor()
  t.equal(await vika.getByLabel('Your status').inputValue(), 'online', 'a new agent starts online')

  // Vika steps away: Kiku's console (on the other Subscriber) says so.
  await vika.getByLabel('Your status').selectOption('away')
  await teamEntry(kiku, /Vika away · 0 chats/).waitFor()
  await teamEntry(vika, /Vika \(you\) away/).waitFor()
  t.equal(await vika.getByLabel('Your status').inputValue(), 'away', "Vika's own select shows away")
  t.same(await teamTexts(kiku), ['Kiku (you) online · 0 chats', 'Vika away · 0 chats'], 'Kiku sees Vika away')
  t.equal(await kiku.locator('[data-agent-id="agent-vika"] .presence--away').count(), 1, 'the presence dot is the away one')
  await screenshot(kiku, 'console-team.png')

  // And back online.
  await vika.getByLabel('Your status').selectOption('online')
  await teamEntry(kiku, /Vika online · 0 chats/).waitFor()
  t.pass('Kiku sees Vika online again')

  // Vika closes her console: after the grace period Kiku's list no longer has her.
  await vika.context().close()
  await teamEntry(kiku, /Vika/).waitFor({ state: 'detached' })
  t.same(await teamTexts(kiku), ['Kiku (you) online · 0 chats'], 'only Kiku is left')
})

t.test('the visitor page shows who is online before starting, then the place in the queue', async (t) => {
  const { agent, newPage, visitor, stack } = await setUp(t)
  const chatServer = stack.chatServers[0]!

  // No agent yet: the page says so, and the form still works.
  const early = await newPage(390)
  await early.goto(`${chatServer.http}/`)
  await early.getByText(/^No agents are online right now\./).waitFor()
  t.ok(await early.getByRole('button', { name: 'Start chat' }).isEnabled(), 'a visitor can start a chat with no one online')

  const vika = await agent('Vika')
  const kiku = await agent('Kiku')
  await teamEntry(vika, /Kiku online/).waitFor()

  const before = await newPage(390)
  await before.goto(`${chatServer.http}/`)
  await before.getByText('2 agents online · no one waiting', { exact: true }).waitFor()
  t.pass('two agents online, no one waiting')

  const nika = await visitor('Nika')
  await position(nika, /^You are next$/).waitFor()
  const dodo = await visitor('Dodo')
  await position(dodo, /^You are number 2$/).waitFor()
  t.equal(await nika.locator('.position').textContent(), 'You are next', 'the first visitor is still next')
  await screenshot(dodo, 'visitor-position.png')

  // Agents see them first come first.
  await kiku.getByRole('button', { name: 'Claim Dodo' }).waitFor()
  t.same(
    await kiku.getByRole('list', { name: 'Waiting visitors' }).locator('.who').allTextContents(),
    ['Nika', 'Dodo'],
    'the queue is in arrival order',
  )

  // Nika is claimed: Dodo moves up; Nika's position line goes away.
  await vika.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await position(dodo, /^You are next/).waitFor()
  t.notOk(await nika.locator('.position').isVisible(), 'no position line once an agent has joined')

  // A newcomer's availability line counts who is waiting now.
  const later = await newPage(390)
  await later.goto(`${chatServer.http}/`)
  await later.getByText(/^2 agents online · 1 waiting/).waitFor()
  t.pass('the availability line counts the waiting visitor')
})

t.test('a claimed chat is transferred to another agent with its history', async (t) => {
  const { agent, visitor, stack } = await setUp(t, 2)
  const vika = await agent('Vika', stack.subscribers[0])
  const kiku = await agent('Kiku', stack.subscribers[1])
  await teamEntry(vika, /Kiku online/).waitFor()
  const nika = await visitor('Nika')

  await vika.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await seats(vika, 'Seats: 1 of 2 in use').waitFor()
  await teamEntry(kiku, /Vika online · 1 chat$/).waitFor()
  t.pass("Vika's seat is counted on both consoles")

  await say(nika, nika, 'My parcel never arrived')
  await chatPanel(vika, 'Nika').getByText('My parcel never arrived').waitFor()
  await say(vika, chatPanel(vika, 'Nika'), 'Let me find someone who can help')
  await nika.getByText('Let me find someone who can help').waitFor()

  // Vika hands Nika to Kiku.
  const panel = chatPanel(vika, 'Nika')
  await panel.getByLabel('Transfer Nika to').selectOption({ label: 'Kiku' })
  await panel.getByRole('button', { name: 'Transfer' }).click()

  // Kiku's console opens the chat, with what was said before.
  await kiku.getByText('Vika handed you the chat with Nika.').waitFor()
  await kiku.getByRole('tab', { name: 'Nika', exact: true }).waitFor()
  await chatPanel(kiku, 'Nika').getByText('Let me find someone who can help').waitFor()
  t.same(
    await conversation(kiku, 'Conversation with Nika'),
    ['My parcel never arrived', 'Let me find someone who can help'],
    'Kiku gets the history',
  )
  await seats(kiku, 'Seats: 1 of 2 in use').waitFor()

  // Vika's console lets go of it.
  await vika.getByText('Nika was handed to Kiku.').waitFor()
  await vika.getByRole('tab', { name: 'Nika', exact: true }).waitFor({ state: 'detached' })
  await seats(vika, 'Seats: 0 of 2 in use').waitFor()
  t.equal(await chatPanel(vika, 'Nika').count(), 0, "Vika's chat panel is gone")

  // The visitor now talks to Kiku, both ways.
  await nika.getByRole('heading', { name: 'Chatting with Kiku' }).waitFor()
  await say(kiku, chatPanel(kiku, 'Nika'), 'Hi Nika, Kiku here')
  await nika.getByRole('list', { name: 'Conversation' }).getByText('Hi Nika, Kiku here').waitFor()
  await say(nika, nika, 'Thanks Kiku')
  await chatPanel(kiku, 'Nika').getByText('Thanks Kiku').waitFor()
  const expected = ['My parcel never arrived', 'Let me find someone who can help', 'Hi Nika, Kiku here', 'Thanks Kiku']
  t.same(await conversation(nika, 'Conversation'), expected, 'the visitor sees the whole conversation once, in order')
  t.same(await conversation(kiku, 'Conversation with Nika'), expected, 'Kiku sees the same')
})

t.test('a chat put back in the queue: the visitor waits again, first in line', async (t) => {
  const { agent, visitor } = await setUp(t)
  const vika = await agent('Vika')
  const kiku = await agent('Kiku')
  const nika = await visitor('Nika')
  await vika.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await say(nika, nika, 'Can someone else help?')
  await chatPanel(vika, 'Nika').getByText('Can someone else help?').waitFor()

  // Someone arrives while Nika is being served.
  const dodo = await visitor('Dodo')
  await position(dodo, /^You are next/).waitFor()

  const panel = chatPanel(vika, 'Nika')
  await panel.getByLabel('Transfer Nika to').selectOption({ label: 'Back to the queue' })
  await panel.getByRole('button', { name: 'Transfer' }).click()

  // Nika waits again, at the head of the queue; Dodo is second now.
  await nika.getByText('Waiting for an agent…').waitFor()
  await position(nika, /^You are next/).waitFor()
  await position(dodo, /^You are number 2/).waitFor()
  t.equal(await nika.getByRole('heading', { name: 'Chat with support' }).count(), 1, 'the title no longer names an agent')
  t.notOk(await nika.getByLabel('Type a message').isVisible(), 'no composer while waiting')

  for (const [name, page] of [['Vika', vika], ['Kiku', kiku]] as const) {
    const queue = page.getByRole('list', { name: 'Waiting visitors' })
    await queue.locator('li:first-child', { hasText: 'Nika' }).waitFor()
    t.same(await queue.locator('.who').allTextContents(), ['Nika', 'Dodo'], `Nika is first in ${name}'s queue`)
  }
  await vika.getByText('Nika is back in the queue.').waitFor()
  await vika.getByRole('tab', { name: 'Nika', exact: true }).waitFor({ state: 'detached' })
  await seats(vika, 'Seats: 0 of 2 in use').waitFor()

  // Kiku takes her, with the history.
  await kiku.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Kiku' }).waitFor()
  await chatPanel(kiku, 'Nika').getByText('Can someone else help?').waitFor()
  await position(dodo, /^You are next/).waitFor()
  t.pass('Kiku claimed Nika from the queue and sees what she wrote before')
})

t.test('an agent with every seat taken cannot claim another visitor', async (t) => {
  const { agent, visitor } = await setUp(t)
  const vika = await agent('Vika')
  const nika = await visitor('Nika')
  const dodo = await visitor('Dodo')
  const zaza = await visitor('Zaza')

  await vika.getByRole('button', { name: 'Claim Nika' }).click()
  await nika.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await vika.getByRole('button', { name: 'Claim Dodo' }).click()
  await dodo.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  await seats(vika, 'Seats: 2 of 2 in use').waitFor()

  await vika.getByRole('button', { name: 'Claim Zaza' }).click()
  await vika.getByText(UserMessages.AGENT_AT_CAPACITY).first().waitFor()
  await vika.getByRole('tab', { name: 'Zaza', exact: true }).waitFor({ state: 'detached' })
  t.same(await vika.getByRole('tab').allTextContents(), ['Nika', 'Dodo'], 'no tab was opened for Zaza')
  t.equal(await chatPanel(vika, 'Zaza').count(), 0, 'no chat panel for Zaza')

  // Zaza is still waiting, still in the queue, and nothing changed for Vika.
  t.ok(await vika.getByRole('button', { name: 'Claim Zaza' }).isVisible(), 'Zaza is still in the queue')
  t.ok(await zaza.getByText('Waiting for an agent…').isVisible(), 'Zaza is still waiting')
  await position(zaza, /^You are next/).waitFor()
  t.equal(await vika.locator('.seats').textContent(), 'Seats: 2 of 2 in use', 'the seats line is unchanged')
})
