import { userMessage } from '@switchboard/protocol'

/**
 * An error shown over a conversation, in plain words (UserMessages), that
 * goes once things work again: a message stored, the held messages gone
 * through, or a new connection. An error about one message (too long) stays
 * until then. The element may show other things too (its `data-kind` tells
 * which): only an error is cleared here.
 */
export class ErrorBanner {
  #wasHeld = false

  constructor(readonly element: HTMLElement) {}

  show(code: string): void {
    this.element.textContent = userMessage(code)
    this.element.dataset.kind = 'error'
    this.element.hidden = false
  }

  clear(): void {
    if (this.element.dataset.kind !== 'error') return
    this.element.hidden = true
    delete this.element.dataset.kind
  }

  /** ChatClient's `pending` handler's `held`: the end of a hold (Redis back) clears the error. */
  held(held: boolean): void {
    if (this.#wasHeld && !held) this.clear()
    this.#wasHeld = held
  }
}
