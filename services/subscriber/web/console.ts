import { ChatClient, QueueClient, type ConnectionState, type WaitingVisitor } from '@switchboard/client'
import { userMessage, type AgentPresence, type MyChat, type Visitor } from '@switchboard/protocol'
import { ConversationView, ErrorBanner, composer, duration, field, h, setting, stored } from '@switchboard/ui'

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
  /** Rebuilds the transfer choices when the team changes. */
  renderTransfer?: () => void
}

const NAME_KEY = 'switchboard.agent.name'
const TOKEN_KEY = 'switchboard.agent.token'
const CHATS_KEY = 'switchboard.agent.chats'
const SEEN_KEY = 'switchboard.agent.firstSeen'

// The console is served by Subscriber. Where ChatServer is: ?chatServer=, window.SWITCHBOARD, then what
// Subscriber's /agent/config says (CHAT_SERVER_PUBLIC_URL or its CHAT_SERVER_PORT), then port 9000 here.
const subscriber = setting('subscriber', window.location.origin)
let chatServer = setting('chatServer', `${window.location.protocol}//${window.location.hostname}:9000`)

const root = document.getElementById('switchboard-console') ?? document.body.appendChild(h('main', { attrs: { id: 'switchboard-console' } }))
const chats = new Map<string, HeldChat>()
let selected: string | undefined
let agentName = ''
/** This agent's id, from the token (undefined when agents are anonymous). */
let myAgentId: string | undefined
let token: string | undefined
let queue: QueueClient | undefined
/** The team online, from AgentsOnline (v2). */
let team: readonly AgentPresence[] = []
/** Chats one agent may hold (0: no limit), from /agent/config. */
let maxChats = 0
// When this console first saw each waiting visitor: the queue frames carry no time.
const firstSeen: Record<string, number> = stored.get<Record<string, number>>(SEEN_KEY) ?? {}

const notice = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
const connection = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
const queueList = h('ul', { class: 'queue', attrs: { 'aria-label': 'Waiting visitors' } })
const queueEmpty = h('p', { class: 'muted', text: 'No one is waiting.' })
const tabs = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'Your chats' } })
const panels = h('div')
const noChats = h('p', { class: 'muted', text: 'Claim a visitor to start chatting.' })
const teamList = h('ul', { class: 'team', attrs: { 'aria-label': 'Agents online' } })
const seats = h('p', { class: 'muted seats', attrs: { 'aria-live': 'polite' } })
const statusSelect = h(
  'select',
  {
    attrs: { 'aria-label': 'Your status' },
    on: { change: () => queue?.setStatus(statusSelect.value === 'away' ? 'away' : 'online') },
  },
  h('option', { text: 'Online', attrs: { value: 'online' } }),
  h('option', { text: 'Away', attrs: { value: 'away' } }),
)

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
        text: 'Open the console with the link printed when the server starts, or paste a token made with: npm run agent-token -- --name <you>',
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
  const me = (await res.json()) as { agentId: string; name: string }
  token = candidate
  myAgentId = me.agentId
  stored.set(TOKEN_KEY, candidate)
  consoleView(me.name)
}

