import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UserMessages } from '@switchboard/protocol'
import { conversation, launchChromium, screenshot, visitorChatting, redisReady, startRedis, startStack } from '@switchboard/testing'

/*
 * The visitor page through a Redis outage, in Chromium: plain words, what
 * was typed stays visible as pending (with a retry) until it is stored, in
 * the order typed, and the banner goes once things work again.
 */

t.test('Redis down mid-chat: plain words, pending bubbles in the order typed with a retry, and the banner goes on recovery', async (t) => {
  const file = t
  const dir = await mkdtemp(join(tmpdir(), 'sb-ui-outage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const stack = await startStack(t, { redis: { aof: true, dir } })
  const chat = stack.chatServers[0]!
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const { agent } = await visitorChatting(page, chat, t)

  await stack.redis.stop()
  await page.getByLabel('Message').fill('first, during the outage')
  await page.getByLabel('Message').press('Enter')
  const banner = page.getByText(UserMessages.STORE_UNAVAILABLE)
  await banner.waitFor()
  t.pass(`the banner says "${UserMessages.STORE_UNAVAILABLE}"`)
  t.equal(await page.getByText(/Storage is unavailable|clientMessageId/).count(), 0, 'no developer words on the page')
  const first = page.locator('.msg--pending', { hasText: 'first, during the outage' })
  await first.getByText('Not sent yet').waitFor()
  t.ok(await first.getByRole('button', { name: 'Retry sending' }).isVisible(), 'with a retry')
  t.equal(await page.getByLabel('Message').inputValue(), '', 'the composer is cleared: the message stays visible as pending')

  await page.getByLabel('Message').fill('second, typed later')
  await page.getByLabel('Message').press('Enter')
  await page.locator('.msg--pending', { hasText: 'second, typed later' }).waitFor()
  t.same(await conversation(page, 'Conversation'), ['first, during the outage', 'second, typed later'], 'both shown, in the order typed')
  await screenshot(page, 'visitor-outage.png')

  const again = await startRedis({ port: stack.redis.port, aof: true, dir })
  file.teardown(() => again.stop())
  await redisReady(chat.app)
  // The client retries by itself after its backoff; the Retry button only makes it sooner.
  const stored: string[] = []
  while (stored.length < 2) {
    const m = await agent.next((f) => f.json?.type === 'ChatMessage' && f.json.args.from === 'User', 20_000)
    stored.push(m.json.args.content)
  }
  t.same(stored, ['first, during the outage', 'second, typed later'], 'stored and delivered in the order typed')
  await banner.waitFor({ state: 'hidden' })
  t.pass('the banner is gone once the messages are stored')
  await page.locator('.msg--pending').first().waitFor({ state: 'detached' })
  t.same(await conversation(page, 'Conversation'), ['first, during the outage', 'second, typed later'], 'each shown once, as stored')
})

t.test('Redis down before the chat starts: the start form says to try again, in plain words', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${chat.http}/`)
  await stack.redis.stop()
  await page.getByLabel('Name').fill('Nika')
  await page.getByRole('button', { name: 'Start chat' }).click()
  await page.getByRole('alert').getByText('Could not start the chat right now. Please try again in a moment.').waitFor()
  t.equal(await page.getByText(/Storage is unavailable|clientMessageId/).count(), 0, 'no developer words on the page')
  t.ok(await page.getByRole('button', { name: 'Start chat' }).isEnabled(), 'and the visitor can try again')
})
