import { HISTORY_PAGE_SIZE, encode, encodeV2, type LoadMoreArgs } from '@switchboard/protocol'
import { lastSeq, readMessages, readState, type ChatRecord } from '@switchboard/domain'
import type { SessionContext } from './context.js'
import { otherParty, sideOf } from './party.js'

/**
 * The history a Join is answered with: all of it for seed 004; for v2 the
 * messages after `resumeAfter`, or the last page, followed by where the
 * receipts and the unread count stand (so ticks and badges survive a
 * refresh) and ChatEnded if the chat has ended. Live messages stored between
 * the subscription and the read are in both: their copies are skipped by seq.
 */
export async function sendHistory(s: SessionContext, chat: ChatRecord, resumeAfter?: number): Promise<void> {
  const { redis, chatId } = s
  if (s.version === 1) {
    const messages = await readMessages(redis, chatId, 1)
    s.send(encode.chatHistoryFromStored(chat, messages))
    s.delivery.startAfter(messages.length)
    return
  }
  const fromSeq = resumeAfter !== undefined ? resumeAfter + 1 : Math.max(1, (await lastSeq(redis, chatId)) - HISTORY_PAGE_SIZE + 1)
  const messages = await readMessages(redis, chatId, fromSeq)
  s.send(encodeV2.chatHistory(chat, messages, fromSeq, fromSeq > 1))
  s.delivery.startAfter(fromSeq - 1 + messages.length)
  const party = s.party!
  const other = sideOf(otherParty(party))
  const state = await readState(redis, chatId)
  if (state.delivered[other] > state.read[other]) {
    s.send(encodeV2.receipt(chatId, state.delivered[other], 'delivered', otherParty(party)))
  }
  if (state.read[other] > 0) s.send(encodeV2.receipt(chatId, state.read[other], 'read', otherParty(party)))
  s.send(encodeV2.unreadCount(chatId, state.unread[sideOf(party)]))
  if (chat.state === 'ended') s.send(encodeV2.chatEnded(chatId, chat.endedBy ?? 'User', chat.endReason ?? null))
}

/** LoadMore → ChatHistoryPage: up to `limit` messages before `beforeSeq`, oldest first. */
export async function loadMore(s: SessionContext, args: LoadMoreArgs): Promise<void> {
  s.joinedParty()
  const limit = args.limit ?? HISTORY_PAGE_SIZE
  const from = Math.max(1, args.beforeSeq - limit)
  const messages = await readMessages(s.redis, s.chatId, from, args.beforeSeq - 1)
  s.send(encodeV2.chatHistoryPage(messages, from > 1))
}
