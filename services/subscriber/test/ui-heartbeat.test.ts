import t from 'tap'
import { launchChromium, spawnService, startRedis } from '@switchboard/testing'

/*
 * The agent console when the Subscriber under it freezes (SIGSTOP: no close,
 * no ping), in Chromium: it notices within 3 heartbeats and says so, and
 * recovers once it answers again. Runs the built services (`npm run build` first).
 */

/** The pages' client takes a connection for dead after 3 silent heartbeat intervals of the default 1 s; 6 s of slack for a loaded 2-core CI machine (the server stays frozen, so a client that never notices still fails). */
const NOTICED_WITHIN_MS = 3 * 1000 + 6000

t.test('a frozen Subscriber: the agent console says its queue connection is lost within 3 heartbeats, and recovers', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const sub = await spawnService(t, 'subscriber', { REDIS_URL: redis.url })
  t.teardown(() => sub.kill('SIGCONT'))
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${sub.http}/`)
  await page.getByLabel('Agent name').fill('Vika')
  await page.getByRole('button', { name: 'Start' }).click()
  await page.getByText('No one is waiting.').waitFor()

  sub.kill('SIGSTOP')
  await page.getByText(/Queue connection lost — reconnecting/).waitFor({ timeout: NOTICED_WITHIN_MS })
  t.pass('the console says the queue connection is lost while the Subscriber is frozen')
  sub.kill('SIGCONT')
  await page.getByText(/Queue connection lost/).waitFor({ state: 'hidden', timeout: 20_000 })
  t.pass('and stops saying it once the Subscriber answers again')
})
