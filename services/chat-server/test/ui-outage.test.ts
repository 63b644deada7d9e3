import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { UserMessages } from '@switchboard/protocol'
import { TestSocket, launchChromium, redisReady, startRedis, startStack } from '@switchboard/testing'

/*
 * The visitor page through a Redis outage, in Chromium: plain words, what
 * was typed stays visible as pending (with a retry) until it is stored, in
 * the order typed, and the banner goes once things work again.
 */

/** Texts of the messages in a conversation list, in order (pending ones included). */
async function conversation(page: Page, label: string | RegExp): Promise<string[]> {
  return page.getByRole('list', { name: label }).locator('.msg__body').allTextContents()
}

/** A visitor on the page, claimed by an agent speaking raw frames; returns the agent's socket and ids. */
async function chatting(page: Page, chatServer: { http: string; ws: string }, t: { teardown(fn: () => unknown): void }) {
  await page.goto(`${chatServer.http}/`)
  await page.getByLabel('Name').fill('Zaza')
  await page.getByRole('button', { name: 'Start chat' }).click()
  await page.getByText('Waiting for an agent…').waitFor()
  const ids = await page.evaluate(() => JSON.parse(sessionStorage.getItem('switchboard.visitor') ?? '{}').visitor)
  const agent = await TestSocket.open(`${chatServer.ws}/chat/${ids.chatId}`, { pong: 'pong:support', protocols: ['switchboard.v2'] })
  t.teardown(() => agent.close())
  agent.send({ type: 'Join', args: { userId: ids.userId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await page.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  return { agent, ids: { ...ids, supportId } as { userId: string; chatId: string; supportId: string } }
}

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
  const { agent } = await chatting(page, chat, t)

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
