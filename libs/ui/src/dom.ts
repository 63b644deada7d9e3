/**
 * DOM building for both pages. Text goes in as text nodes, never as HTML:
 * a message like `<img src=x onerror=alert(1)>` shows literally and runs nothing.
 */
type Props = {
  class?: string
  text?: string
  attrs?: Record<string, string>
  on?: Partial<{ [E in keyof HTMLElementEventMap]: (ev: HTMLElementEventMap[E]) => void }>
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (props.class) el.className = props.class
  if (props.text !== undefined) el.textContent = props.text
  for (const [name, value] of Object.entries(props.attrs ?? {})) el.setAttribute(name, value)
  for (const [event, handler] of Object.entries(props.on ?? {})) el.addEventListener(event, handler as EventListener)
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'string' ? document.createTextNode(child) : child)
  }
  return el
}

let nextId = 0
/** A labelled text field: the label names the input for tests and screen readers. */
export function field(label: string, attrs: Record<string, string> = {}): { wrapper: HTMLElement; input: HTMLInputElement } {
  const id = `sb-field-${++nextId}`
  const input = h('input', { attrs: { id, type: 'text', autocomplete: 'off', ...attrs } })
  const wrapper = h('div', { class: 'field' }, h('label', { text: label, attrs: { for: id } }), input)
  return { wrapper, input }
}

/** `10:49` in the reader's locale, from an ISO timestamp. */
export function clock(timestamp: string): string {
  const date = new Date(timestamp)
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

/** `0:42`, `12:05`, `1:02:03` for a span of milliseconds. */
export function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

/** One message in a conversation: who, when, and the text. */
export function messageItem(who: string, timestamp: string, content: string, mine: boolean): HTMLLIElement {
  return h(
    'li',
    { class: `msg ${mine ? 'msg--mine' : 'msg--theirs'}` },
    h('div', { class: 'msg__meta' }, h('span', { class: 'msg__who', text: who }), ' ', h('time', { text: clock(timestamp), attrs: { datetime: timestamp } })),
    h('p', { class: 'msg__body', text: content }),
  )
}
