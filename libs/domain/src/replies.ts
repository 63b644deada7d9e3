import { ProtocolError, type ErrorCode } from '@switchboard/protocol'
import type { ScriptName } from './scripts.js'

/**
 * What a script's refusal means to the client: the one table from Lua
 * replies to error codes (with the message where the code's default is not
 * the right words). A reply means the same to every command unless the
 * command says otherwise.
 */
type Refusal = readonly [ErrorCode, string?]

const COMMON: Readonly<Record<string, Refusal>> = {
  expired: ['CHAT_EXPIRED'],
  ended: ['CHAT_ENDED'],
  mismatch: ['IDENTITY_MISMATCH', 'userId does not belong to this chat'],
  claimed: ['ALREADY_CLAIMED'],
  away: ['AGENT_AWAY'],
  capacity: ['AGENT_AT_CAPACITY'],
  notqueued: ['NOT_IN_QUEUE'],
  notfound: ['VISITOR_NOT_FOUND'],
  noagent: ['NO_AGENT_YET'],
  badseq: ['INVALID_SEQ'],
  notyours: ['NOT_ASSIGNED'],
  unavailable: ['AGENT_UNAVAILABLE'],
}

const BY_COMMAND: Partial<Record<ScriptName, Readonly<Record<string, Refusal>>>> = {
  sbJoinSupport: { claimed: ['ALREADY_CLAIMED', 'Another agent has already joined this chat'] },
  sbAppendMessage: { mismatch: ['IDENTITY_MISMATCH', 'supportId does not belong to this chat'] },
  sbTransfer: {
    expired: ['CHAT_EXPIRED', 'The chat expired or does not exist'],
    ended: ['CHAT_ENDED', 'This chat has ended; there is nothing to transfer'],
    capacity: ['AGENT_AT_CAPACITY', 'That agent has no free seat'],
  },
}

/** The error a script's reply stands for, or null when the reply is not a refusal. */
export function refusalOf(command: ScriptName, reply: unknown, message?: string): ProtocolError | null {
  if (typeof reply !== 'string') return null
  const entry = BY_COMMAND[command]?.[reply] ?? (Object.hasOwn(COMMON, reply) ? COMMON[reply] : undefined)
  return entry === undefined ? null : new ProtocolError(entry[0], message ?? entry[1])
}

/** Throws the error a refusal stands for; a reply that is neither a refusal nor `expected` is a bug. */
export function throwRefusal(command: ScriptName, reply: unknown, message?: string): never {
  throw refusalOf(command, reply, message) ?? new Error(`unexpected ${command} reply ${JSON.stringify(reply)}`)
}

/** How many times a script answering 'retry' (what the caller read changed meanwhile) is run again. */
export const SCRIPT_RETRIES = 5

/** Runs `attempt` until it answers something other than 'retry', at most SCRIPT_RETRIES + 1 times. */
export async function retrying<T>(command: ScriptName, attempt: () => Promise<T | 'retry'>): Promise<T> {
  for (let i = 0; i <= SCRIPT_RETRIES; i++) {
    const reply = await attempt()
    if (reply !== 'retry') return reply
  }
  throw new Error(`${command}: the chat kept changing under it (${SCRIPT_RETRIES + 1} attempts)`)
}
