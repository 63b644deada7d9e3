import t from 'tap'
import { once } from 'node:events'
import { Errors } from '@switchboard/protocol'
import { startStack, type TestSocket, startRedis, redisReady } from '@switchboard/testing'

type Teardown = { teardown(fn: () => unknown): void }
type Asserts = Pick<typeof t, 'equal'>
const file = t


async function status(base: string, path: '/health' | '/ready'): Promise<number> {
  const res = await fetch(`${base}${path}`)
  await res.arrayBuffer()
  return res.status
}

/** The next frame must be exactly Error STORE_UNAVAILABLE. */
async function expectStoreUnavailable(t: Asserts, socket: TestSocket) {
  const m = await socket.next()
  t.equal(m.text, `{"type":"Error","args":{"code":"STORE_UNAVAILABLE","message":${JSON.stringify(Errors.STORE_UNAVAILABLE.message)}}}`)
}

t.test('Redis dies mid-chat, and comes back on the same port', async (t) => {
  const stack = await startStack(t)
  const chat = stack.chatServers[0]!
  const visitor = await stack.joinVisitor('Nika')
  const url = `${chat.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url)
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const support = await stack.socket(url, 'pong:support')
  support.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')
  const message = (from: 'User' | 'Support', content: string) => ({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content, from } })
  user.send(message('User', 'before the outage'))
  await user.nextOfType('ChatMessage')
  await support.nextOfType('ChatMessage')

  const exited = once(stack.redis.process, 'exit')
  stack.redis.process.kill('SIGKILL')
  await exited

  await t.test('a ChatMessage gets Error STORE_UNAVAILABLE and no echo; the sockets stay open', async (t) => {
    user.send(message('User', 'lost in the outage'))
    await expectStoreUnavailable(t, user)
    support.send(message('Support', 'also lost'))
    await expectStoreUnavailable(t, support)
    // ordering marker: a later frame is still answered, and no echo came before its answer
    user.send('not json')
    t.equal((await user.next()).json?.args?.code, 'INVALID_JSON', 'the visitor socket still answers')
    support.send('not json')
    t.equal((await support.next()).json?.args?.code, 'INVALID_JSON', 'the agent socket still answers')
    for (const socket of [user, support]) {
      t.notOk(
        socket.received.some((m) => m.json?.type === 'ChatMessage' && m.json.args.content !== 'before the outage'),
        'no echo of a message that was not stored',
      )
    }
  })

  await t.test('HTTP answers 503, the process stays up', async (t) => {
    t.equal(await status(chat.http, '/ready'), 503, 'not ready')
    t.equal(await status(chat.http, '/health'), 200, 'but alive')
    const res = await fetch(`${chat.http}/user/join/Dodo`)
    t.equal(res.status, 503)
    t.match(await res.json(), { code: 'STORE_UNAVAILABLE', message: Errors.STORE_UNAVAILABLE.message })
    // a new socket cannot be served either, but the server answers it
    const socket = await stack.socket(url)
    socket.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', from: 'User' } })
    const answer = await socket.next()
    t.equal(answer.json?.type, 'Error', `an Error, not a hang: ${answer.text}`)
    t.equal(answer.json?.args?.code, 'STORE_UNAVAILABLE')
    t.equal(await status(chat.http, '/ready'), 503, 'still answering')
  })

  // Stopped by the file's own teardown, after the subtest's (the stack's apps close while it still runs).
  const again = await startRedis({ port: stack.redis.port })
  file.teardown(() => again.stop())

  await t.test('/ready is 200 again by itself', async (t) => {
    await redisReady(chat.app)
    t.equal(await status(chat.http, '/ready'), 200)
  })

  await t.test('a new visitor can register, join, and talk with an agent', async (t) => {
    const dodo = await stack.joinVisitor('Dodo')
    const dodoUrl = `${chat.ws}/chat/${dodo.chatId}`
    const user2 = await stack.socket(dodoUrl)
    user2.send({ type: 'Join', args: { userId: dodo.userId, username: 'Dodo', from: 'User' } })
    const joined = await user2.next()
    t.equal(joined.text, `{"type":"UserJoined","args":{"username":"Dodo","userId":"${dodo.userId}","chatId":"${dodo.chatId}"}}`)
    const support2 = await stack.socket(dodoUrl, 'pong:support')
    support2.send({ type: 'Join', args: { userId: dodo.userId, username: 'Dodo', supportUserName: 'Vika', from: 'Support' } })
    const sj = await support2.nextOfType('SupportJoinedUser')
    t.equal((await user2.nextOfType('SupportJoinedUser')).text, sj.text, 'pub/sub works again: the visitor hears of the agent')
    user2.send({ type: 'ChatMessage', args: { userId: dodo.userId, supportId: sj.json.args.supportId, content: 'it works', from: 'User' } })
    const echo = await support2.nextOfType('ChatMessage')
    t.equal(echo.json.args.content, 'it works')
    t.equal((await user2.nextOfType('ChatMessage')).text, echo.text)
  })

  await t.test('the old chat was lost with the data: its sockets learn it has expired', async (t) => {
    user.send(message('User', 'anyone?'))
    const expired = await user.nextOfType('ChatExpired')
    t.equal(expired.text, `{"type":"ChatExpired","args":{"chatId":"${visitor.chatId}"}}`)
    t.equal((await user.closed).code, 4410)
  })
})
