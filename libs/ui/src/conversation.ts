import type { Party } from '@switchboard/protocol'
import type { PendingMessage, ReceivedMessage } from '@switchboard/client'
import { field, h, messageItem } from './dom.js'

// Each status differs in shape or words, not only in colour: one tick, two ticks, two ticks and "Read".
const TICKS = { sent: ['✓', 'Sent'], delivered: ['✓✓', 'Delivered'], read: ['✓✓', 'Read'] } as const
type Status = keyof typeof TICKS

/**
 * One conversation on screen, for either page: messages in seq order, each
 * shown once (a resumed history or a late echo never doubles one), ticks on
 * one's own messages from the other side's receipts, and a typing line.
 */
export class ConversationView {
  readonly list: HTMLOListElement
  readonly typingLine: HTMLElement
  readonly #shown = new Set<string>()
  readonly #mine = new Map<number, HTMLElement>()
  /** One's own messages not stored yet, by clientMessageId: kept at the end of the list, in the order typed. */
  readonly #pending = new Map<string, HTMLLIElement>()
  #delivered = 0
  #read = 0
  /** Highest seq of the other side's messages on screen: what a Read should cover. */
  lastTheirSeq = 0

  constructor(
    label: string,
    private readonly me: Party,
    private readonly names: () => { mine: string; theirs: string },
  ) {
    this.list = h('ol', { class: 'messages', attrs: { 'aria-label': label, 'aria-live': 'polite' } })
    this.typingLine = h('p', { class: 'muted typing', attrs: { 'aria-live': 'polite' } })
  }

  /** Replaces everything shown (a full history). */
  reset(messages: readonly ReceivedMessage[]): void {
    this.list.replaceChildren(...this.#pending.values())
    this.#shown.clear()
    this.#mine.clear()
    this.lastTheirSeq = 0
    for (const m of messages) this.add(m)
  }

  add(m: ReceivedMessage): void {
    // seq when the server speaks v2; otherwise the stored fields identify a message.
    const key = m.seq !== undefined ? `#${m.seq}` : `${m.timestamp}|${m.from}|${m.content}`
    if (this.#shown.has(key)) return
    this.#shown.add(key)
    const mine = m.from === this.me
    const names = this.names()
    const item = messageItem(mine ? 'You' : names.theirs, m.timestamp, m.content, mine)
    if (mine && m.seq !== undefined) {
      // role img: screen readers announce its label (Sent, Delivered, Read) rather than the tick characters.
      const ticks = h('span', { class: 'ticks', attrs: { role: 'img' } })
      item.querySelector('.msg__meta')?.append(' ', ticks)
      this.#mine.set(m.seq, ticks)
      this.#paint(m.seq, ticks)
    }
    if (!mine && m.seq !== undefined && m.seq > this.lastTheirSeq) this.lastTheirSeq = m.seq
    // Stored messages go before the ones still being sent.
    this.list.insertBefore(item, this.#pending.values().next().value ?? null)
    this.list.scrollTop = this.list.scrollHeight
  }

  /**
   * One's own messages not stored yet (ChatClient's `pending`), shown after
   * the stored ones as "Sending…" — or, while the server cannot take them
   * (`held`), as "Not sent yet" with a Retry button — until the stored
   * message replaces them. Nothing typed disappears unseen.
   */
  pending(messages: readonly PendingMessage[], held: boolean, retry: () => void): void {
    const keep = new Set(messages.map((m) => m.clientMessageId))
    for (const [id, item] of this.#pending) {
      if (!keep.has(id)) {
        item.remove()
        this.#pending.delete(id)
      }
    }
    for (const m of messages) {
      let item = this.#pending.get(m.clientMessageId)
      if (item === undefined) {
        item = messageItem('You', new Date().toISOString(), m.content, true)
        item.classList.add('msg--pending')
        item.dataset.clientMessageId = m.clientMessageId
        item.querySelector('.msg__meta')?.append(' ', h('span', { class: 'pending-state' }))
        this.#pending.set(m.clientMessageId, item)
        this.list.append(item)
      }
      const state = item.querySelector('.pending-state')!
      if (held) {
        state.replaceChildren('· Not sent yet ', h('button', { class: 'link', text: 'Retry', attrs: { type: 'button', 'aria-label': 'Retry sending' }, on: { click: retry } }))
      } else {
        state.replaceChildren('· Sending…')
      }
    }
    this.list.scrollTop = this.list.scrollHeight
  }

  /** The other side received / read up to `seq`. */
  receipt(seq: number, status: 'delivered' | 'read'): void {
    if (status === 'read') this.#read = Math.max(this.#read, seq)
    this.#delivered = Math.max(this.#delivered, seq)
    for (const [s, ticks] of this.#mine) this.#paint(s, ticks)
  }

  typing(state: 'start' | 'stop'): void {
    this.typingLine.textContent = state === 'start' ? `${this.names().theirs} is typing…` : ''
  }

  #paint(seq: number, ticks: HTMLElement): void {
    const status: Status = seq <= this.#read ? 'read' : seq <= this.#delivered ? 'delivered' : 'sent'
    const [mark, label] = TICKS[status]
    ticks.replaceChildren(
      h('span', { class: 'ticks__mark', text: mark, attrs: { 'aria-hidden': 'true' } }),
      ...(status === 'read' ? [h('span', { class: 'ticks__word', text: label, attrs: { 'aria-hidden': 'true' } })] : []),
    )
    ticks.className = `ticks ticks--${status}`
    ticks.setAttribute('aria-label', label)
    ticks.title = label
  }
}

/**
 * Sends Typing while the field is being typed into: a start at the first key
 * (again every few seconds while it goes on), a stop after a pause.
 */
export function typingNotifier(input: HTMLInputElement, send: (state: 'start' | 'stop') => void, pauseMs = 2000): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let lastStart = 0
  const stop = () => {
    if (timer === undefined) return
    clearTimeout(timer)
    timer = undefined
    send('stop')
  }
  input.addEventListener('input', () => {
    const now = Date.now()
    if (timer === undefined || now - lastStart > pauseMs) {
      lastStart = now
      send('start')
    }
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(stop, pauseMs)
  })
  return stop
}

export interface Composer {
  form: HTMLFormElement
  input: HTMLInputElement
  send: HTMLButtonElement
  /** Disables writing for good (an ended or expired chat). */
  disable(): void
}

/**
 * The "Message" field and "Send" button (Enter sends), telling the other side
 * while one types. `onSend` returns whether the text went out; the field is
 * cleared only then. Over v2 the message shows at once as pending (see
 * ConversationView.pending), then as stored when the server echoes it.
 */
export function composer(placeholder: string, client: () => { send(text: string): unknown; typing(state: 'start' | 'stop'): unknown } | undefined): Composer {
  const message = field('Message', { placeholder, maxlength: '4000' })
  const send = h('button', { text: 'Send', attrs: { type: 'submit' } })
  const stopTyping = typingNotifier(message.input, (state) => client()?.typing(state))
  const form = h(
    'form',
    {
      on: {
        submit: (ev) => {
          ev.preventDefault()
          const text = message.input.value
          if (!text.trim() || !client()?.send(text)) return
          message.input.value = ''
          stopTyping()
        },
      },
    },
    h('div', { class: 'row' }, message.wrapper, send),
  )
  return {
    form,
    input: message.input,
    send,
    disable() {
      message.input.disabled = true
      send.disabled = true
    },
  }
}