function signInView(): void {
  const name = field('Agent name', { maxlength: '64', placeholder: 'Your name as visitors will see it' })
  const start = h('button', { text: 'Start', attrs: { type: 'submit' } })
  const problem = h('p', { class: 'field-error', text: 'Please enter your name.', attrs: { role: 'alert', hidden: '' } })
  name.input.addEventListener('input', () => (problem.hidden = true))
  root.replaceChildren(
    h(
      'form',
      {
        class: 'card',
        on: {
          submit: (ev) => {
            ev.preventDefault()
            const value = name.input.value.trim()
            if (!value) {
              // Say what is wrong, not only refocus.
              problem.hidden = false
              return name.input.focus()
            }
            stored.set(NAME_KEY, value)
            consoleView(value)
          },
        },
      },
      h('h1', { text: 'Agent console' }),
      h('div', { class: 'row' }, name.wrapper, start),
      problem,
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
      h(
        'div',
        { class: 'stack' },
        h('section', { class: 'card', attrs: { 'aria-label': 'Queue' } }, h('h2', { text: 'Waiting visitors' }), queueEmpty, queueList),
        myAgentId === undefined
          ? null
          : h(
              'section',
              { class: 'card', attrs: { 'aria-label': 'Team' } },
              h('div', { class: 'row', attrs: { style: 'justify-content:space-between;align-items:center' } }, h('h2', { text: 'Team' }), statusSelect),
              seats,
              teamList,
            ),
      ),
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
      agents: renderTeam,
      myChats: restoreChats,
      assigned: (a) => {
        say(`${agentNameOf(a.fromAgentId)} handed you the chat with ${a.username}.`)
        if (!chats.has(a.chatId)) openChat({ chatId: a.chatId, userId: a.userId, username: a.username })
        select(a.chatId)
      },
      unassigned: (u) => {
        const held = chats.get(u.chatId)
        if (held) say(transferredText(held.visitor.username, u.toAgentId))
        dropChat(u.chatId)
      },
      error: (error) => say(userMessage(error.code)),
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

function agentNameOf(agentId: string): string {
  return team.find((a) => a.agentId === agentId)?.name ?? 'Another agent'
}

function transferredText(username: string, toAgentId: string | null | undefined): string {
  if (toAgentId === null) return `${username} is back in the queue.`
  return toAgentId === undefined ? `${username} was handed to another agent.` : `${username} was handed to ${agentNameOf(toAgentId)}.`
}

/** AgentsOnline: who is on the team right now, this agent's seats, and whom a chat can go to. */
function renderTeam(agents: readonly AgentPresence[]): void {
  team = agents
  const me = agents.find((a) => a.agentId === myAgentId)
  if (me) {
    statusSelect.value = me.status
    seats.textContent = maxChats > 0 ? `Seats: ${me.activeChats} of ${maxChats} in use` : `${me.activeChats} chats open`
  }
  teamList.replaceChildren(
    ...agents.map((a) =>
      h(
        'li',
        { attrs: { 'data-agent-id': a.agentId } },
        h('span', { class: `presence presence--${a.status}`, attrs: { 'aria-hidden': 'true' } }),
        h('span', { class: 'who', text: a.agentId === myAgentId ? `${a.name} (you)` : a.name }),
        h('span', { class: 'muted', text: ` ${a.status} · ${a.activeChats} ${a.activeChats === 1 ? 'chat' : 'chats'}` }),
      ),
    ),
  )
  for (const held of chats.values()) held.renderTransfer?.()
}

/** MyChats: the chats this agent holds, so a reload or a second device opens them all. */
function restoreChats(mine: readonly MyChat[]): void {
  for (const c of mine) if (!chats.has(c.chatId)) openChat({ chatId: c.chatId, userId: c.userId, username: c.username })
}

function renderQueue(visitors: readonly WaitingVisitor[]): void {
  const now = Date.now()
  let seenChanged = false
  for (const v of visitors) {
    // v2 says when the visitor was queued; a seed server does not, so count from when this console saw them.
    const since = v.since === undefined ? NaN : Date.parse(v.since)
    if (!Number.isNaN(since)) firstSeen[v.chatId] = since
    else if (firstSeen[v.chatId] === undefined) {
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
  // Transfer: to an online agent with a free seat, or back to the head of the queue.
  const transferTo = h('select', { attrs: { 'aria-label': `Transfer ${visitor.username} to` } })
  const transferButton = h('button', {
    class: 'secondary',
    text: 'Transfer',
    attrs: { type: 'button' },
    on: {
      click: () => {
        if (!transferTo.value) return
        queue?.transfer(visitor.chatId, transferTo.value === 'queue' ? null : transferTo.value)
      },
    },
  })
  const transfer = h('div', { class: 'row transfer' }, transferTo, transferButton)
  transfer.hidden = myAgentId === undefined
  held.renderTransfer = () => {
    const chosen = transferTo.value
    const options = [
      h('option', { text: 'Back to the queue', attrs: { value: 'queue' } }),
      ...team
        .filter((a) => a.agentId !== myAgentId && a.status === 'online' && (maxChats === 0 || a.activeChats < maxChats))
        .map((a) => h('option', { text: a.name, attrs: { value: a.agentId } })),
    ]
    transferTo.replaceChildren(...options)
    if (options.some((o) => o.value === chosen)) transferTo.value = chosen
  }
  held.renderTransfer()
  held.panel = h(
    'div',
    { attrs: { role: 'tabpanel', 'aria-label': `Chat with ${visitor.username}`, 'data-chat-id': visitor.chatId } },
    h(
      'div',
      { class: 'row', attrs: { style: 'justify-content:space-between;align-items:center;margin-bottom:8px' } },
      h('h2', { text: `Chat with ${visitor.username}` }),
      h('div', { class: 'row' }, endButton, closeButton),
    ),
    transfer,
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
    transfer.hidden = true
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
    transfer.hidden = true
    persist()
    renderTabs()
  }
  const errors = new ErrorBanner(banner)
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
      transferred: (toAgentId) => {
        // The queue socket's ChatUnassigned may have let go of the chat already, with the better message.
        if (chats.get(visitor.chatId) !== held) return
        say(transferredText(visitor.username, toAgentId))
        dropChat(visitor.chatId)
      },
      error: (error) => {
        if (error.code === 'ALREADY_CLAIMED' && held.supportId === undefined) {
          say(`${visitor.username} was claimed by another agent.`)
          dropChat(visitor.chatId)
          return
        }
        // Taking this visitor would go past this agent's seats, or the agent is away.
        if ((error.code === 'AGENT_AT_CAPACITY' || error.code === 'AGENT_AWAY') && held.supportId === undefined) {
          say(userMessage(error.code))
          dropChat(visitor.chatId)
          return
        }
        errors.show(error.code)
      },
      // An error shown over the chat goes once things work again: a message stored, nothing held, a new connection.
      acked: () => errors.clear(),
      pending: (list, isHeld) => {
        conversation.pending(list, isHeld, () => held.client?.retryNow())
        errors.held(isHeld)
      },
      state: (state) => {
        if (state === 'open') errors.clear()
        showConnection(`Chat with ${visitor.username}`, state)
      },
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
    const config = (await res.json()) as { agentAuth: boolean; maxChatsPerAgent?: number; chatServer?: string }
    agentAuth = config.agentAuth
    maxChats = config.maxChatsPerAgent ?? 0
    // An older Subscriber does not say; the query parameter and the global still win over it.
    if (config.chatServer) chatServer = setting('chatServer', config.chatServer)
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
