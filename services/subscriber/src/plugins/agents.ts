import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { encodeV2 } from '@switchboard/protocol'
import {
  channels,
  isRedisUnavailable,
  listAgents,
  listMyChats,
  newId,
  parseAgentEvent,
  renewPresence,
  sweepPresence,
} from '@switchboard/domain'

/** One agent socket on this instance, as the registry sees it. */
export interface AgentSocket {
  readonly agentId: string
  readonly name: string
  /** No token (AGENT_AUTH=off): counted as online, never listed, no seats. */
  readonly anonymous: boolean
  /** Only v2 sockets get AgentsOnline, MyChats, ChatAssigned and ChatUnassigned. */
  readonly v2: boolean
  send(frame: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Agents with a socket here: their presence, and the frames for them from every instance. */
    agents: {
      /** Registers a socket; the agent is online (for everyone) when this resolves. v2 sockets then get AgentsOnline and MyChats. */
      connect(socket: AgentSocket): Promise<void>
      disconnect(socket: AgentSocket): void
      /** Sends this agent's MyChats to their v2 sockets here. */
      refreshMyChats(agentId: string): Promise<void>
    }
  }
}

/**
 * Presence for the agents connected to this instance: a lease per agent,
 * renewed while they have a socket here; a sweep (on every instance) takes
 * agents offline once all their leases ran out. Agent events from every
 * instance become AgentsOnline / MyChats / targeted frames for the sockets here.
 */
export const agentsPlugin = fp(
  async function agents(app: FastifyInstance, opts: { offlineAfterMs: number; forgetAfterMs?: number }) {
    const instanceId = newId()
    const redis = app.redis.commands
    const local = new Map<string, Set<AgentSocket>>()
    /** What each socket was sent last, so nothing is repeated. */
    const lastAgents = new WeakMap<AgentSocket, string>()
    const lastMyChats = new WeakMap<AgentSocket, string>()
    /**
     * Sockets whose agent is registered in Redis. A refresh skips the others:
     * a list read before the renewal would show the agent without themselves
     * (an offline event from a sweep can arrive just as they reconnect).
     */
    const registered = new WeakSet<AgentSocket>()
    /** Renewals for agents whose last socket here closed: shutdown lets them finish before Redis quits. */
    const leaving = new Set<Promise<void>>()

    const quiet = (what: string) => (err: unknown) => {
      if (!isRedisUnavailable(err)) app.log.error({ err }, what)
    }
    const renew = (socket: AgentSocket) =>
      renewPresence(redis, { agentId: socket.agentId, name: socket.name, anonymous: socket.anonymous }, instanceId, opts.offlineAfterMs, opts.forgetAfterMs)

    const v2Sockets = function* (agentId?: string, onlyRegistered = true) {
      const sets = agentId === undefined ? local.values() : [local.get(agentId) ?? new Set<AgentSocket>()]
      for (const set of sets) for (const s of set) if (s.v2 && (!onlyRegistered || registered.has(s))) yield s
    }

    const sendAgents = async (only?: AgentSocket) => {
      // The targets are taken before the read, so none gets a list older than its registration.
      const targets = only ? [only] : [...v2Sockets()]
      if (targets.length === 0) return
      const frame = encodeV2.agentsOnline((await listAgents(redis)).filter((a) => !a.anonymous))
      for (const s of targets) {
        if (lastAgents.get(s) === frame) continue
        lastAgents.set(s, frame)
        s.send(frame)
      }
    }
    const sendMyChats = async (agentId: string, only?: AgentSocket) => {
      const targets = only ? [only] : [...v2Sockets(agentId)]
      if (targets.length === 0) return
      const frame = encodeV2.myChats(await listMyChats(redis, agentId))
      for (const s of targets) {
        if (lastMyChats.get(s) === frame) continue
        lastMyChats.set(s, frame)
        s.send(frame)
      }
    }

    // Changes come in bursts (a claim changes the queue, seats and the list at
    // once): one refresh at a time, and one more for whatever came meanwhile.
    let refreshing = false
    let dirtyList = false
    const dirtyAgents = new Set<string>()
    const refresh = async () => {
      if (refreshing) return
      refreshing = true
      try {
        while (dirtyList || dirtyAgents.size > 0) {
          const list = dirtyList
          const ids = [...dirtyAgents]
          dirtyList = false
          dirtyAgents.clear()
          if (list) await sendAgents()
          for (const id of ids) await sendMyChats(id)
        }
      } catch (err) {
        quiet('agent refresh failed')(err)
      } finally {
        refreshing = false
      }
    }

    app.decorate('agents', {
      async connect(socket: AgentSocket) {
        let set = local.get(socket.agentId)
        if (set === undefined) local.set(socket.agentId, (set = new Set()))
        set.add(socket)
        try {
          await renew(socket)
          registered.add(socket)
          if (!socket.v2) return
          await sendAgents(socket)
          if (!socket.anonymous) await sendMyChats(socket.agentId, socket)
        } catch (err) {
          // With Redis down the agent is registered here all the same: the
          // renewal announces them once Redis is back, and the refresh that
          // follows sends what this socket missed.
          if (!isRedisUnavailable(err)) throw err
          registered.add(socket)
        }
      },
      disconnect(socket: AgentSocket) {
        const set = local.get(socket.agentId)
        if (!set?.delete(socket) || set.size > 0) return
        local.delete(socket.agentId)
        // The grace period runs from now: a reload within it (or a move to
        // another instance when this one shuts down) is not a logout.
        const renewal = renew(socket).then(() => {}, quiet('presence renewal failed'))
        leaving.add(renewal)
        void renewal.finally(() => leaving.delete(renewal))
      },
      refreshMyChats: (agentId: string) => sendMyChats(agentId),
    })

    // Leases are renewed three times per grace period; expired ones are swept as often.
    const every = Math.max(20, Math.min(opts.offlineAfterMs / 3, 5000))
    let renewing = false
    const renewTimer = setInterval(() => {
      if (renewing || local.size === 0) return
      renewing = true
      const sockets = [...local.values()].map((set) => set.values().next().value!)
      Promise.all(sockets.map(renew))
        .catch(quiet('presence renewal failed'))
        .finally(() => (renewing = false))
    }, every)
    renewTimer.unref()
    let sweeping = false
    const sweepTimer = setInterval(() => {
      if (sweeping) return
      sweeping = true
      sweepPresence(redis)
        .catch(quiet('presence sweep failed'))
        .finally(() => (sweeping = false))
    }, every)
    sweepTimer.unref()
    // Runs after the sockets closed and before Redis quits (onClose hooks run last-registered first).
    app.addHook('onClose', async () => {
      clearInterval(renewTimer)
      clearInterval(sweepTimer)
      await Promise.all(leaving)
    })

    const subscribed = app.pubsub.subscribe(
      channels.agents,
      (message) => {
        const event = parseAgentEvent(message)
        if (event === null) return void app.log.warn('unreadable agent event dropped')
        if (event.kind === 'frame') {
          for (const s of v2Sockets(event.to, false)) s.send(event.frame)
          return
        }
        dirtyList = true
        for (const id of event.agentIds) if (local.has(id)) dirtyAgents.add(id)
        void refresh()
      },
      { waitForRedis: true },
    )
    if (app.redis.subscriber.status === 'ready') await subscribed
    else subscribed.catch((err) => app.log.error({ err }, 'agent events subscription failed'))
  },
  { name: 'switchboard-agents', dependencies: ['switchboard-redis'] },
)
