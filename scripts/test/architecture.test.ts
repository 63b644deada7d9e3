import t from 'tap'
import { fileURLToPath } from 'node:url'
import { importGraph, targetOf, violations, type ImportEdge } from './import-graph.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

t.test('the import graph keeps the rules of docs/architecture.md', async (t) => {
  const edges = importGraph(root)
  // The graph is really read: the known arrows are in it.
  const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to)
  t.ok(has('libs/server-kit', 'libs/domain'), 'server-kit → domain')
  t.ok(has('libs/domain', 'ioredis'), 'domain → ioredis')
  t.ok(has('services/chat-server', 'libs/server-kit'), 'chat-server → server-kit')
  t.ok(has('libs/client', 'libs/protocol'), 'client → protocol')
  t.ok(has('libs/store', 'pg'), 'store → pg')
  t.ok(edges.some((e) => e.file.startsWith('services/subscriber/web/')), 'the pages are read')
  t.same(violations(edges), [], 'no forbidden import')
})

t.test('a forbidden import is reported, whatever its form', async (t) => {
  const edge = (file: string, specifier: string): ImportEdge => {
    const from = file.split('/').slice(0, 2).join('/')
    return { file, from, specifier, to: targetOf(specifier, file, root) }
  }
  const bad = [
    edge('libs/domain/src/chats.ts', 'fastify'),
    edge('libs/domain/src/chats.ts', '@switchboard/server-kit'),
    edge('libs/domain/src/chats.ts', '../../server-kit/src/index.js'),
    edge('libs/protocol/src/v2.ts', 'ioredis'),
    edge('libs/protocol/src/v2.ts', '@switchboard/domain'),
    edge('libs/protocol/src/v2.ts', '@fastify/websocket'),
    edge('libs/client/src/chat-client.ts', 'ioredis'),
    edge('libs/client/src/chat-client.ts', 'node:net'),
    edge('libs/client/src/chat-client.ts', 'events'),
    edge('libs/ui/src/dom.ts', '@switchboard/domain'),
    edge('services/chat-server/web/visitor.ts', 'ws'),
    edge('services/chat-server/src/app.ts', '@switchboard/subscriber'),
    edge('services/subscriber/src/app.ts', '../../chat-server/src/app.js'),
    edge('libs/server-kit/src/index.ts', '@switchboard/testing'),
    edge('libs/store/src/conversations.ts', 'ioredis'),
    edge('libs/store/src/conversations.ts', '@switchboard/domain'),
    edge('libs/store/src/conversations.ts', 'fastify'),
    edge('libs/protocol/src/v2.ts', '@switchboard/store'),
    edge('libs/client/src/chat-client.ts', 'pg'),
  ]
  const found = violations(bad)
  t.equal(found.length, bad.length, found.join('\n'))
  for (const [i, e] of bad.entries()) t.ok(found[i]?.startsWith(`${e.file} imports '${e.specifier}'`), found[i] ?? `${e.file} → ${e.specifier} not reported`)

  const fine = [
    edge('libs/server-kit/src/redis-plugin.ts', '@switchboard/domain'),
    edge('libs/domain/src/redis.ts', 'ioredis'),
    edge('libs/store/src/postgres.ts', 'pg'),
    edge('services/chat-server/src/app.ts', './routes/chat.js'),
    edge('libs/testing/src/index.ts', './raw-socket.js'),
    edge('libs/client/src/index.ts', '@switchboard/protocol'),
  ]
  t.same(violations(fine), [])
})
