import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { channels, keys } from '@switchboard/domain'
import { startStack, type Received, type RunningApp, type Stack, type TestSocket } from '@switchboard/testing'

/*
 * Many instances (issue 7): two ChatServers and two Subscribers on one Redis,
 * no sticky sessions. Visitors and agents are placed at random on the
 * instances; the placement comes from a seeded PRNG so a failure replays with
 * SCALE_OUT_SEED=<seed> (the seed is printed as a comment).
 *
 * - 50 visitors and 10 agents chat, messages sent both ways without waiting:
 *   every socket gets every message once, in each sender's order, with
 *   contiguous seq on v2 sockets.
 * - Fan-out: a ChatServer subscribes only to the chats it holds a socket of,
 *   and a chat's frames reach only the instances holding a participant.
 * - 100 agents on both Subscribers claim one visitor at once: one winner.
 * - Visitors joining and being claimed through every instance at once: both
 *   Subscribers (Load, and the live stream) show the same FIFO queue.
 */

const SEED = Number(process.env.SCALE_OUT_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0
t.comment(`scale-out seed ${SEED} (replay with SCALE_OUT_SEED=${SEED})`)

/** mulberry32: a small seeded PRNG, so a placement can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
  return {
    int: (n: number) => Math.floor(next() * n),
    bool: () => next() < 0.5,
    pick<T>(items: readonly T[]): T {
      return items[Math.floor(next() * items.length)]!
    },
    shuffle<T>(items: readonly T[]): T[] {
      const out = [...items]
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[out[i], out[j]] = [out[j]!, out[i]!]
      }
      return out
    },
  }
}
/** Each test draws from its own stream, so one can be replayed alone (tap --grep) with the same placement. */
const rngFor = (test: number) => prng(SEED + test * 0x9e3779b9)

const ENV = { AGENT_AUTH: 'on' }
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

type Visitor = { userId: string; username: string; chatId: string }
interface Agent {
  id: string
  name: string
  token: string
}

const joinUser = (v: Visitor) => ({ type: 'JoinUser', args: { userId: v.userId, chatId: v.chatId, username: v.username } })
const removeUserText = (v: Visitor) => `{"type":"RemoveUser","args":{"userId":"${v.userId}"}}`
const ALREADY_CLAIMED = '{"type":"Error","args":{"code":"ALREADY_CLAIMED","message":"This visitor has already been claimed by an agent"}}'
const isError = (code?: string) => (m: Received) => m.json?.type === 'Error' && (code === undefined || m.json.args?.code === code)
const isRemoveUser = (v: Visitor) => (m: Received) => m.json?.type === 'RemoveUser' && m.json.args?.userId === v.userId
const isUserJoined = (v: Visitor) => (m: Received) => m.json?.type === 'UserJoined' && m.json.args?.userId === v.userId

/** Where a socket sits: "CS1 v2". */
const where = (stack: Stack, on: RunningApp, v2: boolean) => {
  const cs = stack.chatServers.indexOf(on)
  return `${cs >= 0 ? `CS${cs}` : `SUB${stack.subscribers.indexOf(on)}`} ${v2 ? 'v2' : 'v1'}`
}

/**
 * Frames a socket got before the answer to a marker (an unknown frame type,
 * answered UNKNOWN_TYPE in turn, after every frame sent before it), consuming them.
 */
async function framesBeforeMarker(socket: TestSocket, timeoutMs?: number): Promise<Received[]> {
  socket.send({ type: 'Marker' })
  const hit = await socket.next(isError('UNKNOWN_TYPE'), timeoutMs)
  const at = socket.received.indexOf(hit)
  const before = socket.unconsumed.filter((m) => socket.received.indexOf(m) < at)
  for (const m of before) await socket.next((x) => x === m)
  return before
}

async function agentNamed(stack: Stack, i: number, prefix = 'agent'): Promise<Agent> {
  const id = `${prefix}-${i}`
  const name = `${prefix[0]!.toUpperCase()}${prefix.slice(1)} ${String(i).padStart(3, '0')}`
  return { id, name, token: await stack.agentToken(name, { id }) }
}

function usersSocket(stack: Stack, agent: Agent, on: RunningApp, v2: boolean): Promise<TestSocket> {
  return stack.socket(`${on.ws}/users`, 'pong:support', { token: agent.token, v2 })
}

/** Loads the queue: the bare visitor entries, once the agent is subscribed to the live stream. */
async function load(socket: TestSocket): Promise<Received[]> {
  socket.send({ type: 'Load' })
  const frames = await framesBeforeMarker(socket)
  return frames.filter((m) => m.json?.type === undefined && typeof m.json?.userId === 'string')
}

/** A visitor registered on one ChatServer who joins the queue on a socket to `socketOn` (which may be another). */
async function queuedVisitor(stack: Stack, name: string, registerOn: RunningApp, socketOn: RunningApp, v2: boolean): Promise<Visitor & { socket: TestSocket }> {
  const visitor = await stack.joinVisitor(name, registerOn)
  const socket = await stack.socket(`${socketOn.ws}/chat/${visitor.chatId}`, 'pong:user', { v2 })
  socket.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, from: 'User' } })
  await socket.nextOfType('UserJoined')
  return { ...visitor, socket }
}

