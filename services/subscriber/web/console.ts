import { ChatClient, QueueClient, type ConnectionState } from '@switchboard/client'
import type { Visitor } from '@switchboard/protocol'
import { ConversationView, composer, duration, field, h, setting, stored } from '@switchboard/ui'

/** A chat this agent holds; what survives a refresh is `visitor`, `supportId`, `expired`. */
interface HeldChat {
  visitor: Visitor
  supportId?: string
  expired?: boolean
  ended?: boolean
  client?: ChatClient
  panel?: HTMLElement
  conversation?: ConversationView
  /** The visitor's messages this agent has not read (from UnreadCount). */
  unread?: number
}

const NAME_KEY = 'switchboard.agent.name'
const TOKEN_KEY = 'switchboard.agent.token'
const CHATS_KEY = 'switchboard.agent.chats'
const SEEN_KEY = 'switchboard.agent.firstSeen'

// The console is served by Subscriber; ChatServer is by default on the same host, port 9000.
const subscriber = setting('subscriber', window.location.origin)
const chatServer = setting('chatServer', `${window.location.protocol}//${window.location.hostname}:9000`)

const root = document.getElementById('switchboard-console') ?? document.body.appendChild(h('main', { attrs: { id: 'switchboard-console' } }))
const chats = new Map<string, HeldChat>()
let selected: string | undefined
let agentName = ''
let token: string | undefined
let queue: QueueClient | undefined
// When this console first saw each waiting visitor: the queue frames carry no time.
const firstSeen: Record<string, number> = stored.get<Record<string, number>>(SEEN_KEY) ?? {}

const notice = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
const connection = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
const queueList = h('ul', { class: 'queue', attrs: { 'aria-label': 'Waiting visitors' } })
const queueEmpty = h('p', { class: 'muted', text: 'No one is waiting.' })
const tabs = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'Your chats' } })
const panels = h('div')
const noChats = h('p', { class: 'muted', text: 'Claim a visitor to start chatting.' })

function say(text: string): void {
  notice.textContent = text
  notice.hidden = false
}

function persist(): void {
  stored.set(
    CHATS_KEY,
    [...chats.values()].map(({ visitor, supportId, expired }) => ({ visitor, ...(supportId ? { supportId } : {}), ...(expired ? { expired } : {}) })),
  )
}

/** With agent authentication on, who the agent is comes from their token. */
function tokenView(error?: string): void {
  const input = field('Agent token', { placeholder: 'eyJ…', autocomplete: 'off', spellcheck: 'false' })
  const start = h('button', { text: 'Start', attrs: { type: 'submit' } })
  root.replaceChildren(
    h(
      'form',
      {
        class: 'card',
        on: {
          submit: (ev) => {
            ev.preventDefault()
            const value = input.input.value.trim()
            if (!value) return input.input.focus()
            void signIn(value)
          },
        },
      },
      h('h1', { text: 'Agent console' }),
      error ? h('p', { class: 'banner banner--bad', text: error, attrs: { role: 'alert' } }) : null,
      h('p', {
        class: 'muted',
        text: 'Open the console with the link printed when the server starts, or paste a token from `npm run agent-token -- --name <you>`.',
      }),
      h('div', { class: 'row' }, input.wrapper, start),
    ),
  )
  input.input.focus()
}

/** Checks the token with Subscriber (`/agent/me`), keeps it for refreshes, and opens the console as that agent. */
async function signIn(candidate: string): Promise<void> {
  let res: Response
  try {
    res = await fetch(`${subscriber}/agent/me`, { headers: { authorization: `Bearer ${candidate}` } })
  } catch {
    return tokenView('Cannot reach the support server. Try again in a moment.')
  }
  if (!res.ok) {
    stored.remove(TOKEN_KEY)
    return tokenView(res.status === 401 ? 'That token is not valid or has expired.' : `The server answered ${res.status}.`)
  }
  const me = (await res.json()) as { name: string }
  token = candidate
  stored.set(TOKEN_KEY, candidate)
  consoleView(me.name)
}

function signInView(): void {
  const name = field('Agent name', { maxlength: '64', placeholder: 'Your name as visitors will see it' })
  const start = h('button', { text: 'Start', attrs: { type: 'submit' } })
  root.replaceChildren(
    h(
      'form',
      {
        class: 'card',
        on: {
          submit: (ev) => {
            ev.preventDefault()
            const value = name.input.value.trim()
            if (!value) return name.input.focus()
            stored.set(NAME_KEY, value)
            consoleView(value)
          },
        },
      },
      h('h1', { text: 'Agent console' }),
      h('div', { class: 'row' }, name.wrapper, start),
    ),
  )
  name.input.focus()
}

