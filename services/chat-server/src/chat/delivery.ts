import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { encode, encodeV2, frameTypeOf, isStoredMessage, storedSeq, type Party } from '@switchboard/protocol'
import { lastSeq, openEnvelope, readMessages, type OpenedEnvelope } from '@switchboard/domain'
import { sideOf, type Side } from './party.js'

/** Live frames that change the state of the socket receiving them, not only its screen. */
export type ControlFrameType = 'ChatExpired' | 'SupportJoinedUser' | 'UserJoined' | 'ChatUnassigned'

const CONTROL_FRAME_TYPES: ReadonlySet<string> = new Set<ControlFrameType>(['ChatExpired', 'SupportJoinedUser', 'UserJoined', 'ChatUnassigned'])

/**
 * The type of a live frame (not a stored message) when it is a control
 * frame, else undefined: the one place a live frame's type is read, off its
 * first bytes (frameTypeOf), without parsing it.
 */
export function controlFrameType(frame: string): ControlFrameType | undefined {
  const type = frameTypeOf(frame)
  return type !== undefined && CONTROL_FRAME_TYPES.has(type) ? (type as ControlFrameType) : undefined
}

/** How long a failed read of missed messages waits before it is tried again. */
const CATCH_UP_RETRY_MS = 500

/**
 * The last chat-channel publication, opened, and the frames of the last
 * stored message. Every socket of a chat on this instance gets the same
 * publication, one listener right after another: the envelope is opened and
 * each version's frame built once per message, not once per socket, and
 * every socket is given the very same string (so ws measures and encodes a
 * flat string rather than a fresh concatenation each time).
 */
let lastPublication: { message: string; opened: OpenedEnvelope | null; unreadFrame: string } = { message: '', opened: null, unreadFrame: '' }
const lastStored = { stored: '', v1: '', v2: '' }

function openPublication(message: string): OpenedEnvelope | null {
  if (message !== lastPublication.message) lastPublication = { message, opened: openEnvelope(message), unreadFrame: '' }
  return lastPublication.opened
}

/** The UnreadCount frame a message's publication carries for its recipient's v2 sockets, built once. */
function unreadFrameOf(chatId: string, unread: { count: number }): string {
  return (lastPublication.unreadFrame ||= encodeV2.unreadCount(chatId, unread.count))
}

/** A stored message as a ChatMessage frame of `version`, byte for byte what the encoders make. */
export function storedMessageFrame(stored: string, version: 1 | 2): string {
  if (stored !== lastStored.stored) {
    lastStored.stored = stored
    lastStored.v1 = ''
    lastStored.v2 = ''
  }
  if (version === 2) return (lastStored.v2 ||= encodeV2.chatMessageFromStored(stored))
  return (lastStored.v1 ||= encode.chatMessageFromStored(stored))
}

/** What a socket's delivery needs from its session. */
export interface DeliveryHost {
  readonly redis: Redis
  readonly chatId: string
  /** 1: seed 004; 2: switchboard.v2. */
  readonly version: 1 | 2
  readonly log: FastifyBaseLogger
  readonly closed: boolean
  send(frame: string): void
  /** A control frame arrived live, in its turn: the session acts on it (and sends it, or not). */
  onControlFrame(type: ControlFrameType, frame: string): void
}

/**
 * The live frames of one socket's chat channel, in order and each stored
 * message once. One buffer holds frames back while a Join is answered and
 * while missed messages are read from the store (after the Redis subscriber
 * was down, or on a gap in seqs); they go out, in arrival order, once neither
 * is under way. A stored message at or below the last one delivered is a
 * copy and is dropped.
 */
export class Delivery {
  /** Live frames held back, in arrival order; undefined while frames go straight out. */
  #held: string[] | undefined
  /** A Join is being answered: frames are held until it is. */
  #joining = false
  /** Missed messages are being read from the store: frames are held until they are out. */
  #catchingUp = false
  /** Which audience's publications this socket gets (its party, as the envelopes name it). */
  #audience: Side | undefined
  /**
   * The seq of the last stored message this socket has (from the history or
   * live); undefined until its Join is answered. A live message at or below
   * it is a copy; one more than one above it means publications were lost.
   */
  #lastDelivered: number | undefined
  /** A channel frame this socket was sent directly already. */
  #skipOnce: string | undefined
  /** Another read of missed messages was asked for while one ran. */
  #catchUpAgain = false
  /** The Redis subscriber came back while the Join was being answered: catch up once it is. */
  #catchUpAfterJoin = false
  #catchUpRetry: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly host: DeliveryHost) {}

  /** The seq of the last stored message this socket has; undefined before its Join is answered. */
  get lastDelivered(): number | undefined {
    return this.#lastDelivered
  }

  /** A Join as `party` starts (before its subscription): live frames are held until it is answered. */
  hold(party: Party): void {
    this.#audience = sideOf(party)
    this.#joining = true
    this.#held ??= []
  }

  /** The socket has the stored messages up to `seq` (its history was sent). */
  startAfter(seq: number): void {
    this.#lastDelivered = seq
  }

  /** `frame` was sent directly: its copy from the channel is not sent again. */
  skipOnce(frame: string): void {
    this.#skipOnce = frame
  }

