import t, { type Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { launchChromium, startStack, type Stack } from '@switchboard/testing'

/*
 * What a visitor or an agent trips over on the pages (issue 15, item 14), in
 * headless Chromium: a blank name is explained, an ended chat no longer
 * reads as ongoing, and delivered and read ticks differ in more than colour.
 * Writing while waiting: ui-waiting.test.ts.
 */

async function browsing(t: Test, stack: Stack): Promise<{ browser: Browser; newPage(): Promise<Page> }> {
  const browser = await launchChromium(t)
  return {
    browser,
    async newPage() {
      const context = await browser.newContext()
      t.teardown(() => context.close())
      // Well under tap's per-file timeout, so a missing element fails the step that waited for it.
      context.setDefaultTimeout(10_000)
      return context.newPage()
    },
  }
}

t.test('an empty or blank name says what is wrong, and starts nothing', async (t) => {
  const stack = await startStack(t)
  const { newPage } = await browsing(t, stack)
  const visitor = await newPage()
  const joins: string[] = []
  visitor.on('request', (req) => {
    if (req.url().includes('/user/join/')) joins.push(req.url())
  })
  await visitor.goto(`${stack.chatServers[0]!.http}/`)
  for (const blank of ['', '   ']) {
    await visitor.getByLabel('Name').fill(blank)
    await visitor.getByRole('button', { name: 'Start chat' }).click()
    await visitor.getByRole('alert').filter({ hasText: 'Please enter your name' }).waitFor()
    t.equal(await visitor.getByLabel('Name').getAttribute('aria-invalid'), 'true', `${JSON.stringify(blank)}: the field is marked invalid`)
    // Typing clears the message; the next blank attempt shows it again.
    await visitor.getByLabel('Name').fill('N')
    await visitor.getByRole('alert').filter({ hasText: 'Please enter your name' }).waitFor({ state: 'hidden' })
  }
  t.same(joins, [], 'no chat was started for a blank name')

  // The console's name form (AGENT_AUTH=off) says so too.
  const agent = await newPage()
  await agent.goto(`${stack.subscribers[0]!.http}/?chatServer=${encodeURIComponent(stack.chatServers[0]!.http)}`)
  await agent.getByLabel('Agent name').fill('  ')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByRole('alert').filter({ hasText: 'Please enter your name' }).waitFor()
  t.equal(await agent.getByText(/Signed in as/).count(), 0, 'no console for a blank name')
})

t.test('an ended chat: the visitor heading no longer says "Chatting with", and the console offers no Transfer', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const chat = stack.chatServers[0]!
  const { newPage } = await browsing(t, stack)
  const consoleFor = async (name: string) => {
    const page = await newPage()
    await page.goto(`${stack.subscribers[0]!.http}/?chatServer=${encodeURIComponent(chat.http)}&token=${await stack.agentToken(name)}`)
    await page.getByText(`Signed in as ${name}`).waitFor()
    return page
  }
  const agent = await consoleFor('Vika')
  // A second agent online, so Transfer has somewhere to go besides the queue.
  await consoleFor('Kiku')

  for (const [visitorName, endedBy] of [
    ['Nika', 'agent'],
    ['Dodo', 'visitor'],
  ] as const) {
    const visitor = await newPage()
    await visitor.goto(`${chat.http}/`)
    await visitor.getByLabel('Name').fill(visitorName)
    await visitor.getByRole('button', { name: 'Start chat' }).click()
    await visitor.getByText('Waiting for an agent…').waitFor()
    await agent.getByRole('button', { name: `Claim ${visitorName}` }).click()
    await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
    const panel = agent.getByRole('tabpanel', { name: `Chat with ${visitorName}` })
    const transfer = panel.getByRole('button', { name: 'Transfer' })
    await transfer.waitFor()
    t.ok(await transfer.isVisible(), `${visitorName}: Transfer is offered while the chat goes on`)

    if (endedBy === 'agent') await panel.getByRole('button', { name: 'End chat' }).click()
    else await visitor.getByRole('button', { name: 'End chat' }).click()
    await visitor.getByText(/ended this chat/).waitFor()
    await agent.getByRole('tab', { name: `${visitorName} (ended)` }).waitFor()

    t.equal(await visitor.getByRole('heading', { name: /Chatting with/ }).count(), 0, `${visitorName}: no "Chatting with" heading once ended by the ${endedBy}`)
    await visitor.getByRole('heading', { name: 'Chat ended' }).waitFor()
    await agent.getByRole('tab', { name: `${visitorName} (ended)` }).click()
    t.notOk(await transfer.isVisible(), `${visitorName}: no Transfer on a chat the ${endedBy} ended`)
    t.notOk(await agent.getByRole('combobox', { name: `Transfer ${visitorName} to` }).isVisible(), `${visitorName}: nor its choice of agents`)

    // After a reload the ended chat reads the same.
    await visitor.reload()
    await visitor.getByText(/ended this chat/).waitFor()
    t.equal(await visitor.getByRole('heading', { name: /Chatting with/ }).count(), 0, `${visitorName}: still not "Chatting with" after a reload`)
  }
})

t.test('delivered and read ticks differ in shape or words, not only in colour', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const { newPage } = await browsing(t, stack)
  const visitor = await newPage()
  await visitor.goto(`${chat.http}/`)
  await visitor.getByLabel('Name').fill('Nika')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  // The agent is a v2 socket, so the test says exactly when a message is delivered and when read.
  const ids = await visitor.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.visitor') ?? '{}').visitor)
  const agent = await stack.socket(`${chat.ws}/chat/${ids.chatId}`, 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: ids.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  await agent.nextOfType('SupportJoinedUser')
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()

  const ticksText = (label: string) => visitor.getByRole('img', { name: label }).innerText()
  for (const text of ['first', 'second']) {
    await visitor.getByLabel('Message').fill(text)
    await visitor.getByLabel('Message').press('Enter')
  }
  const first = (await agent.nextOfType('ChatMessage')).json.args.seq as number
  const second = (await agent.nextOfType('ChatMessage')).json.args.seq as number
  await visitor.getByRole('img', { name: 'Sent' }).nth(1).waitFor()
  agent.send({ type: 'Received', args: { seq: second } })
  await visitor.getByRole('img', { name: 'Delivered' }).nth(1).waitFor()
  agent.send({ type: 'Read', args: { seq: first } })
  await visitor.getByRole('img', { name: 'Read' }).waitFor()

  const [sent, delivered, read] = [await visitor.locator('.ticks--sent').count(), await ticksText('Delivered'), await ticksText('Read')]
  t.equal(sent, 0, 'both messages are past "sent"')
  t.not(read.replace(/\s+/g, ''), delivered.replace(/\s+/g, ''), `read (${JSON.stringify(read)}) and delivered (${JSON.stringify(delivered)}) look different without colour`)
  t.match(read, /Read/, 'read says so in words')
  t.equal(await visitor.getByRole('img', { name: 'Delivered' }).getAttribute('title'), 'Delivered', 'a hover says what the ticks mean')
})
