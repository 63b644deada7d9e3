import t, { type Test } from 'tap'
import { launchChromium, screenshot, startStack } from '@switchboard/testing'

/*
 * The visitor writes while waiting in the queue (issue 15, item 14), in
 * headless Chromium: the field is there before an agent joins, what is
 * written is stored and survives a reload, and the agent who claims reads it.
 * The frames are in waiting-messages.test.ts.
 */

async function browsing(t: Test) {
  const browser = await launchChromium(t)
  return {
    async newPage() {
      const context = await browser.newContext()
      t.teardown(() => context.close())
      // Well under tap's per-file timeout, so a missing element fails the step that waited for it.
      context.setDefaultTimeout(10_000)
      return context.newPage()
    },
  }
}

t.test('the visitor can write while waiting in the queue; the agent who claims reads it', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const { newPage } = await browsing(t)
  const visitor = await newPage()
  await visitor.goto(`${chat.http}/`)
  await visitor.getByLabel('Name').fill('Nika')
  await visitor.getByRole('button', { name: 'Start chat' }).click()
  await visitor.getByText('Waiting for an agent…').waitFor()

  // No agent yet: the field is there, and what is written is stored and shown.
  await visitor.getByText('You can write your question now').waitFor()
  await visitor.getByLabel('Message').fill('My card is blocked')
  await visitor.getByLabel('Message').press('Enter')
  const mine = visitor.getByRole('list', { name: 'Conversation' }).getByText('My card is blocked')
  await mine.waitFor()
  await visitor.getByRole('img', { name: 'Sent' }).waitFor()
  t.equal(await visitor.getByLabel('Message').inputValue(), '', 'the field is cleared once it went out')

  // A reload while waiting keeps it, and the visitor is still waiting.
  await visitor.reload()
  await visitor.getByText('Waiting for an agent…').waitFor()
  await mine.waitFor()
  await visitor.getByLabel('Message').fill('It was fine yesterday')
  await visitor.getByRole('button', { name: 'Send' }).click()
  await visitor.getByRole('list', { name: 'Conversation' }).getByText('It was fine yesterday').waitFor()
  await screenshot(visitor, 'visitor-waiting.png')

  const agent = await newPage()
  await agent.goto(`${stack.subscribers[0]!.http}/?chatServer=${encodeURIComponent(chat.http)}`)
  await agent.getByLabel('Agent name').fill('Vika')
  await agent.getByRole('button', { name: 'Start' }).click()
  await agent.getByRole('button', { name: 'Claim Nika' }).click()
  const list = agent.getByRole('list', { name: 'Conversation with Nika' })
  await list.getByText('It was fine yesterday').waitFor()
  t.same(await list.locator('.msg__body').allTextContents(), ['My card is blocked', 'It was fine yesterday'], 'the agent reads both, in order')
  await visitor.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  t.notOk(await visitor.getByText('You can write your question now').isVisible(), 'the waiting hint is gone once an agent joined')
  // The agent's console marks them read: the visitor sees it.
  await visitor.getByRole('img', { name: 'Read' }).nth(1).waitFor()

  await agent.getByLabel('Message').fill('Let me look')
  await agent.getByRole('button', { name: 'Send' }).click()
  await visitor.getByText('Let me look').waitFor()
  t.same(
    await visitor.getByRole('list', { name: 'Conversation' }).locator('.msg__body').allTextContents(),
    ['My card is blocked', 'It was fine yesterday', 'Let me look'],
    'one conversation, in order, on the visitor page',
  )
})
