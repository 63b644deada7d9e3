import t from 'tap'
import { WebSocket } from 'ws'
import { once } from 'node:events'
import { Opcode, rawConnect, startStack, TestSocket } from '@switchboard/testing'

const HEARTBEAT_INTERVAL_MS = 50
const IDLE_TIMEOUT_MS = 300

t.test('heartbeat and idle close on /chat/{chatId}', async (t) => {
  const stack = await startStack(t, {
    env: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS), IDLE_TIMEOUT_SECONDS: String(IDLE_TIMEOUT_MS / 1000) },
  })
  const ws = stack.chatServers[0]!.ws

  await t.test('the server sends "ping" text frames every HEARTBEAT_INTERVAL_MS', async (t) => {
    const visitor = await stack.joinVisitor('Nika')
    // a raw client, to see the frames exactly as sent
    const raw = new WebSocket(`${ws}/chat/${visitor.chatId}`)
    t.teardown(() => raw.close())
    const pings: { at: number; isBinary: boolean; text: string }[] = []
    const start = Date.now()
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${pings.length} pings in 5 s`)), 5000)
      raw.on('error', reject)
      raw.on('message', (data, isBinary) => {
        pings.push({ at: Date.now(), isBinary, text: data.toString() })
        if (raw.readyState === WebSocket.OPEN) raw.send('pong:user')
        if (pings.length === 4) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    t.ok(pings.length >= 3, `${pings.length} pings`)
    for (const p of pings) {
      t.equal(p.text, 'ping')
      t.equal(p.isBinary, false, 'a text frame')
    }
    // four pings take at least three intervals (timers never fire early), and not much more than four
    const span = pings[3]!.at - start
    t.ok(span >= 3 * HEARTBEAT_INTERVAL_MS - 5, `4 pings after ${span} ms`)
    t.ok(span < 40 * HEARTBEAT_INTERVAL_MS, `4 pings within ${40 * HEARTBEAT_INTERVAL_MS} ms (took ${span})`)
  })

  await t.test('each ping is one whole, unmasked text frame: the bytes 81 04 "ping"', async (t) => {
    const visitor = await stack.joinVisitor('Nika')
    const raw = await rawConnect(`${ws}/chat/${visitor.chatId}`)
    t.teardown(() => raw.destroy())
    while (raw.pings < 3) await once(raw.socket, 'data')
    const pings = raw.frames.filter((f) => f.payload.toString() === 'ping')
    t.ok(pings.length >= 3, `${pings.length} pings`)
    for (const f of pings) t.same(f, { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: Opcode.TEXT, masked: false, payload: Buffer.from('ping') })
    t.same(raw.serverErrors, [], 'nothing malformed on the wire')
    // Pongs between pings change nothing: the pings keep coming, and nothing else does.
    await raw.sendText('pong:user')
    const seen = raw.pings
    while (raw.pings < seen + 2) await once(raw.socket, 'data')
    t.same(raw.messages, [], 'no answer to a pong')
    // Only the exact pongs are pongs: anything else is read as a frame, and refused as one.
    const almost = { pong: 'INVALID_JSON', 'pong:User': 'INVALID_JSON', ' pong:user': 'INVALID_JSON', 'pong:user\n': 'INVALID_JSON', '"pong:user"': 'INVALID_FRAME' }
    for (const [text, code] of Object.entries(almost)) {
      await raw.sendText(text)
      t.equal((await raw.nextJson()).json.args.code, code, JSON.stringify(text))
    }
  })

  await t.test('a silent client is closed with 4408; one that answers pong stays open', async (t) => {
    const visitor = await stack.joinVisitor('Nika')
    const url = `${ws}/chat/${visitor.chatId}`
    const opened = Date.now()
    const [silent, answering] = await Promise.all([stack.socket(url, null), stack.socket(url, 'pong:user')])

    const closed = await silent.closed
    const after = Date.now() - opened
    t.equal(closed.code, 4408)
    t.ok(silent.pings >= 1, `the silent client got pings (${silent.pings}) and answered none`)
    t.ok(after >= IDLE_TIMEOUT_MS, `closed after ${after} ms, not before IDLE_TIMEOUT_SECONDS`)
    t.equal(answering.ws.readyState, WebSocket.OPEN, 'the answering client is still open when the silent one is closed')

    // ordering proof: the answering client, open for longer than the idle timeout, still gets answers
    t.ok(Date.now() - opened > IDLE_TIMEOUT_MS)
    answering.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
    t.equal((await answering.nextOfType('UserJoined')).json.args.chatId, visitor.chatId)
    // and a ping that arrives after more than another idle timeout finds it still open
    const waitUntil = Date.now() + IDLE_TIMEOUT_MS
    while (Date.now() <= waitUntil) await answering.nextPing()
    t.equal(answering.ws.readyState, WebSocket.OPEN)
    answering.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
    t.equal((await answering.nextOfType('Error')).json.args.code, 'ALREADY_JOINED', 'still answering')
  })

  await t.test('any frame counts as activity, not only pong', async (t) => {
    const visitor = await stack.joinVisitor('Nika')
    const url = `${ws}/chat/${visitor.chatId}`
    const opened = Date.now()
    const [silent, chatty] = await Promise.all([stack.socket(url, null), stack.socket(url, null)])
    // the chatty client answers every ping with a frame (an Error each time), never with pong
    let frames = 0
    chatty.ws.on('message', (data) => {
      if (data.toString() === 'ping' && chatty.ws.readyState === WebSocket.OPEN) {
        chatty.send('not json')
        frames++
      }
    })
    t.equal((await silent.closed).code, 4408)
    t.ok(Date.now() - opened >= IDLE_TIMEOUT_MS)
    t.equal(chatty.ws.readyState, WebSocket.OPEN, 'the chatty one is open')
    t.ok(frames > 0)
    chatty.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
    t.equal((await chatty.nextOfType('UserJoined')).json.args.userId, visitor.userId)
  })

  await t.test('a joined participant who goes silent is closed too, and the other one stays', async (t) => {
    const visitor = await stack.joinVisitor('Nika')
    const url = `${ws}/chat/${visitor.chatId}`
    const user = await TestSocket.open(url, { pong: null })
    t.teardown(() => user.close())
    user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
    await user.nextOfType('UserJoined')
    const support = await stack.socket(url, 'pong:support')
    support.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
    const { supportId } = (await support.nextOfType('SupportJoinedUser')).json.args
    t.equal((await user.closed).code, 4408)
    // the agent can still talk, and the chat keeps the message
    support.send({ type: 'ChatMessage', args: { userId: visitor.userId, supportId, content: 'are you there?', from: 'Support' } })
    t.equal((await support.nextOfType('ChatMessage')).json.args.content, 'are you there?')
    const back = await stack.socket(url)
    back.send({ type: 'Join', args: { userId: visitor.userId, supportId, username: 'Nika', from: 'User' } })
    t.same((await back.nextOfType('ChatHistory')).json.args.messages.map((m: { content: string }) => m.content), ['are you there?'])
  })
})