/** The messages a pub/sub connection of each app received, per channel, counted below ioredis (what Redis sent it). */
function countChannelTraffic(apps: FastifyInstance[]): Map<string, number>[] {
  return apps.map((app) => {
    const counts = new Map<string, number>()
    app.redis.subscriber.on('message', (channel: string) => counts.set(channel, (counts.get(channel) ?? 0) + 1))
    return counts
  })
}

/**
 * Resolves once every app's subscriber connection got a message published
 * now on a test channel: Redis delivers one connection's messages in publish
 * order, so everything published before has reached every app by then.
 */
async function pubsubBarrier(stack: Stack, apps: FastifyInstance[]): Promise<void> {
  const channel = `sb:test:barrier:${Date.now()}`
  const arrived: Promise<void>[] = []
  const stops: (() => Promise<void>)[] = []
  for (const app of apps) {
    let resolve!: () => void
    arrived.push(new Promise((r) => (resolve = r)))
    stops.push(await app.pubsub.subscribe(channel, () => resolve()))
  }
  await stack.chatServers[0]!.app.redis.commands.publish(channel, 'barrier')
  await Promise.all(arrived)
  await Promise.all(stops.map((stop) => stop()))
}

const MESSAGES_PER_SIDE = 10

interface PlacedChat {
  index: number
  visitor: Visitor
  agent: Agent
  user: { socket: TestSocket; on: RunningApp; v2: boolean }
  support: { socket: TestSocket; on: RunningApp; v2: boolean }
  supportId: string
  label: string
}

