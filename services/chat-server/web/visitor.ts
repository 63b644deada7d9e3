import { ChatClient, registerVisitor, SwitchboardError, type ConnectionState } from '@switchboard/client'
import { userMessage, type Visitor } from '@switchboard/protocol'
import { ConversationView, ErrorBanner, composer, field, h, setting, stored } from '@switchboard/ui'

/** What survives a page refresh (sessionStorage): enough to re-join and get the history back. */
interface VisitorSession {
  visitor: Visitor
  supportId?: string
  agentName?: string
}

const SESSION_KEY = 'switchboard.visitor'
// The page is served by ChatServer, so by default it talks to where it came from.
const chatServer = setting('chatServer', new URL(import.meta.url).origin)

const root = document.getElementById('switchboard-chat') ?? document.body.appendChild(h('main', { attrs: { id: 'switchboard-chat' } }))
root.classList.add('card')

let client: ChatClient | undefined

function show(...children: (Node | null)[]): void {
  root.replaceChildren(...children.filter((c): c is Node => c !== null))
}

/** `about 2 minutes`, `less than a minute`; '' when there is nothing to go on. */
function waitText(seconds: number | null): string {
  if (seconds === null) return ''
  if (seconds < 60) return 'less than a minute'
  const minutes = Math.round(seconds / 60)
  return `about ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`
}

/** Where the visitor stands: "You are number 3 — about 2 minutes". */
function positionText(p: { position: number; estimatedWaitSeconds: number | null }): string {
  const wait = waitText(p.estimatedWaitSeconds)
  const place = p.position === 1 ? 'You are next' : `You are number ${p.position}`
  return wait ? `${place} — ${wait}` : place
}

/** Before starting: is anyone there (GET /status)? Shown under the form; nothing if it cannot be read. */
async function showAvailability(into: HTMLElement): Promise<void> {
  try {
    const res = await fetch(`${chatServer}/status`)
    if (!res.ok) return
    const s = (await res.json()) as { agentsOnline: number; visitorsWaiting: number; estimatedWaitSeconds: number | null }
    if (s.agentsOnline === 0) {
      into.textContent = 'No agents are online right now. You can still start a chat: we will answer as soon as someone is back.'
      return
    }
    const wait = waitText(s.estimatedWaitSeconds)
    into.textContent = `${s.agentsOnline} ${s.agentsOnline === 1 ? 'agent' : 'agents'} online · ${
      s.visitorsWaiting === 0 ? 'no one waiting' : `${s.visitorsWaiting} waiting`
    }${wait ? ` · usual wait ${wait}` : ''}`
  } catch {
    // Availability is a courtesy: the form works without it.
  }
}

function startView(error?: string): void {
  const name = field('Name', { maxlength: '64', placeholder: 'Your name' })
  const start = h('button', { text: 'Start chat', attrs: { type: 'submit' } })
  const problem = h('p', { class: 'field-error', attrs: { role: 'alert', id: `${name.input.id}-problem`, hidden: '' } })
  name.input.setAttribute('aria-describedby', problem.id)
  name.input.addEventListener('input', () => {
    problem.hidden = true
    name.input.removeAttribute('aria-invalid')
  })
  const form = h(
    'form',
    {
      on: {
        submit: async (ev) => {
          ev.preventDefault()
          const value = name.input.value.trim()
          if (!value) {
            // Say what is wrong, not only refocus: an empty or blank name is not a name.
            problem.textContent = 'Please enter your name to start the chat.'
            problem.hidden = false
            name.input.setAttribute('aria-invalid', 'true')
            name.input.focus()
            return
          }
          start.disabled = true
          try {
            const visitor = await registerVisitor(chatServer, value)
            const session: VisitorSession = { visitor }
            stored.set(SESSION_KEY, session)
            connect(session)
          } catch (err) {
            // A bad name is the visitor's to fix; anything else (busy, Redis down) is ours: try again.
            startView(
              err instanceof SwitchboardError && err.code === 'INVALID_USERNAME'
                ? userMessage(err.code)
                : 'Could not start the chat right now. Please try again in a moment.',
            )
          }
        },
      },
    },
    h('div', { class: 'row' }, name.wrapper, start),
    problem,
  )
  const availability = h('p', { class: 'muted availability', attrs: { role: 'status' } })
  show(
    h('h1', { text: 'Chat with support' }),
    error ? h('p', { class: 'banner banner--bad', text: error, attrs: { role: 'alert' } }) : null,
    h('p', { class: 'muted', text: 'Tell us your name and an agent will be with you shortly.' }),
    form,
    availability,
  )
  name.input.focus()
  void showAvailability(availability)
}

