import type { Redis } from 'ioredis'
import {
  ProtocolError,
  encode,
  encodeV2,
  type AgentPresence,
  type AgentStatus,
  type MyChat,
  type QueuePositionArgs,
} from '@switchboard/protocol'
import { channels, keys } from './keys.js'
import { agentFrameEvent, envelope, queueJoinedParts } from './events.js'
import { keyGraceMs, newId, type ExpiryOptions } from './chats.js'
import { throwRefusal } from './replies.js'
import { redisMillis } from './time.js'

/**
 * Agents: presence (leases renewed by the Subscriber instances holding their
 * sockets), status, seats (the chats each holds), transfers, and what the
 * queue's pace says about waiting. See docs/agent-workflow.md.
 */

/** An agent as the presence registry knows them. */
export interface AgentRecord extends AgentPresence {
  /** A socket without a token (AGENT_AUTH=off): counted, never listed. */
  anonymous: boolean
}

/** How long an agent's record outlives their last lease, unless told otherwise (AGENT_FORGET_AFTER_SECONDS). */
const DEFAULT_FORGET_AFTER_MS = 86_400_000

/**
 * Renews `instanceId`'s lease on the agent's presence for `leaseMs`, and the
 * agent's record for `forgetAfterMs` past the lease. Returns true when the
 * agent came online with it (everyone is told).
 */
export async function renewPresence(
  redis: Redis,
  agent: { agentId: string; name: string; anonymous?: boolean },
  instanceId: string,
  leaseMs: number,
  forgetAfterMs = DEFAULT_FORGET_AFTER_MS,
): Promise<boolean> {
  const cameOnline = await redis.sbPresenceRenew(
    keys.agentSessions(agent.agentId),
    keys.agent(agent.agentId),
    keys.agentsOnline,
    agent.agentId,
    instanceId,
    Math.round(leaseMs),
    agent.name,
    agent.anonymous ? '1' : '',
    channels.agents,
    Math.round(forgetAfterMs),
  )
  return cameOnline === 1
}

/** Agents whose presence is looked at per sweep at most; the next sweep takes the rest. */
const PRESENCE_SWEEP_BATCH = 200

/**
 * Takes agents whose leases all ran out offline (announced once, whoever
 * sweeps). Returns how many. The agents whose lease ran out are read first,
 * and the script is given their keys; it leaves alone any renewed since.
 */
export async function sweepPresence(redis: Redis): Promise<number> {
  const now = redisMillis(await redis.time())
  const due = await redis.zrangebyscore(keys.agentsOnline, '-inf', now, 'LIMIT', 0, PRESENCE_SWEEP_BATCH)
  if (due.length === 0) return 0
  const agentKeys = due.flatMap((id) => [keys.agentSessions(id), keys.agent(id), keys.agentChats(id)])
  return redis.sbPresenceSweep(1 + agentKeys.length, keys.agentsOnline, ...agentKeys, channels.agents, ...due)
}

/**
 * Sets an agent's status on every device. Returns false when it was that
 * already. An agent without a record (never online, or forgotten) gets one
 * that lives `forgetAfterMs`, until a lease renewal takes it over.
 */
export async function setAgentStatus(redis: Redis, agentId: string, status: AgentStatus, forgetAfterMs = DEFAULT_FORGET_AFTER_MS): Promise<boolean> {
  return (await redis.sbSetStatus(keys.agent(agentId), agentId, status, channels.agents, Math.round(forgetAfterMs))) === 1
}

/** Every agent online now (anonymous ones included, flagged), sorted by name, then agentId. */
export async function listAgents(redis: Redis): Promise<AgentRecord[]> {
  const [[, leases], [, time]] = (await redis.multi().zrange(keys.agentsOnline, 0, -1, 'WITHSCORES').time().exec()) as [
    [null, string[]],
    [null, string[]],
  ]
  const now = redisMillis(time)
  const ids: string[] = []
  for (let i = 0; i < leases.length; i += 2) if (Number(leases[i + 1]) > now) ids.push(leases[i]!)
  if (ids.length === 0) return []
  const pipeline = redis.pipeline()
  for (const id of ids) pipeline.hmget(keys.agent(id), 'name', 'status', 'anonymous').scard(keys.agentChats(id))
  const results = (await pipeline.exec()) ?? []
  const agents = ids.map((agentId, i): AgentRecord => {
    const [err, fields] = results[2 * i] as [Error | null, (string | null)[]]
    if (err) throw err
    const [name, status, anonymous] = fields
    return {
      agentId,
      name: name ?? agentId,
      status: status === 'away' ? 'away' : 'online',
      activeChats: Number((results[2 * i + 1] as [null, number])[1]),
      anonymous: anonymous === '1',
    }
  })
  return agents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0))
}

