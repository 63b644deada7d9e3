import t from 'tap'
import { launchChromium, startStack } from '@switchboard/testing'

t.test('the console without a token tells how to get one, as a command to copy (not Markdown)', async (t) => {
  const stack = await startStack(t, { env: { AGENT_AUTH: 'on' } })
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  await page.goto(`${stack.subscribers[0]!.http}/`)
  const hint = (await page.getByText('npm run agent-token').textContent()) ?? ''
  t.match(hint, 'npm run agent-token -- --name <you>', 'the hint names the command')
  t.notMatch(hint, '`', 'without literal backticks')
})