function connect(session: VisitorSession): void {
  client?.close()
  const connection = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
  const status = h('div', { class: 'status', attrs: { role: 'status' } }, h('span', { class: 'dot' }), h('span', { text: 'Connecting…' }))
  // Where a waiting visitor stands (v2 QueuePosition); hidden once an agent joins.
  const position = h('p', { class: 'muted position', attrs: { 'aria-live': 'polite', hidden: '' } })
  const title = h('h1', { text: 'Chat with support' })
  const conversation = new ConversationView('Conversation', 'User', () => ({ mine: 'You', theirs: session.agentName ?? 'Agent' }))
  const notice = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
  // While waiting (v2): the first message can be written now, and the agent reads it when they join.
  const writeNow = h('p', { class: 'muted write-now', text: 'You can write your question now: the agent will see it when they join.', attrs: { hidden: '' } })
  const writer = composer('Type a message', () => client)
  const end = h('button', {
    class: 'secondary',
    text: 'End chat',
    attrs: { type: 'button' },
    on: { click: () => client?.endChat() },
  })
  writer.form.hidden = true
  end.hidden = true
  show(title, connection, notice, status, position, writeNow, conversation.list, conversation.typingLine, writer.form, h('p', {}, end))

  const setStatus = (text: string, busy: boolean) => {
    status.replaceChildren(...(busy ? [h('span', { class: 'dot' })] : []), h('span', { text }))
  }
  const chatting = (agentName: string) => {
    position.hidden = true
    writeNow.hidden = true
    title.textContent = `Chatting with ${agentName}`
    setStatus(`${agentName} joined the chat`, false)
    writer.form.hidden = false
    end.hidden = false
  }
  // What the visitor can see counts as read; what arrives in a hidden tab only as received.
  const acknowledge = () => {
    const seq = conversation.lastTheirSeq
    if (seq === 0 || !client) return
    if (document.visibilityState === 'visible') client.markRead(seq)
    else client.markReceived(seq)
  }
  document.addEventListener('visibilitychange', acknowledge)
  const ended = (by: string, reason: string | null) => {
    // No one is chatting any more: the heading must not say so.
    title.textContent = 'Chat ended'
    notice.textContent = `${by === 'User' ? 'You' : (session.agentName ?? 'The agent')} ended this chat${reason ? `: ${reason}` : '.'}`
    notice.dataset.kind = 'ended'
    notice.hidden = false
    writer.form.hidden = true
    end.hidden = true
    conversation.typing('stop')
    status.replaceChildren(
      h('button', { text: 'Start a new chat', attrs: { type: 'button' }, on: { click: () => startOver() } }),
    )
  }
  // The banner over the conversation: the connection is down, or the server could not take something;
  // in plain words (UserMessages), and gone once things work again (open, a message stored, nothing held).
  const errors = new ErrorBanner(connection)
  const onState = (state: ConnectionState, info: { delayMs?: number }) => {
    if (state === 'reconnecting') {
      connection.hidden = false
      connection.dataset.kind = 'connection'
      const unsent = (client?.pendingCount ?? 0) > 0 ? ' Your message will be sent.' : ''
      connection.textContent = `Connection lost — reconnecting${info.delayMs !== undefined ? ` in ${Math.ceil(info.delayMs / 1000)} s` : ''}…${unsent}`
    } else if (state === 'open') {
      connection.hidden = true
      delete connection.dataset.kind
    }
  }

  client = new ChatClient({
    chatServer,
    identity: {
      chatId: session.visitor.chatId,
      userId: session.visitor.userId,
      username: session.visitor.username,
      from: 'User',
      ...(session.supportId ? { supportId: session.supportId } : {}),
    },
    handlers: {
      state: onState,
      waiting: () => {
        // Also after an agent put the visitor back in the queue. Over v2 the visitor can write meanwhile:
        // the server keeps it for the agent who joins (a seed-004 server cannot).
        title.textContent = 'Chat with support'
        const canWrite = client?.protocol === 'v2'
        writer.form.hidden = !canWrite
        writeNow.hidden = !canWrite
        end.hidden = true
        conversation.typing('stop')
        setStatus('Waiting for an agent…', true)
      },
      queuePosition: (p) => {
        position.textContent = positionText(p)
        position.hidden = false
      },
      agentJoined: (joined) => {
        session.supportId = joined.supportId
        session.agentName = joined.supportUserName
        stored.set(SESSION_KEY, session)
        chatting(joined.supportUserName)
      },
      history: (list, _user, info) => {
        // A waiting v2 visitor gets what they wrote so far, with no agent yet.
        if (client?.supportId !== undefined) chatting(session.agentName ?? 'your agent')
        if (info.resumed) list.forEach((m) => conversation.add(m))
        else conversation.reset(list)
        acknowledge()
      },
      message: (m) => {
        // Any message keeps the chat alive: a warning about it closing no longer holds.
        if (notice.dataset.kind === 'expiring') notice.hidden = true
        conversation.add(m)
        if (m.from === 'Support') {
          conversation.typing('stop')
          acknowledge()
        }
      },
      receipt: (r) => conversation.receipt(r.seq, r.status),
      typing: (tp) => conversation.typing(tp.state),
      unread: (count) => {
        document.title = count > 0 ? `(${count}) Chat with support` : 'Chat with support'
      },
      ended: (e) => ended(e.by, e.reason),
      expiring: (seconds) => {
        notice.textContent = `This chat will close in ${seconds} s unless someone writes.`
        notice.dataset.kind = 'expiring'
        notice.hidden = false
      },
      expired: () => expiredView(),
      acked: () => errors.clear(),
      pending: (list, held) => {
        conversation.pending(list, held, () => client?.retryNow())
        errors.held(held)
      },
      error: (error) => errors.show(error.code),
    },
  }).connect()
}

/** Leaves the current chat for good and shows the start form. */
function startOver(): void {
  client?.close()
  client = undefined
  stored.remove(SESSION_KEY)
  document.title = 'Chat with support'
  startView()
}

function expiredView(): void {
  client?.close()
  client = undefined
  stored.remove(SESSION_KEY)
  show(
    h('h1', { text: 'Chat with support' }),
    h('p', { class: 'banner banner--warn', text: 'This chat has expired.', attrs: { role: 'status' } }),
    h('button', { text: 'Start a new chat', attrs: { type: 'button' }, on: { click: () => startView() } }),
  )
}

const saved = stored.get<VisitorSession>(SESSION_KEY)
if (saved?.visitor?.chatId) connect(saved)
else startView()