t.test('2 ChatServers + 2 Subscribers, 50 visitors and 10 agents placed at random', async (t) => {
  const rng = rngFor(1)
  const stack = await startStack(t, { chatServers: 2, subscribers: 2, env: ENV })
  const chatApps = stack.chatServers.map((s) => s.app)
  const allApps = [...chatApps, ...stack.subscribers.map((s) => s.app)]
  // Before any socket: what each ChatServer listens to regardless of chats (the queue channel).
  const baseline = chatApps.map((app) => app.pubsub.channelCount)
  const traffic = countChannelTraffic(allApps)

  const agents = await Promise.all(range(10).map((i) => agentNamed(stack, i)))
  const agentSockets = await Promise.all(
    agents.map(async (agent) => {
      const on = rng.pick(stack.subscribers)
      const v2 = rng.bool()
      return { agent, on, v2, socket: await usersSocket(stack, agent, on, v2) }
    }),
  )

  const placements = range(50).map((i) => ({
    i,
    registerOn: rng.pick(stack.chatServers),
    userOn: rng.pick(stack.chatServers),
    userV2: rng.bool(),
    supportOn: rng.pick(stack.chatServers),
    supportV2: rng.bool(),
  }))
  const visitors = await Promise.all(placements.map((p) => queuedVisitor(stack, `Visitor ${p.i}`, p.registerOn, p.userOn, p.userV2)))

  // Five visitors per agent: MAX_CHATS_PER_AGENT (5) exactly, so every claim must succeed.
  const owner = new Map<number, number>()
  rng.shuffle(range(50)).forEach((v, k) => owner.set(v, Math.floor(k / 5)))

  // Every agent sends its five claims at once; frames of one socket are answered in turn.
  await Promise.all(
    agentSockets.map(async ({ agent, socket }, a) => {
      const mine = range(50).filter((v) => owner.get(v) === a)
      for (const v of mine) socket.send(joinUser(visitors[v]!))
      for (const v of mine) {
        const answer = await socket.next((m) => isRemoveUser(visitors[v]!)(m) || isError()(m))
        t.equal(answer.text, removeUserText(visitors[v]!), `${agent.id} claims visitor ${v}: RemoveUser is the answer`)
      }
    }),
  )

  // Each agent opens each of its chats on a random ChatServer (not necessarily the visitor's).
  const chats: PlacedChat[] = await Promise.all(
    placements.map(async (p) => {
      const visitor = visitors[p.i]!
      const { agent } = agentSockets[owner.get(p.i)!]!
      const socket = await stack.socket(`${p.supportOn.ws}/chat/${visitor.chatId}`, 'pong:support', { token: agent.token, v2: p.supportV2 })
      socket.send({ type: 'Join', args: { userId: visitor.userId, username: visitor.username, supportUserName: agent.name, from: 'Support' } })
      const joined = await socket.next((m) => m.json?.type === 'SupportJoinedUser' || isError()(m))
      const label = `chat ${p.i} (visitor ${where(stack, p.userOn, p.userV2)}, ${agent.id} ${where(stack, p.supportOn, p.supportV2)})`
      t.equal(joined.json?.type, 'SupportJoinedUser', `${label}: the agent's Join is answered SupportJoinedUser (got ${joined.text})`)
      const atUser = await visitor.socket.nextOfType('SupportJoinedUser')
      t.equal(atUser.text, joined.text, `${label}: the visitor gets the same SupportJoinedUser across instances`)
      return {
        index: p.i,
        visitor,
        agent,
        user: { socket: visitor.socket, on: p.userOn, v2: p.userV2 },
        support: { socket, on: p.supportOn, v2: p.supportV2 },
        supportId: joined.json.args.supportId as string,
        label,
      }
    }),
  )

  await t.test('every message arrives once at both sides, in each sender order, seq contiguous on v2', async (t) => {
    const content = (c: PlacedChat, from: 'User' | 'Support', k: number) => `${from === 'User' ? 'u' : 's'}${k} chat ${c.index}`
    const frame = (c: PlacedChat, from: 'User' | 'Support', k: number | 'end') => {
      const side = from === 'User' ? c.user : c.support
      const text = k === 'end' ? `end chat ${c.index}` : content(c, from, k)
      const clientMessageId = side.v2 ? { clientMessageId: `${from}-${k}` } : {}
      return { type: 'ChatMessage', args: { userId: c.visitor.userId, supportId: c.supportId, content: text, from, ...clientMessageId } }
    }
    // All 50 chats at once, both sides interleaved, nobody waiting for anybody.
    for (let k = 0; k < MESSAGES_PER_SIDE; k++) {
      for (const c of chats) {
        c.user.socket.send(frame(c, 'User', k))
        c.support.socket.send(frame(c, 'Support', k))
      }
    }
    const total = 2 * MESSAGES_PER_SIDE
    const take = async (socket: TestSocket, n: number) => {
      const got: Received[] = []
      for (let i = 0; i < n; i++) got.push(await socket.nextOfType('ChatMessage', 10_000))
      return got
    }
    await Promise.all(
      chats.map(async (c) => {
        await Promise.all([take(c.user.socket, total), take(c.support.socket, total)])
        // A last message once both have the 20: anything duplicated would have come before it.
        c.user.socket.send(frame(c, 'User', 'end'))
        await Promise.all([c.user.socket, c.support.socket].map((s) => s.next((m) => m.json?.type === 'ChatMessage' && m.json.args.content === `end chat ${c.index}`)))
      }),
    )

    let wrong = 0
    for (const c of chats) {
      const orders: string[][] = []
      for (const [side, party] of [
        [c.user, 'visitor'],
        [c.support, 'agent'],
      ] as const) {
        const got = side.socket.received.filter((m) => m.json?.type === 'ChatMessage')
        const what = `${c.label}, at the ${party}`
        const contents = got.map((m) => m.json.args.content as string)
        const fromUser = got.filter((m) => m.json.args.from === 'User').map((m) => m.json.args.content)
        const fromSupport = got.filter((m) => m.json.args.from === 'Support').map((m) => m.json.args.content)
        const checks = [
          t.equal(got.length, total + 1, `${what}: ${total + 1} ChatMessages, no more (got ${got.length})`),
          t.same(new Set(contents).size, contents.length, `${what}: no message twice`),
          t.same(fromUser, [...range(MESSAGES_PER_SIDE).map((k) => content(c, 'User', k)), `end chat ${c.index}`], `${what}: the visitor's messages, once each, in the order sent`),
          t.same(fromSupport, range(MESSAGES_PER_SIDE).map((k) => content(c, 'Support', k)), `${what}: the agent's messages, once each, in the order sent`),
          side.v2
            ? t.same(got.map((m) => m.json.args.seq), range(total + 1).map((i) => i + 1), `${what}: seq 1..${total + 1} without gaps or repeats`)
            : t.ok(got.every((m) => m.json.args.seq === undefined && m.json.args.messageId === undefined), `${what}: a v1 socket sees no seq or messageId`),
          t.same(side.socket.received.filter(isError()).map((m) => m.text), [], `${what}: no Error frame`),
        ]
        if (side.v2) {
          const acks = side.socket.received.filter((m) => m.json?.type === 'Ack')
          const from = party === 'visitor' ? 'User' : 'Support'
          const sent = party === 'visitor' ? [...range(MESSAGES_PER_SIDE), 'end'] : range(MESSAGES_PER_SIDE)
          checks.push(t.same(acks.map((m) => m.json.args.clientMessageId), sent.map((k) => `${from}-${k}`), `${what}: one Ack per message, in order`))
        }
        if (checks.some((ok) => !ok)) wrong++
        orders.push(contents)
      }
      t.same(orders[0], orders[1], `${c.label}: both sides got the messages in the same order`)
    }
    t.equal(wrong, 0, `every one of the ${2 * chats.length} chat sockets got each message once and in order`)
  })

  await t.test('fan-out: a chat frame reaches only the instances that hold one of its participants', async (t) => {
    const holders = (c: PlacedChat) => new Set([c.user.on, c.support.on].map((on) => stack.chatServers.indexOf(on)))
    const sameInstance = chats.filter((c) => holders(c).size === 1)
    t.ok(
      stack.chatServers.every((_, i) => sameInstance.some((c) => holders(c).has(i))),
      `the placement has chats with both participants on CS0 and on CS1 (seed ${SEED}), so the check below can fail`,
    )

    // What each ChatServer subscribed to: the chats it has a socket of, nothing more.
    for (const [i, app] of chatApps.entries()) {
      const here = chats.filter((c) => holders(c).has(i)).length
      t.ok(here < chats.length, `CS${i} holds ${here} of ${chats.length} chats, not all`)
      t.equal(app.pubsub.channelCount - baseline[i]!, here, `CS${i} listens to the channels of the ${here} chats it holds sockets of`)
    }
    // Redis's view: each chat channel has one subscriber connection per instance holding a participant.
    const redis = stack.chatServers[0]!.app.redis.commands
    const numsub = (await redis.call('PUBSUB', 'NUMSUB', ...chats.map((c) => channels.chat(c.visitor.chatId)))) as (string | number)[]
    const subscribers = chats.map((_, k) => Number(numsub[2 * k + 1]))
    t.same(subscribers, chats.map((c) => holders(c).size), 'PUBSUB NUMSUB: every chat channel has exactly as many subscribers as instances holding a participant')
    const chatChannels = ((await redis.call('PUBSUB', 'CHANNELS', channels.chat('*'))) as string[]).sort()
    t.same(chatChannels, chats.map((c) => channels.chat(c.visitor.chatId)).sort(), 'PUBSUB CHANNELS: exactly the 50 chats are subscribed to')

    // What Redis actually delivered to each instance's pub/sub connection, by chat.
    await pubsubBarrier(stack, allApps)
    const labelOf = new Map(chats.map((c) => [channels.chat(c.visitor.chatId), c.label]))
    const chatsHeard = (k: number) =>
      [...traffic[k]!.keys()].filter((ch) => ch.startsWith(channels.chat(''))).map((ch) => labelOf.get(ch) ?? ch).sort()
    for (const [i] of chatApps.entries()) {
      const expected = chats.filter((c) => holders(c).has(i)).map((c) => c.label).sort()
      t.same(chatsHeard(i), expected, `CS${i} received the frames of its own chats only`)
    }
    for (const [i] of stack.subscribers.entries()) t.same(chatsHeard(chatApps.length + i), [], `SUB${i} received no chat frames`)
    const split = chats.filter((c) => holders(c).size === 2)
    t.ok(split.length > 0, 'some chats have their participants on two instances')
    for (const c of split) {
      const ch = channels.chat(c.visitor.chatId)
      t.equal(traffic[0]!.get(ch), traffic[1]!.get(ch), `${c.label}: both instances got all ${traffic[0]!.get(ch)} of its frames`)
    }
  })
})

