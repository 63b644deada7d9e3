import t from 'tap'
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import {
  appendMessage,
  channels,
  keys,
  queueRemovedEvent,
  claimVisitor,
  createChat,
  endChat,
  enqueueVisitor,
  holdChat,
  joinSupport,
  markReceipt,
  releaseChat,
  renewPresence,
  scriptFiles,
  scriptSources,
  setAgentStatus,
  sweepExpired,
  sweepPresence,
  touchWaiting,
  transferChat,
  waitingVisitorGone,
  waitingVisitorHere,
  warnExpiring,
  type ScriptName,
} from '@switchboard/domain'
import { startRedis, connectedRedis, redisNow, redisClockPast } from '@switchboard/testing'

/*
 * Every key a script touches is one it was given in KEYS (what Redis Cluster
 * needs to route it, and what lets keys move to other slots later). Checked
 * over a real redis-server with MONITOR: it shows each EVALSHA / EVAL with
 * its KEYS, then each command the script ran (source "lua"); Redis itself
 * says which arguments of each of those are keys (COMMAND GETKEYS). A script
 * that builds a key name (as the seats code did with agent ids) fails here.
 */

const LONG = { chatTtlMs: 60_000 }
const SHORT = { chatTtlMs: 150 }

interface Call {
  name: ScriptName | string
  declared: Set<string>
  touched: string[]
}

async function keysOf(redis: Redis, args: string[]): Promise<string[]> {
  try {
    return (await redis.call('COMMAND', 'GETKEYS', ...args)) as string[]
  } catch (err) {
    if (/no key arguments|wrong number of arguments for 'command\|getkeys'/.test(String(err))) return []
    throw err
  }
}

t.test('every script touches only the keys it is given in KEYS', async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const conn = await connectedRedis(t, server.url)
  const redis = conn.commands
  const monitor = await redis.monitor()
  monitor.on('error', () => {})
  const lines: { source: string; args: string[] }[] = []
  let marker: (() => void) | undefined
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1] === 'script-keys:done') marker?.()
    else lines.push({ source, args })
  })

  // Every script at least once, along the paths that touch an agent's keys.
  await renewPresence(redis, { agentId: 'a1', name: 'Ann' }, 'i1', 60_000)
  await renewPresence(redis, { agentId: 'a2', name: 'Bob' }, 'i1', 60_000)
  await setAgentStatus(redis, 'a2', 'away')
  await setAgentStatus(redis, 'a2', 'online')
  const visitor = await createChat(redis, 'Nika', LONG)
  await enqueueVisitor(redis, visitor, LONG)
  await waitingVisitorHere(redis, visitor.chatId, 'i1')
  await touchWaiting(redis, [visitor.chatId], LONG)
  await waitingVisitorGone(redis, visitor.chatId, 'i1', 30_000)
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 5)
  const { supportId } = await joinSupport(redis, visitor, 'Ann', LONG, 'a1', 5)
  await holdChat(redis, visitor.chatId, 'i1')
  await appendMessage(redis, { chatId: visitor.chatId, userId: visitor.userId, supportId, content: 'hi', from: 'User', clientMessageId: 'c1' }, { ...LONG, holder: 'i1' })
  await appendMessage(redis, { chatId: visitor.chatId, userId: visitor.userId, supportId, content: 'hello', from: 'Support', agentId: 'a1' }, LONG)
  await releaseChat(redis, visitor.chatId, 'i1')
  await markReceipt(redis, visitor.chatId, 'support', 'read', 1)
  t.equal(await warnExpiring(redis, 120_000), 1, 'warned')
  await transferChat(redis, visitor.chatId, 'a1', 'a2', { ...LONG, maxChats: 5 })
  await transferChat(redis, visitor.chatId, 'a2', null, { ...LONG, maxChats: 5 })
  // Joined by a1 straight from the queue (a seat taken by the join), then ended: the seat is freed.
  await joinSupport(redis, visitor, 'Ann', LONG, 'a1', 5)
  t.equal(await endChat(redis, visitor.chatId, 'Support', 'done'), true, 'ended')
  // A chat an agent holds expires: the seat is freed.
  const short = await createChat(redis, 'Short', SHORT)
  await enqueueVisitor(redis, short, SHORT)
  await claimVisitor(redis, short.chatId, short.userId, 'a2', 5)
  await redisClockPast(redis, (await redisNow(redis)) + 200)
  t.equal(await sweepExpired(redis), 1, 'expired')
  // An anonymous agent's lease runs out: its record goes.
  await renewPresence(redis, { agentId: 'anon', name: 'Agent', anonymous: true }, 'i1', 1)
  await redisClockPast(redis, (await redisNow(redis)) + 5)
  t.equal(await sweepPresence(redis), 1, 'swept')

  const arrived = new Promise<void>((resolve) => (marker = resolve))
  await redis.echo('script-keys:done')
  await arrived
  monitor.disconnect()

  // An EVALSHA names its script by sha; MONITOR shows an EVAL's source escaped, so it is known by its first line.
  const bySha = new Map<string, ScriptName>()
  const byFirstLine = new Map<string, ScriptName>()
  for (const name of Object.keys(scriptFiles) as ScriptName[]) {
    bySha.set(createHash('sha1').update(scriptSources[name]).digest('hex'), name)
    byFirstLine.set(scriptSources[name].split('\n')[0]!.slice(0, 40), name)
  }
  t.equal(byFirstLine.size, Object.keys(scriptFiles).length, 'each script has a first line of its own')
  const calls: Call[] = []
  for (const { source, args } of lines) {
    const command = args[0]!.toLowerCase()
    if (source !== 'lua') {
      if (command !== 'evalsha' && command !== 'eval') continue
      const name =
        command === 'evalsha' ? bySha.get(args[1]!) : [...byFirstLine].find(([line]) => args[1]!.startsWith(line))?.[1]
      const n = Number(args[2])
      calls.push({ name: name ?? `unknown script ${args[1]!.slice(0, 60)}`, declared: new Set(args.slice(3, 3 + n)), touched: [] })
      continue
    }
    const call = calls.at(-1)
    if (call === undefined) {
      t.fail('a script command before any script call', { args })
      continue
    }
    call.touched.push(...(await keysOf(redis, args)))
  }

  const ran = new Set(calls.filter((c) => c.touched.length > 0).map((c) => c.name))
  t.same([...ran].sort(), Object.keys(scriptFiles).sort(), 'every script ran and touched keys')
  let undeclared = 0
  for (const call of calls) {
    for (const key of call.touched) {
      if (!call.declared.has(key)) {
        undeclared++
        t.fail(`${call.name} touched ${key}, not in its KEYS`, { declared: [...call.declared] })
      }
    }
  }
  t.equal(undeclared, 0, 'no script touched a key it was not given')
  // The check sees agent keys at all (a seat taken, freed, a record deleted).
  const touchedAll = calls.flatMap((c) => c.touched)
  t.ok(touchedAll.includes('{sb}:agent-chats:a1'), "a1's seats were touched")
  t.ok(touchedAll.includes('{sb}:agent:anon'), "the anonymous agent's record was deleted")
})

