import { ProtocolError, encode, type JoinArgsV2 } from '@switchboard/protocol'
import { enqueueVisitor, getChat, joinSupport, lastSeq, supportJoinedOf, type ChatRecord } from '@switchboard/domain'
import type { SessionContext } from './context.js'
import { sendHistory } from './history.js'

/**
 * Join: who may join this chat as what, and how each is answered. Three
 * paths: a re-join naming the chat's supportId (the history); an agent
 * joining without one (takes the chat: SupportJoinedUser); a visitor joining
 * without one (the queue, or the conversation if an agent has it already).
 */
export async function joinChat(s: SessionContext, args: JoinArgsV2): Promise<void> {
  if (s.party !== undefined) throw new ProtocolError('ALREADY_JOINED')
  // Read the chat again: an agent may have joined since the socket opened.
  const chat = await getChat(s.redis, s.chatId)
  if (chat === null) throw new ProtocolError('CHAT_EXPIRED')
  s.chat = chat
  if (args.userId !== chat.userId) throw new ProtocolError('IDENTITY_MISMATCH', 'userId does not belong to this chat')
  const party = args.from
  // Identity comes from the connection: an agent's token never speaks for a
  // visitor, and only a token speaks for an agent.
  if (party === 'User' && s.agent !== null) {
    throw new ProtocolError('IDENTITY_MISMATCH', "An agent's socket cannot join as the visitor")
  }
  if (party === 'Support' && s.agent === null && s.app.agentAuth.enabled) throw new ProtocolError('UNAUTHORIZED')
  // Only v2 resumes from a seq; a seed-004 socket always gets the whole history.
  const resumeAfter = s.version === 2 ? args.lastSeq : undefined
  if (resumeAfter !== undefined) await checkResume(s, resumeAfter)

  // A visitor naming a supportId their chat had before a transfer is behind, not someone else: they get the chat as it is now.
  const stale = party === 'User' && args.supportId !== undefined && args.supportId !== chat.supportId && (chat.pastSupportIds ?? []).includes(args.supportId)
  if (args.supportId !== undefined && !stale) {
    if (args.supportId !== chat.supportId) {
      throw new ProtocolError('IDENTITY_MISMATCH', 'supportId does not belong to this chat')
    }
    if (party === 'Support' && s.agent !== null && chat.agentId !== undefined && chat.agentId !== s.agent.agentId) {
      throw new ProtocolError('IDENTITY_MISMATCH', 'Another agent has this chat')
    }
    await s.listen(party)
    await s.answerJoin(() => sendHistory(s, chat, resumeAfter))
    return
  }
  if (party === 'Support') return joinAsAgent(s, chat, args, resumeAfter)
  return joinAsVisitor(s, chat, resumeAfter)
}

/**
 * A resume from a seq the chat has not reached is refused before the Join
 * changes anything: the socket would take every live message for one it
 * has already and drop it. The client joins again without lastSeq.
 */
async function checkResume(s: SessionContext, resumeAfter: number): Promise<void> {
  const last = await lastSeq(s.redis, s.chatId)
  if (resumeAfter > last) {
    throw new ProtocolError('INVALID_SEQ', `lastSeq ${resumeAfter} is beyond this chat's last message (seq ${last}); join again without lastSeq`)
  }
}

/** An agent joining without supportId takes the chat; SupportJoinedUser reaches both participants through the chat channel. */
async function joinAsAgent(s: SessionContext, chat: ChatRecord, args: JoinArgsV2, resumeAfter: number | undefined): Promise<void> {
  // An authenticated agent is named by their token, not by the frame.
  const name = s.agent?.name ?? args.supportUserName
  if (name === undefined) {
    throw new ProtocolError('INVALID_FRAME', 'Join: an agent joining without supportId must send supportUserName')
  }
  await s.listen('Support')
  await s.answerJoin(async () => {
    const joined = await joinSupport(s.redis, chat, name, s.opts, s.agent?.agentId, s.opts.maxChatsPerAgent)
    s.chat = { ...chat, state: 'active', supportId: joined.supportId, supportUserName: joined.supportUserName }
    if (joined.rejoined) {
      // This agent has the chat already (a console that lost its supportId): give it back, with the history.
      s.send(encode.supportJoinedUser(joined))
      await sendHistory(s, s.chat, resumeAfter)
      return
    }
    if ((chat.pastSupportIds ?? []).length > 0 || (await lastSeq(s.redis, s.chatId)) > 0) {
      // A chat put back in the queue, or one whose v2 visitor wrote while waiting, has a conversation
      // already: the new agent gets it after SupportJoinedUser, and the channel's copy of that frame is not sent twice.
      const frame = encode.supportJoinedUser(joined)
      s.delivery.skipOnce(frame)
      s.send(frame)
      await sendHistory(s, s.chat, resumeAfter)
    }
    s.log.info({ supportId: joined.supportId }, 'agent joined chat')
  })
}

/** A visitor joining without supportId waits in the queue, or gets their conversation if an agent has it. */
async function joinAsVisitor(s: SessionContext, chat: ChatRecord, resumeAfter: number | undefined): Promise<void> {
  await s.listen('User')
  await s.answerJoin(async () => {
    const state = await enqueueVisitor(s.redis, chat, s.opts)
    if (state === 'active' || state === 'ended') {
      // A visitor who lost their supportId (a seed-004 page that kept only
      // chatId) is given it back, with the conversation so far.
      const current = await getChat(s.redis, s.chatId)
      if (current === null) throw new ProtocolError('CHAT_EXPIRED')
      if (current.supportId !== undefined) s.send(encode.supportJoinedUser(supportJoinedOf(current)))
      await sendHistory(s, current, resumeAfter)
      return
    }
    s.send(encode.userJoined(chat))
    // A v2 visitor back after a reload (or put back in the queue) gets what they wrote while waiting.
    if (s.version === 2 && (await lastSeq(s.redis, s.chatId)) > 0) await sendHistory(s, chat, resumeAfter)
    s.waiting.start()
    if (state === 'queued') s.log.info('visitor queued')
  })
}