/** The chats an agent holds (claimed or joined, not ended), oldest first, with what they have not read. */
export async function listMyChats(redis: Redis, agentId: string): Promise<MyChat[]> {
  const chatIds = await redis.smembers(keys.agentChats(agentId))
  if (chatIds.length === 0) return []
  const pipeline = redis.pipeline()
  for (const chatId of chatIds) {
    pipeline.hmget(keys.chat(chatId), 'userId', 'username', 'state', 'assignedAt', 'agentId', 'claimedBy')
    pipeline.hmget(keys.receipts(chatId), 'sent:User', 'readn:support')
  }
  pipeline.zmscore(keys.deadlines, ...chatIds)
  pipeline.time()
  const results = (await pipeline.exec()) ?? []
  const now = redisMillis((results.at(-1) as [null, string[]])[1])
  const deadlines = (results.at(-2) as [null, (string | null)[]])[1]
  const chats: (MyChat & { at: number })[] = []
  chatIds.forEach((chatId, i) => {
    const [err, fields] = results[2 * i] as [Error | null, (string | null)[]]
    if (err) throw err
    const [userId, username, state, assignedAt, owner, claimedBy] = fields
    const deadline = deadlines[i]
    // A chat that expired and is not swept yet, or that moved on, is not held.
    if (!userId || state === 'ended' || deadline == null || Number(deadline) <= now || (owner ?? claimedBy) !== agentId) return
    const [sent, read] = (results[2 * i + 1] as [null, (string | null)[]])[1]
    const at = Number(assignedAt ?? now)
    chats.push({ chatId, userId, username: username ?? '', since: new Date(at).toISOString(), unread: Number(sent ?? 0) - Number(read ?? 0), at })
  })
  // assignedAt has microseconds: two claims of one millisecond keep their order.
  return chats.sort((a, b) => a.at - b.at || (a.chatId < b.chatId ? -1 : 1)).map(({ at: _at, ...chat }) => chat)
}

export interface TransferOptions extends ExpiryOptions {
  /** The receiving agent's seats (0: no limit). */
  maxChats: number
}

/**
 * Hands a chat the agent `fromAgentId` holds to `toAgentId` (online, not
 * away, with a free seat), or with null back to the head of the queue. The
 * old agent's sockets on the chat are told and close; the visitor gets
 * SupportJoinedUser for the new agent, or UserJoined when queued again.
 */
export async function transferChat(
  redis: Redis,
  chatId: string,
  fromAgentId: string,
  toAgentId: string | null,
  opts: TransferOptions,
): Promise<void> {
  const chat = await redis.hmget(keys.chat(chatId), 'userId', 'username')
  const [userId, username] = chat
  if (!userId) throw new ProtocolError('NOT_ASSIGNED')
  const visitor = { username: username ?? '', userId, chatId }
  const toName = toAgentId === null ? '' : ((await redis.hget(keys.agent(toAgentId), 'name')) ?? toAgentId)
  const supportId = newId()
  const visitorFrame =
    toAgentId === null
      ? envelope('user', encode.userJoined(visitor))
      : envelope('all', encode.supportJoinedUser({ supportId, supportUserName: toName, ...visitor }))
  const to = toAgentId ?? ''
  const result = await redis.sbTransfer(
    keys.chat(chatId),
    keys.queue,
    keys.deadlines,
    keys.messages(chatId),
    keys.receipts(chatId),
    keys.clientIds(chatId),
    keys.agentsOnline,
    keys.agentChats(fromAgentId),
    keys.agent(to),
    keys.agentChats(to),
    chatId,
    fromAgentId,
    to,
    supportId,
    toName,
    opts.chatTtlMs,
    keyGraceMs(opts),
    opts.maxChats,
    channels.chat(chatId),
    channels.queue,
    channels.agents,
    envelope('support', encodeV2.chatUnassigned(chatId, toAgentId)),
    visitorFrame,
    toAgentId === null ? '' : agentFrameEvent(toAgentId, encodeV2.chatAssigned({ chatId, userId, username: visitor.username, fromAgentId })),
    agentFrameEvent(fromAgentId, encodeV2.chatUnassigned(chatId, toAgentId)),
    ...queueJoinedParts(visitor),
  )
  if (result !== 'ok') throwRefusal('sbTransfer', result)
}

