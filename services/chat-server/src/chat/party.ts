import type { Party } from '@switchboard/protocol'
import type { Reader } from '@switchboard/domain'

/** A party as @switchboard/domain writes it ('user' | 'support', its Reader and envelope audiences). */
export type Side = Reader

/** The other participant of a chat. */
export const otherParty = (party: Party): Party => (party === 'User' ? 'Support' : 'User')

/**
 * The lowercase name @switchboard/domain gives a party in what it stores and
 * publishes (envelope audiences, receipts' reader, ReadState): the one place
 * services code converts a socket's Party to it.
 */
export const sideOf = (party: Party): Side => (party === 'User' ? 'user' : 'support')