t.test('100 agents on both Subscribers claim one visitor at once: exactly one winner, every round', async (t) => {
  const rng = rngFor(2)
  const ROUNDS = 4
  const stack = await startStack(t, { chatServers: 1, subscribers: 2, env: ENV })
  const redis = stack.chatServers[0]!.app.redis.commands
  const agents = await Promise.all(range(100).map((i) => agentNamed(stack, i, 'racer')))
  const racers = await Promise.all(
    agents.map(async (agent) => {
      const on = rng.pick(stack.subscribers)
      const v2 = rng.bool()
      const socket = await usersSocket(stack, agent, on, v2)
      return { agent, socket, label: `${agent.id} (${where(stack, on, v2)})` }
    }),
  )
  // Every racer listens to the queue, so every one must hear RemoveUser, winner or not.
  await Promise.all(racers.map((r) => load(r.socket)))

  const raced: Visitor[] = []
  const winners: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const visitor = await stack.waitingVisitor(`Prize ${round}`)
    raced.push(visitor)
    await Promise.all(racers.map((r) => r.socket.next(isUserJoined(visitor))))

    // All at once, in a random order; the marker behind each claim is answered after the claim's own answer.
    for (const r of rng.shuffle(racers)) {
      r.socket.send(joinUser(visitor))
      r.socket.send({ type: 'Marker' })
    }
    const outcomes = await Promise.all(
      racers.map(async (r) => {
        const first = await r.socket.next(isError())
        if (first.json.args.code === 'UNKNOWN_TYPE') return { r, answer: null }
        await r.socket.next(isError('UNKNOWN_TYPE'))
        return { r, answer: first.text }
      }),
    )
    await Promise.all(racers.map((r) => r.socket.next(isRemoveUser(visitor))))

    const won = outcomes.filter((o) => o.answer === null)
    const lost = outcomes.filter((o) => o.answer !== null)
    t.equal(won.length, 1, `round ${round}: exactly one claim succeeded (winners: ${won.map((o) => o.r.label).join(', ') || 'none'})`)
    t.equal(lost.length, 99, `round ${round}: 99 claims lost`)
    const wrongAnswers = lost.filter((o) => o.answer !== ALREADY_CLAIMED)
    t.same(wrongAnswers.map((o) => `${o.r.label}: ${o.answer}`), [], `round ${round}: every loser got ALREADY_CLAIMED, exact bytes`)
    const winner = won[0]?.r.agent.id
    winners.push(winner ?? '(none)')
    const [claimedBy, state] = await redis.hmget(keys.chat(visitor.chatId), 'claimedBy', 'state')
    t.equal(claimedBy, winner, `round ${round}: the claim record in Redis names the winner`)
    t.equal(state, 'claimed', `round ${round}: the chat is claimed`)
    const holding = (await Promise.all(agents.map((a) => redis.sismember(keys.agentChats(a.id), visitor.chatId)))).flatMap((n, i) => (n ? [agents[i]!.id] : []))
    t.same(holding, winner === undefined ? [] : [winner], `round ${round}: only the winner holds a seat for this chat`)
    t.equal(await redis.zscore(keys.queue, visitor.chatId), null, `round ${round}: the visitor left the queue`)
  }
  t.comment(`winners: ${winners.join(', ')}`)

  // A later visitor: every queue event before it has reached every racer, so a second RemoveUser would show.
  const last = await stack.waitingVisitor('Last')
  await Promise.all(racers.map((r) => r.socket.next(isUserJoined(last))))
  const expected = [...raced.flatMap((v) => [`UserJoined ${v.userId}`, `RemoveUser ${v.userId}`]), `UserJoined ${last.userId}`]
  const wrong = racers.filter((r) => {
    const events = r.socket.received
      .filter((m) => m.json?.type === 'UserJoined' || m.json?.type === 'RemoveUser')
      .map((m) => `${m.json.type} ${m.json.args.userId}`)
    return !t.same(events, expected, `${r.label}: each visitor joined, then removed exactly once, in that order`)
  })
  t.equal(wrong.length, 0, 'all 100 sockets got RemoveUser exactly once per raced visitor')
  const removeTexts = new Set(racers.flatMap((r) => r.socket.received.filter((m) => m.json?.type === 'RemoveUser').map((m) => m.text)))
  t.same(removeTexts, new Set(raced.map(removeUserText)), 'RemoveUser has the same bytes for v1 and v2 sockets')
})