  /**
   * The last step of answering a Join: with no history sent, what was stored
   * before the subscription is not this socket's to deliver, and what was
   * published since is held (so it starts at the first held message).
   */
  async settleStart(): Promise<void> {
    if (this.#lastDelivered !== undefined) return
    const stored = await lastSeq(this.host.redis, this.host.chatId)
    const firstHeld = (this.#held ?? []).find(isStoredMessage)
    this.#lastDelivered = firstHeld === undefined ? stored : Math.min(stored, storedSeq(firstHeld) - 1)
  }

  /** The Join was answered: the frames held meanwhile go out (minus the copies of what the history had). */
  joined(): void {
    this.#joining = false
    if (!this.#catchingUp) this.#flush(false)
    if (this.#catchUpAfterJoin) {
      this.#catchUpAfterJoin = false
      this.catchUp()
    }
  }

  /** The Join failed: nothing held or published is this socket's to deliver. */
  joinFailed(): void {
    this.#joining = false
    this.#audience = undefined
    this.#held = undefined
    this.#lastDelivered = undefined
    this.#catchUpAfterJoin = false
  }

  /** A publication on the chat's channel: taken if it is for this socket's party and protocol. */
  onPublication(message: string): void {
    const opened = openPublication(message)
    const audience = this.#audience
    if (opened === null || (opened.v2Only && this.host.version === 1) || (opened.to !== 'all' && opened.to !== audience)) return
    this.#take(opened.frame)
    // After the message, as if it had been published on its own.
    if (opened.unread !== undefined && this.host.version === 2 && opened.unread.reader === audience) this.#take(unreadFrameOf(this.host.chatId, opened.unread))
  }

  /**
   * Sends the stored messages after the last one this socket has, holding
   * live frames until they are out: after the Redis subscriber connection
   * was down (what was published meanwhile is lost), or on a gap in seqs.
   */
  catchUp(): void {
    if (this.host.closed) return
    if (this.#lastDelivered === undefined) {
      // Mid-Join: its history may have been read before the publications stopped.
      if (this.#joining) this.#catchUpAfterJoin = true
      return
    }
    if (this.#catchingUp) {
      this.#catchUpAgain = true
      return
    }
    this.#catchingUp = true
    this.#held ??= []
    void this.#readMissed()
  }

  close(): void {
    if (this.#catchUpRetry !== undefined) clearTimeout(this.#catchUpRetry)
    this.#catchUpRetry = undefined
    this.#held = undefined
  }

  async #readMissed(): Promise<void> {
    let progressed = false
    do {
      this.#catchUpAgain = false
      if (this.#lastDelivered === undefined) {
        // The Join failed meanwhile: nothing is this socket's to deliver.
        this.#catchingUp = false
        if (!this.#joining) this.#held = undefined
        return
      }
      let missed: string[]
      try {
        missed = await readMessages(this.host.redis, this.host.chatId, this.#lastDelivered + 1)
      } catch (err) {
        if (this.host.closed) return
        this.host.log.warn({ err: (err as Error).message }, 'could not read missed messages; trying again')
        this.#catchUpRetry = setTimeout(() => {
          this.#catchUpRetry = undefined
          void this.#readMissed()
        }, CATCH_UP_RETRY_MS)
        return
      }
      if (this.host.closed) return
      for (const stored of missed) this.#deliverStored(stored, true)
      if (missed.length > 0) progressed = true
    } while (this.#catchUpAgain)
    this.#catchingUp = false
    // A gap the store could not fill (the chat is gone) is not read again and again.
    if (!this.#joining) this.#flush(!progressed)
  }

  /** Sends the held frames; one of them may start a catch-up, which holds the rest again. */
  #flush(acceptGap: boolean): void {
    const held = this.#held ?? []
    this.#held = undefined
    for (const frame of held) this.#take(frame, acceptGap)
  }

  /** A live frame: held while a Join is answered or missed messages are read, else delivered. */
  #take(frame: string, acceptGap = false): void {
    if (this.#held !== undefined) this.#held.push(frame)
    else this.#deliver(frame, acceptGap)
  }

  /** Sends a live frame; `acceptGap`: a stored message after a gap is sent as is, not read for again. */
  #deliver(payload: string, acceptGap: boolean): void {
    if (payload === this.#skipOnce) {
      this.#skipOnce = undefined
      return
    }
    if (isStoredMessage(payload)) return this.#deliverStored(payload, acceptGap)
    const control = controlFrameType(payload)
    if (control !== undefined) this.host.onControlFrame(control, payload)
    else this.host.send(payload)
  }

  /** Each stored message once, in seq order: copies are dropped, and a gap is first filled from the store. */
  #deliverStored(stored: string, acceptGap: boolean): void {
    const seq = storedSeq(stored)
    const last = this.#lastDelivered
    if (seq > 0 && last !== undefined) {
      if (seq <= last) return
      if (seq > last + 1 && !acceptGap) {
        this.host.log.warn({ seq, lastDelivered: last }, 'missed messages on the chat channel; reading them from the store')
        this.catchUp()
        this.#held?.push(stored)
        return
      }
      this.#lastDelivered = seq
    }
    this.host.send(storedMessageFrame(stored, this.host.version))
  }
}
