import type { Result } from 'ioredis'

/*
 * The typed signatures of the Lua commands scripts.ts defines (ioredis's
 * documented way: declaration merging on RedisCommander), so callers call
 * `redis.sbClaim(...)` — on a client or a pipeline — without a cast. The
 * parameters are the script's KEYS, then its ARGV, named as at the top of
 * each src/lua/*.lua file.
 */

type Arg = string | number

/** A refusal or outcome a script answers with. */
export type EnqueueReply = 'queued' | 'waiting' | 'claimed' | 'active' | 'ended' | 'expired' | 'mismatch'
export type ClaimReply = 'ok' | 'same' | 'notfound' | 'notqueued' | 'claimed' | 'away' | 'capacity'
export type JoinSupportReply = 'ok' | 'same' | 'expired' | 'mismatch' | 'ended' | 'claimed' | 'away' | 'capacity'
export type AppendReply = ['ok', string] | ['ok', string, string] | ['dup', string] | 'expired' | 'noagent' | 'mismatch' | 'ended'
export type ReceiptReply = 'ok' | 'stale' | 'badseq' | 'expired'
export type EndChatReply = 'ok' | 'already' | 'expired' | 'retry'
export type ExpireReply = 0 | 1 | 'retry'
export type TransferReply = 'ok' | 'expired' | 'ended' | 'notyours' | 'unavailable' | 'capacity'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sbEnqueue(
      ...a: [chat: string, queue: string, queueSeq: string, deadlines: string,
        chatId: string, userId: string, ttlMs: Arg, graceMs: Arg, queueChannel: string,
        joinedBeforeOrder: string, joinedBeforeSince: string, joinedAfterSince: string]
    ): Result<EnqueueReply, Context>
    sbClaim(
      ...a: [chat: string, queue: string, deadlines: string, claims: string, agent: string, agentChats: string,
        chatId: string, userId: string, queueChannel: string, agentId: string, maxChats: Arg, agentChannel: string, removedEvent: string]
    ): Result<ClaimReply, Context>
    sbJoinSupport(
      ...a: [chat: string, queue: string, deadlines: string, claims: string, messages: string, clientIds: string, receipts: string,
        agent: string, agentChats: string,
        chatId: string, userId: string, supportId: string, supportUserName: string, ttlMs: Arg, graceMs: Arg, chatChannel: string,
        joinedEnvelope: string, queueChannel: string, agentId: string, maxChats: Arg, agentChannel: string, removedEvent: string]
    ): Result<JoinSupportReply, Context>
    sbAppendMessage(
      ...a: [chat: string, messages: string, deadlines: string, clientIds: string, receipts: string,
        chatId: string, supportId: string, storedBeforeSupportId: string, storedBeforeSeq: string, storedAfterSeq: string,
        clientMessageId: string, ttlMs: Arg, graceMs: Arg, chatChannel: string, from: string, agentId: string, holder: string, beforeAgent: string]
    ): Result<AppendReply, Context>
    sbHoldChat(...a: [chat: string, holder: string, action: 'hold' | 'release']): Result<0 | 1, Context>
    sbReceipt(
      ...a: [chat: string, messages: string, deadlines: string, receipts: string,
        chatId: string, reader: 'user' | 'support', kind: 'delivered' | 'read', seq: Arg, chatChannel: string]
    ): Result<ReceiptReply, Context>
    sbEndChat(
      ...a: [chat: string, queue: string, deadlines: string, ownerChats: string,
        chatId: string, by: string, reason: string, chatChannel: string, endedEnvelope: string, queueChannel: string,
        agentChannel: string, owner: string, removedEvent: string]
    ): Result<EndChatReply, Context>
    sbWarnExpiring(...a: [deadlines: string, chat: string, chatId: string, warnMs: Arg, chatChannel: string]): Result<0 | 1, Context>
    sbTouchWaiting(
      ...a: [chat: string, deadlines: string, messages: string, clientIds: string, receipts: string, chatId: string, ttlMs: Arg, graceMs: Arg]
    ): Result<0 | 1, Context>
    sbExpire(
      ...a: [deadlines: string, chat: string, messages: string, queue: string, clientIds: string, receipts: string, ownerChats: string,
        chatId: string, chatChannel: string, expiredEnvelope: string, queueChannel: string, agentChannel: string, owner: string, removedEvent: string]
    ): Result<ExpireReply, Context>
    sbTransfer(
      ...a: [chat: string, queue: string, deadlines: string, messages: string, receipts: string, clientIds: string, agentsOnline: string,
        fromChats: string, toAgent: string, toChats: string,
        chatId: string, fromAgentId: string, toAgentId: string, newSupportId: string, toName: string, ttlMs: Arg, graceMs: Arg,
        maxChats: Arg, chatChannel: string, queueChannel: string, agentChannel: string, unassignEnvelope: string,
        visitorEnvelope: string, assignedEvent: string, unassignedEvent: string,
        joinedBeforeOrder: string, joinedBeforeSince: string, joinedAfterSince: string]
    ): Result<TransferReply, Context>
    sbPresenceRenew(
      ...a: [agentSessions: string, agent: string, agentsOnline: string,
        agentId: string, instanceId: string, leaseMs: Arg, name: string, anonymous: '1' | '', agentChannel: string, forgetMs: Arg]
    ): Result<0 | 1, Context>
    /** numKeys, agentsOnline, then each agent's sessions, record and seats; agentChannel, then the agent ids. */
    sbPresenceSweep(numKeys: number, ...keysThenArgs: string[]): Result<number, Context>
    sbSetStatus(...a: [agent: string, agentId: string, status: string, agentChannel: string, forgetMs: Arg]): Result<0 | 1, Context>
    sbWaitingVisitor(
      ...a: [chat: string, deadlines: string, chatId: string, instance: string, presence: 'here' | 'gone', leaveMs: Arg]
    ): Result<0 | 1, Context>
  }
}
