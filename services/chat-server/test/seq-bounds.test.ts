import t from 'tap'
import { buildApp } from '@switchboard/chat-server'
import { startStack, type Received, type TestSocket } from '@switchboard/testing'

/*
 * Seqs a client names (Join lastSeq, LoadMore beforeSeq, Received / Read seq)
 * are safe integers: a bigger number is refused by the frame's schema
 * (INVALID_FRAME) rather than reaching Redis, which cannot index by it. A
 * lastSeq the chat has not reached is refused with INVALID_SEQ: accepted, the
 * socket would drop every live message as one it already had. Neither is a
 * server error: nothing is logged at error level, the socket stays open.
 */

type Line = { level: number; msg?: string }

const isType = (type: string) => (m: Received) => m.json?.type === type
const isMessage = (content: string) => (m: Received) => isType('ChatMessage')(m) && m.json.args.content === content
const answer = (m: Received) => ['Error', 'ChatHistory', 'ChatHistoryPage', 'UserJoined', 'SupportJoinedUser'].includes(m.json?.type)

t.test('seqs beyond a safe integer are INVALID_FRAME, a lastSeq ahead of the chat is INVALID_SEQ; nothing is logged as an error', async (t) => {
  const stack = await startStack(t, { chatServers: 0 })
  const lines: Line[] = []
  const app = await buildApp(stack.config, {
    logger: { level: 'info', stream: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } },
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `127.0.0.1:${(app.server.address() as { port: number }).port}`

  const visitor = (await (await fetch(`http://${base}/user/join/Nika`)).json()) as { userId: string; chatId: string }
  const url = `ws://${base}/chat/${visitor.chatId}`
  const user = await stack.socket(url, 'pong:user', { v2: true })
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  const agent = await stack.socket(url, 'pong:support', { v2: true })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const supportId: string = (await agent.nextOfType('SupportJoinedUser')).json.args.supportId
  await user.nextOfType('SupportJoinedUser')
  const say = (socket: TestSocket, from: 'User' | 'Support', content: string) =>
    socket.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content, from, clientMessageId: content.replaceAll(' ', '-') } })
  for (const content of ['one', 'two', 'three']) {
    say(user, 'User', content)
    await user.next((m) => isType('Ack')(m) && m.json.args.clientMessageId === content)
  }

  const join = (extra: string) =>
    `{"type":"Join","args":{"userId":"${visitor.userId}","username":"Nika","supportId":"${supportId}","from":"User"${extra}}}`
  const tooBig = ['1e21', '1e308', String(2 ** 53), '9007199254740993']
  await t.test('seqs that are not safe integers: INVALID_FRAME, the socket stays open', async (t) => {
    const joined = await stack.socket(url, 'pong:user', { v2: true })
    joined.send(join(''))
    await joined.nextOfType('ChatHistory')
    for (const n of tooBig) {
      for (const frame of [
        `{"type":"LoadMore","args":{"beforeSeq":${n}}}`,
        `{"type":"Received","args":{"seq":${n}}}`,
        `{"type":"Read","args":{"seq":${n}}}`,
      ]) {
        joined.send(frame)
        const got = await joined.next(answer)
        t.equal(got.json.args.code, 'INVALID_FRAME', `${frame}: INVALID_FRAME (got ${got.text})`)
      }
      const fresh = await stack.socket(url, 'pong:user', { v2: true })
      fresh.send(join(`,"lastSeq":${n}`))
      const got = await fresh.next(answer)
      t.equal(got.json.args.code, 'INVALID_FRAME', `Join with lastSeq ${n}: INVALID_FRAME (got ${got.text})`)
      t.equal(fresh.ws.readyState, fresh.ws.OPEN, 'the socket stays open')
    }
    // The largest safe integer is a seq: a page before it is simply the end of the chat.
    joined.send({ type: 'LoadMore', args: { beforeSeq: Number.MAX_SAFE_INTEGER } })
    t.equal((await joined.next(answer)).json.type, 'ChatHistoryPage', 'LoadMore before the largest safe seq: a page')
    t.equal(joined.ws.readyState, joined.ws.OPEN, 'the socket stays open')
  })

  await t.test('a lastSeq ahead of the chat: INVALID_SEQ, and the same socket joins without it and gets live messages', async (t) => {
    let stored = 3
    for (const lastSeq of [stored + 1, 1000, Number.MAX_SAFE_INTEGER]) {
      const socket = await stack.socket(url, 'pong:user', { v2: true })
      socket.send(join(`,"lastSeq":${lastSeq}`))
      const refused = await socket.next(answer)
      t.equal(refused.json.args.code, 'INVALID_SEQ', `lastSeq ${lastSeq} with ${stored} messages stored: INVALID_SEQ (got ${refused.text})`)
      t.equal(socket.ws.readyState, socket.ws.OPEN, 'the socket stays open')

      socket.send(join(''))
      const history = await socket.next(answer)
      t.same(
        history.json.type === 'ChatHistory' ? history.json.args.messages.map((m: { seq: number }) => m.seq) : history.text,
        Array.from({ length: stored }, (_, i) => i + 1),
        'joined again without lastSeq: the history',
      )
      const content = `live after ${lastSeq}`
      say(agent, 'Support', content)
      t.equal((await socket.next(isMessage(content))).json.args.seq, ++stored, 'and the live message')
    }
    // A lastSeq the chat has reached is a resume, as before.
    const last = (await agent.next((m) => isType('Ack')(m) && m.json.args.clientMessageId === `live-after-${Number.MAX_SAFE_INTEGER}`)).json.args.seq
    const resumed = await stack.socket(url, 'pong:user', { v2: true })
    resumed.send(join(`,"lastSeq":${last}`))
    const history = await resumed.next(answer)
    t.same([history.json.type, history.json.args.fromSeq, history.json.args.messages], ['ChatHistory', last + 1, []], 'lastSeq = the last seq: nothing new')
  })

  t.same(
    lines.filter((l) => l.level >= 50).map((l) => l.msg),
    [],
    'nothing was logged at error level',
  )
})
