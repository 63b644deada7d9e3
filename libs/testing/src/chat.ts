import type { Stack } from './stack.js'
import type { TestSocket } from './ws-client.js'

type Party = 'User' | 'Support'
export type ChatMessageFrame = { type: 'ChatMessage'; args: { content: string } & Record<string, unknown> }

/** A visitor (Nika) and an agent (Vika) in one chat, each on an open socket. */
export interface ActiveChat {
  visitor: { userId: string; username: string; chatId: string }
  chatId: string
  url: string
  user: TestSocket
  agent: TestSocket
  supportId: string
  /** A ChatMessage frame from one side, with a clientMessageId if given. */
  message(from: Party, content: string, clientMessageId?: string): ChatMessageFrame
  /** A new socket that re-joins with the supportId (a refresh); the answer is left to the caller. */
  /** `instance`: which of the stack's ChatServers (default the first, where the chat was opened). */
  rejoin(from: Party, opts?: { v2?: boolean; lastSeq?: number; instance?: number }): Promise<TestSocket>
}

/** Opens a chat with an agent joined, each side on a socket of the given protocol version (default v2). */
export async function openChat(stack: Stack, versions: { user?: 1 | 2; agent?: 1 | 2 } = {}): Promise<ActiveChat> {
  const visitor = await stack.joinVisitor('Nika')
  const url = `${stack.chatServers[0]!.ws}/chat/${visitor.chatId}`
  const user = await stack.socket(url, 'pong:user', { v2: (versions.user ?? 2) === 2 })
  user.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', from: 'User' } })
  await user.nextOfType('UserJoined')
  // A waiting v2 visitor is told where they stand; taken here so tests see only what follows.
  if ((versions.user ?? 2) === 2) await user.nextOfType('QueuePosition')
  const agent = await stack.socket(url, 'pong:support', { v2: (versions.agent ?? 2) === 2 })
  agent.send({ type: 'Join', args: { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', from: 'Support' } })
  const { supportId } = (await agent.nextOfType('SupportJoinedUser')).json.args
  await user.nextOfType('SupportJoinedUser')
  return {
    visitor,
    chatId: visitor.chatId,
    url,
    user,
    agent,
    supportId,
    message: (from, content, clientMessageId) => ({
      type: 'ChatMessage',
      args: { userId: visitor.userId, supportId, content, from, ...(clientMessageId === undefined ? {} : { clientMessageId }) },
    }),
    async rejoin(from, opts = {}) {
      const at = opts.instance === undefined ? url : `${stack.chatServers[opts.instance]!.ws}/chat/${visitor.chatId}`
      const socket = await stack.socket(at, from === 'User' ? 'pong:user' : 'pong:support', { v2: opts.v2 ?? true })
      const lastSeq = opts.lastSeq === undefined ? {} : { lastSeq: opts.lastSeq }
      socket.send({
        type: 'Join',
        args:
          from === 'User'
            ? { userId: visitor.userId, username: 'Nika', supportId, from, ...lastSeq }
            : { userId: visitor.userId, username: 'Nika', supportUserName: 'Vika', supportId, from, ...lastSeq },
      })
      return socket
    },
  }
}