function consoleView(name: string): void {
  agentName = name
  root.replaceChildren(
    h(
      'div',
      { class: 'card', attrs: { style: 'max-width:1100px;margin-bottom:16px' } },
      h('h1', { text: 'Agent console' }),
      h('p', { class: 'muted', text: `Signed in as ${name}` }),
      connection,
      notice,
    ),
    h(
      'div',
      { class: 'console' },
      h('section', { class: 'card', attrs: { 'aria-label': 'Queue' } }, h('h2', { text: 'Waiting visitors' }), queueEmpty, queueList),
      h('section', { class: 'card', attrs: { 'aria-label': 'Chats' } }, h('h2', { text: 'Your chats' }), noChats, tabs, panels),
    ),
  )
  for (const saved of stored.get<HeldChat[]>(CHATS_KEY) ?? []) {
    if (saved?.visitor?.chatId) openChat(saved.visitor, saved.supportId, saved.expired)
  }
  queue = new QueueClient({
    subscriber,
    ...(token ? { token } : {}),
    handlers: {
      queue: renderQueue,
      state: (state) => showConnection('Queue', state),
    },
  }).connect()
  setInterval(tickWaitingTimes, 1000)
}

function showConnection(what: string, state: ConnectionState): void {
  if (state === 'reconnecting') {
    connection.textContent = `${what} connection lost — reconnecting…`
    connection.hidden = false
  } else if (state === 'open') {
    connection.hidden = true
  }
}

function renderQueue(visitors: readonly Visitor[]): void {
  const now = Date.now()
  let seenChanged = false
  for (const v of visitors) {
    if (firstSeen[v.chatId] === undefined) {
      firstSeen[v.chatId] = now
      seenChanged = true
    }
  }
  for (const chatId of Object.keys(firstSeen)) {
    if (!visitors.some((v) => v.chatId === chatId)) {
      delete firstSeen[chatId]
      seenChanged = true
    }
  }
  if (seenChanged && visitors.length > 0) stored.set(SEEN_KEY, firstSeen)
  queueEmpty.hidden = visitors.length > 0
  queueList.replaceChildren(
    ...visitors.map((v) =>
      h(
        'li',
        { attrs: { 'data-chat-id': v.chatId } },
        h('div', {}, h('div', { class: 'who', text: v.username }), h('div', { class: 'muted waited', attrs: { 'data-since': String(firstSeen[v.chatId] ?? now) } })),
        h('button', { text: 'Claim', attrs: { type: 'button', 'aria-label': `Claim ${v.username}` }, on: { click: () => claim(v) } }),
      ),
    ),
  )
  tickWaitingTimes()
}

function tickWaitingTimes(): void {
  const now = Date.now()
  for (const el of queueList.querySelectorAll<HTMLElement>('.waited')) {
    el.textContent = `waiting ${duration(now - Number(el.dataset.since))}`
  }
}

/**
 * Claiming sends JoinUser (so every agent's queue drops the visitor) and the
 * agent's Join on the chat at once, as seed 004 does. The chat Join decides:
 * the first agent to join the chat has it; another gets ALREADY_CLAIMED.
 */
function claim(visitor: Visitor): void {
  if (chats.has(visitor.chatId)) return select(visitor.chatId)
  queue?.claim(visitor)
  openChat(visitor)
  select(visitor.chatId)
}

