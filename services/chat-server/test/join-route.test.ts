import t from 'tap'
import { once } from 'node:events'
import { Errors } from '@switchboard/protocol'
import { startStack } from '@switchboard/testing'

const HEX32 = /^[0-9a-f]{32}$/

async function get(url: string): Promise<{ status: number; type: string | null; body: any; text: string }> {
  const res = await fetch(url)
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  return { status: res.status, type: res.headers.get('content-type'), body, text }
}

t.test('GET /user/join/{name}', async (t) => {
  const stack = await startStack(t)
  const base = stack.chatServers[0]!.http
  const join = (raw: string) => get(`${base}/user/join/${raw}`)

  t.test('registers a visitor: 200 JSON {userId, username, chatId}', async (t) => {
    const res = await join('Nika')
    t.equal(res.status, 200)
    t.match(res.type, /^application\/json/)
    t.same(Object.keys(res.body), ['userId', 'username', 'chatId'])
    t.match(res.body.userId, HEX32)
    t.match(res.body.chatId, HEX32)
    t.equal(res.body.username, 'Nika')
    t.not(res.body.userId, res.body.chatId)
  })

  t.test('ids are new on every call, even for the same name', async (t) => {
    const all = await Promise.all(Array.from({ length: 10 }, () => join('Nika')))
    for (const res of all) t.equal(res.status, 200)
    const ids = all.flatMap((r) => [r.body.userId, r.body.chatId])
    t.equal(new Set(ids).size, ids.length, '20 distinct ids')
  })

  t.test('URL-encoded unicode names come back decoded', async (t) => {
    for (const name of ['Zaza Ł 🙂', 'ნიკა', 'O\'Brien & "Sons"', 'a/b?c#d%e', '李小龙']) {
      const res = await join(encodeURIComponent(name))
      t.equal(res.status, 200, name)
      t.equal(res.body?.username, name)
    }
  })

  t.test('surrounding spaces are trimmed', async (t) => {
    const res = await join('%20%20Nika%20')
    t.equal(res.status, 200)
    t.equal(res.body.username, 'Nika')
  })

  t.test('the length limit is 64 characters', async (t) => {
    const at = await join('x'.repeat(64))
    t.equal(at.status, 200, '64 characters')
    t.equal(at.body.username, 'x'.repeat(64))
    const emoji = await join(encodeURIComponent('🙂'.repeat(64)))
    t.equal(emoji.status, 200, '64 emoji are 64 characters')
    t.equal(emoji.body.username, '🙂'.repeat(64))
    // a name longer than the route's parameter limit still reaches the route
    for (const raw of ['x'.repeat(65), encodeURIComponent('🙂'.repeat(65)), 'x'.repeat(200), 'y'.repeat(1000)]) {
      const res = await join(raw)
      t.equal(res.status, 400, `${raw.length} characters in the URL → 400`)
      t.equal(res.body?.code, 'INVALID_USERNAME')
    }
  })

  t.test('a name of any length is answered like any bad name: 400 INVALID_USERNAME, never 404', async (t) => {
    const good = await join('Nika')
    // Past the router's parameter limit (1,024 characters of the URL) as well as under it,
    // plain and percent-encoded: the same status, the same body.
    for (const raw of ['z'.repeat(1024), 'z'.repeat(1025), 'z'.repeat(4000), encodeURIComponent('🙂'.repeat(100)), encodeURIComponent('李'.repeat(1000))]) {
      const res = await join(raw)
      t.equal(res.status, 400, `${raw.length} characters in the URL → 400`)
      t.match(res.type, /^application\/json/)
      t.strictSame(res.body, { statusCode: 400, code: 'INVALID_USERNAME', error: 'Bad Request', message: Errors.INVALID_USERNAME.message })
    }
    t.equal(good.status, 200, 'a good name still registers')
  })

  t.test('unusable names → 400 JSON INVALID_USERNAME', async (t) => {
    for (const raw of ['%20%20', '%20', '%09', 'Ni%07ka', '%00', 'Ni%0Aka', 'a%7Fb', 'a%C2%85b']) {
      const res = await join(raw)
      t.equal(res.status, 400, raw)
      t.match(res.type, /^application\/json/)
      t.match(res.body, { code: 'INVALID_USERNAME', message: Errors.INVALID_USERNAME.message }, raw)
    }
  })

  t.test('no name at all is a bad name: 400 INVALID_USERNAME', async (t) => {
    const res = await get(`${base}/user/join/`)
    t.equal(res.status, 400)
    t.equal(res.body?.code, 'INVALID_USERNAME')
  })

  t.test('a name /user/join accepts is accepted by Join on the chat socket', async (t) => {
    for (const name of ['Zaza Ł 🙂', '🙂'.repeat(40)]) {
      const visitor = await stack.joinVisitor(name)
      const user = await stack.socket(`${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`)
      user.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })
      const answer = await user.next((m) => m.json?.type === 'UserJoined' || m.json?.type === 'Error')
      t.equal(answer.json.type, 'UserJoined', `${name}: ${answer.text.slice(0, 200)}`)
    }
  })

  t.test('/health and /ready are 200 while Redis is up', async (t) => {
    const res = await get(`${base}/health`)
    t.equal(res.status, 200)
    t.same(res.body, { status: 'ok', redis: 'up' })
    const ready = await get(`${base}/ready`)
    t.equal(ready.status, 200)
    t.same(ready.body, { status: 'ok', redis: 'up' })
  })
})

t.test('with Redis down: /ready and /user/join answer 503, /health 200, and the server stays up', async (t) => {
  const stack = await startStack(t)
  const base = stack.chatServers[0]!.http
  t.equal((await get(`${base}/ready`)).status, 200, 'ready at first')

  const exited = once(stack.redis.process, 'exit')
  stack.redis.process.kill('SIGKILL')
  await exited

  const ready = await get(`${base}/ready`)
  t.equal(ready.status, 503)
  t.same(ready.body, { status: 'unavailable', redis: 'down' })
  t.equal((await get(`${base}/health`)).status, 200, 'alive all the same')

  const join = await get(`${base}/user/join/Nika`)
  t.equal(join.status, 503)
  t.match(join.type, /^application\/json/)
  t.match(join.body, { code: 'STORE_UNAVAILABLE', message: Errors.STORE_UNAVAILABLE.message })

  // still answering, and validation still comes first
  t.equal((await get(`${base}/user/join/%20`)).status, 400)
  t.equal((await get(`${base}/ready`)).status, 503)
})