t.test('visitors join and are claimed through every instance at once: both Subscribers show one FIFO queue', async (t) => {
  const rng = rngFor(3)
  // No seat limit: the claims here are about the queue, not capacity.
  const stack = await startStack(t, { chatServers: 2, subscribers: 2, env: { ...ENV, MAX_CHATS_PER_AGENT: '0' } })
  const redis = stack.chatServers[0]!.app.redis.commands

  // Watchers: one v1 and one v2 on each Subscriber, loaded before anyone joins.
  const watchers = await Promise.all(
    [0, 1].flatMap((s) => [false, true].map((v2) => ({ s, v2 }))).map(async ({ s, v2 }, i) => {
      const agent = await agentNamed(stack, i, 'watcher')
      const on = stack.subscribers[s]!
      const socket = await usersSocket(stack, agent, on, v2)
      return { socket, v2, label: `watcher ${where(stack, on, v2)}` }
    }),
  )
  for (const w of watchers) t.same(await load(w.socket), [], `${w.label}: the queue starts empty`)

  // Claimers (not loaded: a claim is answered RemoveUser or Error directly), two per Subscriber.
  const claimers = await Promise.all(
    range(4).map(async (i) => {
      const agent = await agentNamed(stack, i, 'claimer')
      const on = stack.subscribers[i % 2]!
      const v2 = rng.bool()
      const socket = await usersSocket(stack, agent, on, v2)
      // An Error names no visitor: one claim at a time per socket, so each answer is known to be whose.
      let turn = Promise.resolve()
      const claim = (v: Visitor): Promise<Received> => {
        const answer = turn.then(() => {
          socket.send(joinUser(v))
          return socket.next((m) => isRemoveUser(v)(m) || isError()(m))
        })
        turn = answer.then(() => {}, () => {})
        return answer
      }
      return { claim, label: `${agent.id} (${where(stack, on, v2)})` }
    }),
  )

  const N = 40
  const claimed = new Set<string>()
  const problems: string[] = []
  // Drawn up front: the draws then do not depend on which visitor gets in first.
  const plans = range(N).map(() => ({
    registerOn: rng.pick(stack.chatServers),
    socketOn: rng.pick(stack.chatServers),
    v2: rng.bool(),
    // One claimer on each Subscriber.
    pair: [claimers[rng.int(2) * 2]!, claimers[rng.int(2) * 2 + 1]!],
  }))
  const visitors = await Promise.all(
    range(N).map(async (i) => {
      const { registerOn, socketOn, v2, pair } = plans[i]!
      const v = await queuedVisitor(stack, `Q${i}`, registerOn, socketOn, v2)
      // Every third visitor is claimed right away, while others are still joining, by two agents at once.
      if (i % 3 !== 0) return v
      const answers = await Promise.all(pair.map((c) => c.claim(v)))
      const wins = answers.filter((m) => m.text === removeUserText(v)).length
      const losses = answers.filter((m) => m.text === ALREADY_CLAIMED).length
      if (wins !== 1 || losses !== 1) problems.push(`Q${i}: ${answers.map((m, k) => `${pair[k]!.label} got ${m.text}`).join(' / ')}`)
      claimed.add(v.userId)
      return v
    }),
  )
  t.same(problems, [], 'each visitor claimed by two agents at once has one winner and one ALREADY_CLAIMED')

  // A last visitor: every queue event before it has reached every watcher once its UserJoined has.
  const last = await stack.waitingVisitor('Last', stack.chatServers[1])
  await Promise.all(watchers.map((w) => w.socket.next(isUserJoined(last))))

  const streamOf = (socket: TestSocket) =>
    socket.received.filter((m) => m.json?.type === 'UserJoined' || m.json?.type === 'RemoveUser').map((m) => ({ type: m.json.type as string, ...m.json.args }))
  const streams = watchers.map((w) => streamOf(w.socket))
  const asText = (s: ReturnType<typeof streamOf>) => s.map((e) => `${e.type} ${e.userId}`)
  t.equal(streams[0]!.length, N + 1 + claimed.size, `the stream has ${N + 1} joins and ${claimed.size} removals`)
  for (const [i, w] of watchers.entries()) {
    t.same(asText(streams[i]!), asText(streams[0]!), `${w.label} saw the same queue events, in the same order, as ${watchers[0]!.label}`)
  }

  // The queue each watcher built from its stream: FIFO by order.
  const v2Stream = streams[watchers.findIndex((w) => w.v2)]!
  const orderOf = new Map(v2Stream.filter((e) => e.type === 'UserJoined').map((e) => [e.userId as string, e.order as number]))
  const joinOrders = v2Stream.filter((e) => e.type === 'UserJoined').map((e) => e.order as number)
  t.ok(
    joinOrders.every((o, i) => i === 0 || o > joinOrders[i - 1]!),
    `UserJoined events come in ascending order (${joinOrders.join(',')})`,
  )
  const built = streams.map((stream) => {
    const queue: string[] = []
    for (const e of stream) {
      if (e.type === 'UserJoined') queue.push(e.userId as string)
      else if (queue.includes(e.userId as string)) queue.splice(queue.indexOf(e.userId as string), 1)
    }
    return queue
  })
  const expected = [...visitors.filter((v) => !claimed.has(v.userId)), last].map((v) => v.userId).sort((a, b) => orderOf.get(a)! - orderOf.get(b)!)
  for (const [i, w] of watchers.entries()) t.same(built[i], expected, `${w.label}: the queue built from the stream is the unclaimed visitors, first come first`)

  // A fresh Load on each Subscriber, v1 and v2: the same list.
  const loads = await Promise.all(
    watchers.map(async (w, i) => {
      const agent = await agentNamed(stack, i, 'loader')
      const socket = await usersSocket(stack, agent, stack.subscribers[Math.floor(i / 2)]!, w.v2)
      return { label: w.label.replace('watcher', 'Load on'), v2: w.v2, entries: (await load(socket)).map((m) => m.json) }
    }),
  )
  for (const l of loads) t.same(l.entries.map((e) => e.userId), expected, `${l.label}: the unclaimed visitors, first come first`)
  for (const l of loads.filter((x) => x.v2)) {
    const orders = l.entries.map((e) => e.order as number)
    t.same(orders, expected.map((id) => orderOf.get(id)), `${l.label}: each entry carries the order its UserJoined had`)
    const since = l.entries.map((e) => Date.parse(e.since))
    t.ok(since.every((s, i) => i === 0 || s >= since[i - 1]!), `${l.label}: since never goes backwards along the queue`)
  }
  const queued = await redis.zrange(keys.queue, 0, -1)
  const chatIdOf = new Map([...visitors, last].map((v) => [v.userId, v.chatId]))
  t.same(queued, expected.map((id) => chatIdOf.get(id)), 'the queue in Redis is that same list')
})