function openChat(visitor: Visitor, supportId?: string, expired?: boolean): void {
  const held: HeldChat = { visitor, ...(supportId ? { supportId } : {}), ...(expired ? { expired } : {}) }
  chats.set(visitor.chatId, held)
  const conversation = new ConversationView(`Conversation with ${visitor.username}`, 'Support', () => ({ mine: 'You', theirs: visitor.username }))
  const writer = composer(`Message ${visitor.username}`, () => held.client)
  const banner = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
  const endButton = h('button', {
    class: 'secondary',
    text: 'End chat',
    attrs: { type: 'button' },
    on: { click: () => held.client?.endChat() },
  })
  const closeButton = h('button', {
    class: 'secondary',
    text: 'Close chat',
    attrs: { type: 'button' },
    on: { click: () => dropChat(visitor.chatId) },
  })
  held.panel = h(
    'div',
    { attrs: { role: 'tabpanel', 'aria-label': `Chat with ${visitor.username}`, 'data-chat-id': visitor.chatId } },
    h(
      'div',
      { class: 'row', attrs: { style: 'justify-content:space-between;align-items:center;margin-bottom:8px' } },
      h('h2', { text: `Chat with ${visitor.username}` }),
      h('div', { class: 'row' }, endButton, closeButton),
    ),
    banner,
    conversation.list,
    conversation.typingLine,
    writer.form,
  )
  held.conversation = conversation
  panels.append(held.panel)
  const markEnded = (by: string, reason: string | null) => {
    held.ended = true
    banner.textContent = `${by === 'Support' ? 'You' : visitor.username} ended this chat${reason ? `: ${reason}` : '.'}`
    banner.hidden = false
    writer.disable()
    endButton.hidden = true
    conversation.typing('stop')
    persist()
    renderTabs()
  }
  const markExpired = () => {
    held.expired = true
    held.client?.close()
    banner.textContent = 'This chat has expired.'
    banner.hidden = false
    writer.disable()
    endButton.hidden = true
    persist()
    renderTabs()
  }
  persist()
  renderTabs()
  if (expired) return markExpired()

  held.client = new ChatClient({
    chatServer,
    ...(token ? { token } : {}),
    identity: {
      chatId: visitor.chatId,
      userId: visitor.userId,
      username: visitor.username,
      from: 'Support',
      supportUserName: agentName,
      ...(supportId ? { supportId } : {}),
    },
    handlers: {
      agentJoined: (joined) => {
        held.supportId = joined.supportId
        persist()
      },
      history: (list, _user, info) => {
        if (info.resumed) list.forEach((m) => conversation.add(m))
        else conversation.reset(list)
        acknowledge(held)
      },
      message: (m) => {
        conversation.add(m)
        if (m.from === 'User') {
          conversation.typing('stop')
          acknowledge(held)
        }
      },
      receipt: (r) => conversation.receipt(r.seq, r.status),
      typing: (tp) => conversation.typing(tp.state),
      unread: (count) => {
        held.unread = count
        renderTabs()
      },
      ended: (e) => markEnded(e.by, e.reason),
      expiring: (seconds) => {
        banner.textContent = `This chat will close in ${seconds} s unless someone writes.`
        banner.hidden = false
      },
      expired: markExpired,
      error: (error) => {
        if (error.code === 'ALREADY_CLAIMED' && held.supportId === undefined) {
          say(`${visitor.username} was claimed by another agent.`)
          dropChat(visitor.chatId)
          return
        }
        banner.textContent = error.message
        banner.hidden = false
      },
      state: (state) => showConnection(`Chat with ${visitor.username}`, state),
    },
  }).connect()
}

function dropChat(chatId: string): void {
  const held = chats.get(chatId)
  if (!held) return
  held.client?.close()
  held.panel?.remove()
  chats.delete(chatId)
  if (selected === chatId) selected = chats.keys().next().value
  persist()
  renderTabs()
}

/** The selected chat, while the console is visible, is read; others only received. */
function acknowledge(held: HeldChat): void {
  const seq = held.conversation?.lastTheirSeq ?? 0
  if (seq === 0 || !held.client) return
  if (held.visitor.chatId === selected && document.visibilityState === 'visible') held.client.markRead(seq)
  else held.client.markReceived(seq)
}

document.addEventListener('visibilitychange', () => {
  const held = selected === undefined ? undefined : chats.get(selected)
  if (held) acknowledge(held)
})

function select(chatId: string): void {
  selected = chatId
  renderTabs()
  const held = chats.get(chatId)
  if (held) acknowledge(held)
}

function renderTabs(): void {
  if (selected === undefined || !chats.has(selected)) selected = chats.keys().next().value
  noChats.hidden = chats.size > 0
  tabs.replaceChildren(
    ...[...chats.values()].map(({ visitor, expired, ended, unread }) =>
      h(
        'button',
        {
          class: expired || ended ? 'expired' : '',
          text: expired ? `${visitor.username} (expired)` : ended ? `${visitor.username} (ended)` : visitor.username,
          attrs: { type: 'button', role: 'tab', 'aria-selected': String(visitor.chatId === selected) },
          on: { click: () => select(visitor.chatId) },
        },
        unread ? h('span', { class: 'badge', text: String(unread), attrs: { 'aria-label': `${unread} unread` } }) : null,
      ),
    ),
  )
  for (const held of chats.values()) if (held.panel) held.panel.hidden = held.visitor.chatId !== selected
}

/**
 * A token in the address (`?token=…`, as printed at start) is taken once,
 * kept in sessionStorage, and removed from the address bar so it does not
 * end up in bookmarks, screenshots or Referer headers.
 */
async function boot(): Promise<void> {
  const url = new URL(window.location.href)
  const fromUrl = url.searchParams.get('token')
  if (fromUrl) {
    stored.set(TOKEN_KEY, fromUrl)
    url.searchParams.delete('token')
    window.history.replaceState(null, '', url.toString())
  }
  let agentAuth = true
  try {
    const res = await fetch(`${subscriber}/agent/config`)
    agentAuth = ((await res.json()) as { agentAuth: boolean }).agentAuth
  } catch {
    // Assume the safe case; signing in will say if the server is unreachable.
  }
  if (agentAuth) {
    const saved = stored.get<string>(TOKEN_KEY)
    if (saved) await signIn(saved)
    else tokenView()
    return
  }
  const savedName = stored.get<string>(NAME_KEY)
  if (savedName) consoleView(savedName)
  else signInView()
}

void boot()