/** How long the claims say one place in the queue takes, in ms; null with no claim in the window. */
const CLAIM_WINDOW_MS = 30 * 60_000
const CLAIMS_CONSIDERED = 20

/**
 * The mean gap between the last k (≤ 20) claims of the past 30 minutes and
 * now: `(now − oldest) / k`. Null when nobody was claimed in 30 minutes.
 */
export function claimGapMs(claimTimes: readonly number[], now: number): number | null {
  const recent = claimTimes.filter((t) => t > now - CLAIM_WINDOW_MS).sort((a, b) => b - a).slice(0, CLAIMS_CONSIDERED)
  if (recent.length === 0) return null
  return Math.max(0, now - recent.at(-1)!) / recent.length
}

/** The estimated wait at `position`, whole seconds (at least 1); null when there is nothing to go on. */
export function estimateWaitSeconds(position: number, gapMs: number | null): number | null {
  return gapMs === null ? null : Math.max(1, Math.ceil((position * gapMs) / 1000))
}

function claimTimes(withScores: readonly string[]): number[] {
  const times: number[] = []
  for (let i = 1; i < withScores.length; i += 2) times.push(Number(withScores[i]))
  return times
}

/**
 * Where each of these waiting chats stands in the queue, in one round trip.
 * Chats not in the queue (claimed, gone) are left out.
 */
export async function queuePositions(redis: Redis, chatIds: readonly string[]): Promise<Map<string, QueuePositionArgs>> {
  const pipeline = redis.pipeline()
  for (const chatId of chatIds) pipeline.zrank(keys.queue, chatId)
  pipeline.zcard(keys.queue)
  pipeline.zrevrange(keys.claims, 0, CLAIMS_CONSIDERED - 1, 'WITHSCORES')
  pipeline.time()
  const results = (await pipeline.exec()) ?? []
  for (const [err] of results) if (err) throw err
  const now = redisMillis(results.at(-1)![1] as string[])
  const gap = claimGapMs(claimTimes(results.at(-2)![1] as string[]), now)
  const waiting = results.at(-3)![1] as number
  const positions = new Map<string, QueuePositionArgs>()
  chatIds.forEach((chatId, i) => {
    const rank = results[i]![1] as number | null
    if (rank === null) return
    positions.set(chatId, { chatId, position: rank + 1, waiting, estimatedWaitSeconds: estimateWaitSeconds(rank + 1, gap) })
  })
  return positions
}

export interface ServiceStatus {
  /** Agents online and not away, anonymous ones included. */
  agentsOnline: number
  agentsAway: number
  visitorsWaiting: number
  /** What the next visitor to join would wait, in seconds; null when there is nothing to go on. */
  estimatedWaitSeconds: number | null
}

/** What a visitor may want to know before starting: is anyone there, and how long is the line. */
export async function serviceStatus(redis: Redis): Promise<ServiceStatus> {
  const [agents, [[, waiting], [, claims], [, time]]] = await Promise.all([
    listAgents(redis),
    redis.multi().zcard(keys.queue).zrevrange(keys.claims, 0, CLAIMS_CONSIDERED - 1, 'WITHSCORES').time().exec() as Promise<
      [[null, number], [null, string[]], [null, string[]]]
    >,
  ])
  const away = agents.filter((a) => a.status === 'away').length
  return {
    agentsOnline: agents.length - away,
    agentsAway: away,
    visitorsWaiting: waiting,
    estimatedWaitSeconds: estimateWaitSeconds(waiting + 1, claimGapMs(claimTimes(claims), redisMillis(time))),
  }
}
