import t from 'tap'
import { EventEmitter, once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { buildApp as buildChatServer } from '@switchboard/chat-server'
import { buildApp as buildSubscriber } from '@switchboard/subscriber'
import { launchChromium, startStack, type Teardown } from '@switchboard/testing'

/*
 * Both pages load with no console error (an icon, no 404 for /favicon.ico),
 * and what is requested all day long — /health, the pages' files, the icon —
 * is logged at debug, not info. Needs the pages built (npm run build).
 */

type Line = { level: number; msg?: string; req?: { url?: string }; res?: { statusCode?: number } }
const DEBUG = 20
const INFO = 30

/** Starts an app whose log lines at `level` and up are kept; returns its base URL and the lines. */
async function logged(t: Teardown, build: (opts: { logger: object }) => Promise<FastifyInstance>, level: string, port = 0) {
  const lines: Line[] = []
  const written = new EventEmitter()
  const write = (text: string) => {
    lines.push(JSON.parse(text) as Line)
    written.emit('line')
  }
  const app = await build({ logger: { level, stream: { write } } })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  const address = app.server.address() as { port: number }
  const http = `http://127.0.0.1:${address.port}`
  return {
    http,
    lines,
    /** GETs `url`, reads the whole body, and waits until the server has logged the request as completed (at any level). */
    async get(url: string): Promise<number> {
      const res = await fetch(`${http}${url}`)
      await res.arrayBuffer()
      while (!requestLines(lines, url).some((l) => l.msg === 'request completed')) await once(written, 'line')
      return res.status
    },
  }
}

/** The level of each request line ("incoming request" by its URL, "request completed" right after) for `url`. */
function requestLines(lines: Line[], url: string): Line[] {
  const found: Line[] = []
  lines.forEach((line, i) => {
    if (line.msg === 'incoming request' && line.req?.url === url) {
      found.push(line)
      const done = lines.slice(i + 1).find((l) => l.msg === 'request completed')
      if (done) found.push(done)
    }
  })
  return found
}

t.test('the visitor page and the console: an icon, no console error, routine requests logged at debug', async (t) => {
  const stack = await startStack(t, { chatServers: 0, subscribers: 0 })
  const config = stack.config
  // On the configured ports, so the pages' default links (console → ChatServer) are the ones tested.
  const chat = await logged(t, (opts) => buildChatServer(config, opts), 'info', config.chatServerPort)
  const subscriber = await logged(t, (opts) => buildSubscriber(config, opts), 'info', config.subscriberPort)
  const browser = await launchChromium(t)

  for (const [what, server] of [['visitor page', chat], ['agent console', subscriber]] as const) {
    await t.test(what, async (t) => {
      const page = await browser.newPage()
      t.teardown(() => page.close())
      const problems: string[] = []
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console error: ${m.text()}`)
      })
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
      page.on('response', (res) => {
        if (res.status() >= 400) problems.push(`${res.status()} ${res.url()}`)
      })
      const icon = page.waitForResponse((res) => /\/favicon\.(svg|ico)$/.test(res.url()))
      await page.goto(`${server.http}/`, { waitUntil: 'load' })
      const iconResponse = await icon
      t.equal(iconResponse.status(), 200, `the icon is served (${iconResponse.url()})`)
      t.match(iconResponse.headers()['content-type'], /^image\/svg\+xml/)
      // The page's icon link resolved to a real image: Chromium decoded it.
      const decoded = await page.evaluate(async (href) => {
        const img = new Image()
        img.src = href
        await img.decode()
        return img.naturalWidth > 0
      }, iconResponse.url())
      t.ok(decoded, 'the icon is an image')
      t.strictSame(problems, [], 'no console error, no failed request')

      const ico = await fetch(`${server.http}/favicon.ico`)
      t.equal(ico.status, 200, '/favicon.ico: 200 (tools ask for it without reading the page)')
      t.match(ico.headers.get('content-type'), /^image\/svg\+xml/)
      t.match(await ico.text(), /^<svg /)

      t.equal((await fetch(`${server.http}/health`)).status, 200)
      for (const url of ['/health', '/', '/app.js', '/style.css', '/favicon.ico']) {
        t.strictSame(requestLines(server.lines, url), [], `${url}: no request line at info`)
      }
    })
  }

  await t.test('other requests are still logged at info', async (t) => {
    t.equal((await fetch(`${chat.http}/user/join/Nika`)).status, 200)
    const lines = requestLines(chat.lines, '/user/join/Nika')
    t.equal(lines.length, 2, 'incoming and completed')
    t.ok(lines.every((l) => l.level === INFO), 'at info')
    // A routine URL answered with an error is not routine.
    t.equal((await fetch(`${chat.http}/no-such-file.js`)).status, 404)
    t.ok(chat.lines.some((l) => l.msg === 'request completed' && l.res?.statusCode === 404 && l.level === INFO), 'a 404 for a file is at info')
  })
})

t.test('at LOG_LEVEL=debug the routine requests are there, at debug', async (t) => {
  const stack = await startStack(t, { chatServers: 0, subscribers: 0 })
  const server = await logged(t, (opts) => buildChatServer(stack.config, opts), 'debug')
  for (const url of ['/health', '/', '/app.js', '/favicon.ico']) {
    t.equal(await server.get(url), 200, url)
    const lines = requestLines(server.lines, url)
    t.equal(lines.length, 2, `${url}: incoming and completed`)
    t.ok(lines.every((l) => l.level === DEBUG), `${url}: at debug`)
  }
})
