import t from 'tap'
import { WebSocket } from 'ws'
import { claimVisitor, keys } from '@switchboard/domain'
import { startStack, type RunningApp } from '@switchboard/testing'

/*
 * A surge of waiting v2 visitors (an incident sends thousands to the chat at
 * once): every join changes everyone's `waiting`, and QueuePosition used to
 * be sent to every waiting visitor on every change, so N joins cost about N²
 * frames (issue 15, item 4: 1,500 visitors got 63 frames each, 4,000 got
 * 360). Places are now re-read at most once per QUEUE_POSITION_INTERVAL_MS,
 * so each visitor gets about one frame per interval of the surge, and every
 * visitor ends up told their true place.
 */

const VISITORS = Number(process.env.SURGE_VISITORS ?? 3000)
/** Sockets opening and joining at the same time: the surge. */
const CONCURRENCY = 200
const INTERVAL_MS = 1000

interface SurgeVisitor {
  userId: string
  username: string
  chatId: string
  socket?: WebSocket
  /** [position, waiting] of every QueuePosition received, in order. */
  positions: [number, number][]
}

t.setTimeout(240_000)

/** Runs `work` over `items`, `concurrency` at a time. */
async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

t.test(`a surge of ${VISITORS} waiting v2 visitors costs each at most a few QueuePosition frames, and everyone ends up told their true place`, async (t) => {
  const stack = await startStack(t, {
    chatServers: 2,
    subscribers: 0,
    // Pings would only add frames this test does not count; the surge is what it measures.
    env: { HEARTBEAT_INTERVAL_MS: '600000', QUEUE_POSITION_INTERVAL_MS: String(INTERVAL_MS) },
  })
  const servers = stack.chatServers as RunningApp[]
  const visitors: SurgeVisitor[] = []
  await inParallel(
    Array.from({ length: VISITORS }, (_, i) => i),
    50,
    async (i) => {
      visitors[i] = { ...(await stack.joinVisitor(`v${i}`, servers[i % 2]!)), positions: [] }
    },
  )

  /** The place each visitor should end up told (by chatId), once known. */
  let expected: Map<string, number> | undefined
  let settle: { visitors: Set<SurgeVisitor>; resolve: () => void } | undefined
  const check = (v: SurgeVisitor) => {
    if (settle === undefined || !settle.visitors.has(v)) return
    if (v.positions.at(-1)?.[0] !== expected?.get(v.chatId)) return
    settle.visitors.delete(v)
    if (settle.visitors.size === 0) settle.resolve()
  }
  /** Resolves once each of `who` has been told the place `expected` gives them (an event per frame; no polling). */
  const settledPromise = (who: readonly SurgeVisitor[] = visitors) =>
    new Promise<void>((resolve) => {
      settle = { visitors: new Set(who), resolve }
      for (const v of who) check(v)
    })

  let misdirected = 0
  const started = performance.now()
  await inParallel(visitors, CONCURRENCY, async (v) => {
    const i = visitors.indexOf(v)
    const socket = new WebSocket(`${servers[i % 2]!.ws}/chat/${v.chatId}`, ['switchboard.v2'])
    v.socket = socket
    t.teardown(() => socket.terminate())
    const joined = new Promise<void>((resolve, reject) => {
      socket.on('message', (data) => {
        const text = data.toString()
        if (text === 'ping') return void socket.send('pong:user')
        const frame = JSON.parse(text)
        if (frame.type === 'UserJoined') resolve()
        else if (frame.type === 'QueuePosition') {
          if (frame.args.chatId !== v.chatId) misdirected++
          v.positions.push([frame.args.position, frame.args.waiting])
          check(v)
        } else reject(new Error(`unexpected frame ${data.toString()}`))
      })
      socket.once('close', (code) => reject(new Error(`socket closed ${code}`)))
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    socket.send(JSON.stringify({ type: 'Join', args: { userId: v.userId, username: v.username, from: 'User' } }))
    await joined
  })
  const surgeMs = performance.now() - started

  // The true places: the queue's order in Redis.
  const redis = stack.chatServers[0]!.app.redis.commands
  const queue = await redis.zrange(keys.queue, 0, -1)
  t.equal(queue.length, VISITORS, 'everyone is in the queue')
  const byChat = new Map(visitors.map((v) => [v.chatId, v]))
  expected = new Map(queue.map((chatId, i) => [chatId, i + 1]))
  for (const v of visitors) check(v)
  await settledPromise()
  const surge = tally(visitors)
  t.comment(
    `surge: ${VISITORS} visitors joined in ${Math.round(surgeMs)} ms (2 ChatServer instances): ` +
      `${surge.total} QueuePosition frames, ${surge.perVisitor.toFixed(2)} per visitor on average, ${surge.most} at most`,
  )
  t.equal(misdirected, 0, "every QueuePosition named the visitor's own chat")
  t.ok(visitors.every((v) => v.positions.length >= 1), 'every visitor was told their place')
  t.ok(surge.most <= 2, `a visitor joining behind is not news: at most 2 frames per visitor during the surge (${surge.most})`)
  t.ok(
    visitors.every((v) => v.positions.every(([position]) => position === expected!.get(v.chatId))),
    'nobody was told a place other than their own (nobody ahead left)',
  )

  // Then agents claim from the head, as fast as they can: every claim moves everyone behind up.
  const CLAIMS = Math.floor(VISITORS / 10)
  const before = new Map(visitors.map((v) => [v, v.positions.length]))
  const claimsStarted = performance.now()
  for (const chatId of queue.slice(0, CLAIMS)) await claimVisitor(redis, chatId, byChat.get(chatId)!.userId)
  const left = await redis.zrange(keys.queue, 0, -1)
  t.equal(left.length, VISITORS - CLAIMS, 'the claimed visitors left the queue')
  expected = new Map(left.map((chatId, i) => [chatId, i + 1]))
  const remaining = left.map((chatId) => byChat.get(chatId)!)
  await settledPromise(remaining)
  const claimsMs = performance.now() - claimsStarted
  const moved = remaining.map((v) => v.positions.length - before.get(v)!)
  const most = Math.max(...moved)
  const perVisitor = moved.reduce((a, b) => a + b, 0) / remaining.length
  t.comment(
    `claims: ${CLAIMS} claimed in ${Math.round(claimsMs)} ms; the ${remaining.length} behind got ${perVisitor.toFixed(2)} frames each on average, ${most} at most`,
  )
  // At most one per interval while the claims last, plus the re-read after the last one.
  const bound = 2 + Math.ceil(claimsMs / INTERVAL_MS)
  t.ok(most <= bound, `at most one QueuePosition per ${INTERVAL_MS} ms while the claims lasted (${most} ≤ ${bound})`)
  t.ok(perVisitor >= 1, 'everyone behind was told they moved up')
  t.ok(
    remaining.every((v) => v.positions.every(([position], i) => i === 0 || position <= v.positions[i - 1]![0])),
    "each visitor's position only went down (no older answer after a newer one)",
  )
})

function tally(visitors: readonly SurgeVisitor[]): { total: number; perVisitor: number; most: number } {
  const counts = visitors.map((v) => v.positions.length)
  const total = counts.reduce((a, b) => a + b, 0)
  return { total, perVisitor: total / visitors.length, most: Math.max(...counts) }
}
