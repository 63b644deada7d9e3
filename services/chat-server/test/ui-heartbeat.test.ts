import t from 'tap'
import { conversation, launchChromium, visitorChatting, spawnService, startRedis } from '@switchboard/testing'

/*
 * The pages when the server under them freezes (SIGSTOP: no close, no ping,
 * as in a silent network partition), in Chromium: the visitor page notices
 * within 3 heartbeats and says so, and recovers once it answers again (the
 * console: services/subscriber/test/ui-heartbeat.test.ts). Runs the built
 * services (`npm run build` first).
 */

/** The pages' client takes a connection for dead after 3 silent heartbeat intervals of the default 1 s; 6 s of slack for a loaded 2-core CI machine (the server stays frozen, so a client that never notices still fails). */
const NOTICED_WITHIN_MS = 3 * 1000 + 6000

t.test('a frozen ChatServer: the visitor page says it is reconnecting within 3 heartbeats, and what was typed is delivered after SIGCONT', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const chat = await spawnService(t, 'chat-server', { REDIS_URL: redis.url })
  t.teardown(() => chat.kill('SIGCONT'))
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const { agent } = await visitorChatting(page, chat, t)

  chat.kill('SIGSTOP')
  await page.getByText(/Connection lost — reconnecting/).waitFor({ timeout: NOTICED_WITHIN_MS })
  t.pass('the page says the connection is lost while the server is frozen')
  await page.getByLabel('Message').fill('typed while frozen')
  await page.getByLabel('Message').press('Enter')
  const bubble = page.locator('.msg--pending', { hasText: 'typed while frozen' })
  await bubble.waitFor()
  t.equal(await page.getByLabel('Message').inputValue(), '', 'the composer is cleared: the message is shown as pending instead')
  t.match(await bubble.innerText(), /Sending…/, 'shown as sending')

  chat.kill('SIGCONT')
  const echoed = await agent.next((m) => m.json?.type === 'ChatMessage' && m.json.args.content === 'typed while frozen', 20_000)
  t.equal(echoed.json.args.from, 'User', 'the agent gets it once the server is back')
  await page.getByText(/Connection lost/).waitFor({ state: 'hidden', timeout: 20_000 })
  await bubble.waitFor({ state: 'detached' })
  t.same(await conversation(page, 'Conversation'), ['typed while frozen'], 'shown once, as stored')
})
