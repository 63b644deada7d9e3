import { Errors, ProtocolError, encodeV2, type ChatMessageArgsV2 } from '@switchboard/protocol'
import { appendMessage, isRedisUnavailable } from '@switchboard/domain'
import type { SessionContext } from './context.js'

/**
 * ChatMessage: stored, then published (or, when only this instance holds the
 * chat, delivered here); the echo arrives through the chat channel. A v2
 * sender gets an Ack, or an Error naming its clientMessageId.
 */
export async function sendMessage(s: SessionContext, args: ChatMessageArgsV2): Promise<void> {
  // A seed-004 socket's frame is taken as seed 004 defines it: no clientMessageId.
  const clientMessageId = s.version === 2 ? args.clientMessageId : undefined
  try {
    const party = s.joinedParty()
    const chat = s.chat!
    if (args.from !== party) throw new ProtocolError('IDENTITY_MISMATCH', `This socket joined as ${party}`)
    if (args.userId !== chat.userId) throw new ProtocolError('IDENTITY_MISMATCH', 'userId does not belong to this chat')
    // Only a v2 visitor may leave supportId out (they are waiting for an agent); seed 004's schema requires it.
    if (args.supportId === undefined && party === 'Support') throw new ProtocolError('INVALID_FRAME', 'ChatMessage: an agent must send supportId')
    if (exceeds(args.content, s.opts.maxMessageLength)) {
      throw new ProtocolError('MESSAGE_TOO_LONG', `Message content is longer than ${s.opts.maxMessageLength} characters`)
    }
    const stored = s.app.metrics.storeSeconds.startTimer()
    const appended = await appendMessage(
      s.redis,
      {
        chatId: s.chatId,
        userId: args.userId,
        supportId: args.supportId ?? '',
        content: args.content,
        from: args.from,
        ...(clientMessageId !== undefined ? { clientMessageId } : {}),
        ...(party === 'Support' && s.agent !== null ? { agentId: s.agent.agentId } : {}),
        // A v2 visitor may write while waiting: the agent who joins gets it in ChatHistory. Seed 004 keeps NO_AGENT_YET.
        ...(party === 'User' && s.version === 2 ? { beforeAgent: true } : {}),
      },
      s.opts,
    ).finally(() => stored())
    // Only this instance holds the chat: the message was not published, and its sockets here get it now.
    if (appended.local !== undefined) s.app.chatChannels.deliverLocally(s.chatId, appended.local)
    if (!appended.duplicate) s.app.metrics.messagesStored.inc()
    if (clientMessageId !== undefined) {
      const { messageId, seq, timestamp } = appended.message
      s.send(encodeV2.ack({ clientMessageId, messageId, seq, timestamp }))
    }
  } catch (err) {
    if (clientMessageId === undefined) throw err
    // The sender learns which message failed; never an Ack for it.
    const code = err instanceof ProtocolError ? err.code : isRedisUnavailable(err) ? 'STORE_UNAVAILABLE' : undefined
    if (code === undefined) throw err
    s.send(encodeV2.errorFor(code, err instanceof ProtocolError ? err.message : Errors.STORE_UNAVAILABLE.message, clientMessageId))
    if (code === 'CHAT_EXPIRED') s.expire()
    return
  }
  // A message ends its sender's typing (a failed stop is only a Typing indicator that times out).
  s.signals.stopTyping().catch(() => {})
}

/** True when `text` has more than `max` characters (code points), without counting past the limit. */
export function exceeds(text: string, max: number): boolean {
  if (text.length <= max) return false
  let count = 0
  for (const _ of text) if (++count > max) return true
  return false
}
