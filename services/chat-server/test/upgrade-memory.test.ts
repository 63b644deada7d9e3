import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { IncomingMessage } from 'node:http'
import { openChat, startStack } from '@switchboard/testing'

/*
 * A served socket does not keep its upgrade's HTTP request (and the reply,
 * response, headers and loggers around it) alive: thousands of idle sockets
 * would each carry a couple of KB of it (docs/performance.md, idle chats).
 */
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test("an open chat socket does not hold on to its upgrade's HTTP request", async (t) => {
  const stack = await startStack(t, { subscribers: 0 })
  const upgrades: WeakRef<IncomingMessage>[] = []
  stack.chatServers[0]!.app.websocketServer.on('connection', (_socket: unknown, req: IncomingMessage) => upgrades.push(new WeakRef(req)))
  const chat = await openChat(stack)
  chat.user.send(chat.message('User', 'still here'))
  await chat.agent.nextOfType('ChatMessage')
  t.equal(upgrades.length, 2, "the visitor's and the agent's upgrades")
  // Finalization runs between turns of the event loop: collect, yield, collect again.
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(
    upgrades.map((ref) => ref.deref() === undefined),
    [true, true],
    'both requests were collected while their sockets are open',
  )
  chat.user.send(chat.message('User', 'and still working'))
  t.equal((await chat.agent.nextOfType('ChatMessage')).json.args.content, 'and still working', 'the sockets work on')
})
