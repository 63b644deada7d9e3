import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Teardown } from './stack.js'
import { TestSocket } from './ws-client.js'

/** Debian's Chromium unless CHROMIUM_PATH says otherwise; playwright cannot download browsers here. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Headless Chromium, closed at teardown. */
export async function launchChromium(t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

/** Texts of the messages in a page's conversation list, in order (pending ones included). */
export async function conversation(page: Page, label: string | RegExp): Promise<string[]> {
  return page.getByRole('list', { name: label }).locator('.msg__body').allTextContents()
}

/**
 * A visitor on the visitor page ("Zaza"), claimed by an agent ("Vika") speaking
 * raw v2 frames; returns the agent's socket (closed at teardown) and the ids.
 */
export async function visitorChatting(page: Page, chatServer: { http: string; ws: string }, t: Teardown) {
  await page.goto(`${chatServer.http}/`)
  await page.getByLabel('Name').fill('Zaza')
  await page.getByRole('button', { name: 'Start chat' }).click()
  await page.getByText('Waiting for an agent…').waitFor()
  // An expression, not a function: this library is typed without the DOM.
  const ids = (await page.evaluate("JSON.parse(sessionStorage.getItem('switchboard.visitor') ?? '{}').visitor")) as { userId: string; chatId: string }
  const agent = await TestSocket.open(`${chatServer.ws}/chat/${ids.chatId}`, { pong: 'pong:support', protocols: ['switchboard.v2'] })
  t.teardown(() => agent.close())
  agent.send({ type: 'Join', args: { userId: ids.userId, username: 'Zaza', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await page.getByRole('heading', { name: 'Chatting with Vika' }).waitFor()
  return { agent, ids: { ...ids, supportId: supportId as string } }
}

const root = fileURLToPath(new URL('../../../', import.meta.url))

/** A full-page screenshot for the README, only when asked for (SCREENSHOTS_DIR, relative to the repository root or absolute). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!process.env.SCREENSHOTS_DIR) return
  const dir = resolve(root, process.env.SCREENSHOTS_DIR)
  await mkdir(dir, { recursive: true })
  await page.screenshot({ path: resolve(dir, name), fullPage: true })
}
