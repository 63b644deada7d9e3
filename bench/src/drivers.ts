import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import { Inbox, type Heartbeat } from './sockets.js'

/** The servers compared: ours, the Socket.IO peer, and the bare ws relay. */
export type ServerKind = 'ours' | 'socketio' | 'bare'

/** 0: the visitor's side, 1: the agent's. */
export type Side = 0 | 1

/**
 * One visitor–agent conversation, joined and ready: a ChatMessage from
 * `side` is `prefix[side] + content + suffix`, built once per pair so the
 * generator only concatenates per message.
 */
export interface Pair {
  sockets: readonly [WebSocket, WebSocket]
  prefix: readonly [string, string]
  suffix: string
}

/** How to set up a pair on one kind of server, and its heartbeat. */
export interface Driver {
  kind: ServerKind
  heartbeat?: Heartbeat
  connectPair(i: number): Promise<Pair>
}

const OURS_HEARTBEAT: Heartbeat = { ping: 'ping', pong: ['pong:user', 'pong:support'] }
const SOCKETIO_HEARTBEAT: Heartbeat = { ping: '2', pong: ['3', '3'] }
/** The bare relay's, when it is started with one (the idle scenario): ChatServer's. */
const BARE_HEARTBEAT: Heartbeat = OURS_HEARTBEAT

/**
 * Our ChatServer over the seed-004 protocol: register the visitor over
 * HTTP, the visitor joins (queued), the agent joins (claims), both get
 * SupportJoinedUser. With two instances the visitor is on the first and the
 * agent on the second.
 */
export function oursDriver(visitorServer: { http: string; ws: string }, agentServer = visitorServer): Driver {
  return {
    kind: 'ours',
    heartbeat: OURS_HEARTBEAT,
    async connectPair(i) {
      const res = await fetch(`${visitorServer.http}/user/join/v${i}`)
      if (res.status !== 200) throw new Error(`GET /user/join: ${res.status} ${await res.text()}`)
      const { userId, username, chatId } = (await res.json()) as { userId: string; username: string; chatId: string }
      const visitor = await Inbox.open(`${visitorServer.ws}/chat/${chatId}`, OURS_HEARTBEAT, OURS_HEARTBEAT.pong[0])
      visitor.socket.send(JSON.stringify({ type: 'Join', args: { userId, username, from: 'User' } }))
      await visitor.next((f) => f.includes('"UserJoined"'))
      const agent = await Inbox.open(`${agentServer.ws}/chat/${chatId}`, OURS_HEARTBEAT, OURS_HEARTBEAT.pong[1])
      const supportUserName = `a${i}`
      agent.socket.send(JSON.stringify({ type: 'Join', args: { userId, supportUserName, username, from: 'Support' } }))
      const joined = await agent.next((f) => f.includes('"SupportJoinedUser"') || f.includes('"Error"'))
      const { supportId } = (JSON.parse(joined) as { args: { supportId?: string } }).args
      if (supportId === undefined) throw new Error(`agent Join refused: ${joined}`)
      await visitor.next((f) => f.includes('"SupportJoinedUser"'))
      visitor.detach()
      agent.detach()
      const head = `{"type":"ChatMessage","args":{"userId":"${userId}","supportId":"${supportId}",`
      return {
        sockets: [visitor.socket, agent.socket],
        prefix: [`${head}"from":"User","content":"`, `${head}"supportUserName":"${supportUserName}","from":"Support","content":"`],
        suffix: '"}}',
      }
    },
  }
}

/**
 * The Socket.IO peer, spoken over raw ws in its wire format (Engine.IO 4 +
 * Socket.IO 5): the server opens with `0{…}`, the client connects to the
 * main namespace with `40` (answered `40{"sid":…}`), events are
 * `42["name",…]`, and the server's ping `2` is answered with pong `3`.
 */
export function socketioDriver(server: { ws: string }): Driver {
  const url = `${server.ws}/socket.io/?EIO=4&transport=websocket`
  const connect = async (side: Side, room: string) => {
    const inbox = await Inbox.open(url, SOCKETIO_HEARTBEAT, SOCKETIO_HEARTBEAT.pong[side])
    await inbox.next((f) => f.startsWith('0{'))
    inbox.socket.send('40')
    await inbox.next((f) => f.startsWith('40'))
    inbox.socket.send(`42["join","${room}"]`)
    await inbox.next((f) => f === '42["joined"]')
    inbox.detach()
    return inbox.socket
  }
  return {
    kind: 'socketio',
    heartbeat: SOCKETIO_HEARTBEAT,
    async connectPair() {
      const room = randomUUID().replaceAll('-', '')
      const visitor = await connect(0, room)
      const agent = await connect(1, room)
      return {
        sockets: [visitor, agent],
        prefix: ['42["msg",{"from":"User","content":"', '42["msg",{"from":"Support","content":"'],
        suffix: '"}]',
      }
    },
  }
}

/** The bare ws relay: `{"join":room}`, then frames relayed as they are. */
export function bareDriver(server: { ws: string }): Driver {
  const connect = async (room: string) => {
    const inbox = await Inbox.open(server.ws)
    inbox.socket.send(`{"join":"${room}"}`)
    await inbox.next((f) => f === '{"joined":true}')
    inbox.detach()
    return inbox.socket
  }
  return {
    kind: 'bare',
    heartbeat: BARE_HEARTBEAT,
    async connectPair() {
      const room = randomUUID().replaceAll('-', '')
      const visitor = await connect(room)
      const agent = await connect(room)
      return {
        sockets: [visitor, agent],
        prefix: ['{"from":"User","content":"', '{"from":"Support","content":"'],
        suffix: '"}',
      }
    },
  }
}