t.test("a script that frees a seat, given an owner who is not the chat's any more, answers 'retry' and changes nothing", async (t) => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const { commands: redis } = await connectedRedis(t, server.url)
  await renewPresence(redis, { agentId: 'a1', name: 'Ann' }, 'i1', 60_000)
  const visitor = await createChat(redis, 'Nika', LONG)
  await enqueueVisitor(redis, visitor, LONG)
  await claimVisitor(redis, visitor.chatId, visitor.userId, 'a1', 5)
  const { chatId } = visitor
  const before = await redis.hgetall(keys.chat(chatId))
  const stale = await redis.sbEndChat(
    keys.chat(chatId), keys.queue, keys.deadlines, keys.agentChats('a2'),
    chatId, 'Support', '', channels.chat(chatId), 'all:v2|{}', channels.queue, channels.agents, 'a2', queueRemovedEvent(chatId, visitor.userId),
  )
  t.equal(stale, 'retry', 'end: retry')
  const none = await redis.sbEndChat(
    keys.chat(chatId), keys.queue, keys.deadlines, keys.agentChats(''),
    chatId, 'Support', '', channels.chat(chatId), 'all:v2|{}', channels.queue, channels.agents, '', queueRemovedEvent(chatId, visitor.userId),
  )
  t.equal(none, 'retry', 'end, read as held by nobody: retry')
  t.same(await redis.hgetall(keys.chat(chatId)), before, 'the chat is as it was')
  t.same(await redis.smembers(keys.agentChats('a1')), [chatId], "a1's seat is still taken")
  // The domain function reads the owner itself: it ends the chat and frees a1's seat.
  t.equal(await endChat(redis, chatId, 'Support', null), true)
  t.same(await redis.smembers(keys.agentChats('a1')), [], "a1's seat is free")

  // Expiry likewise.
  const short = await createChat(redis, 'Short', SHORT)
  await enqueueVisitor(redis, short, SHORT)
  await claimVisitor(redis, short.chatId, short.userId, 'a1', 5)
  await redisClockPast(redis, (await redisNow(redis)) + 200)
  const expired = await redis.sbExpire(
    keys.deadlines, keys.chat(short.chatId), keys.messages(short.chatId), keys.queue, keys.clientIds(short.chatId), keys.receipts(short.chatId),
    keys.agentChats('a2'), short.chatId, channels.chat(short.chatId), 'all|{}', channels.queue, channels.agents, 'a2', queueRemovedEvent(short.chatId, short.userId),
  )
  t.equal(expired, 'retry', 'expire: retry')
  t.equal(await redis.exists(keys.chat(short.chatId)), 1, 'not expired')
  t.equal(await sweepExpired(redis), 1, 'the sweep expires it')
  t.same(await redis.smembers(keys.agentChats('a1')), [], "and frees a1's seat")
})
