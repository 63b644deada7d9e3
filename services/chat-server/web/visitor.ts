import { ChatClient, registerVisitor, SwitchboardError, type ConnectionState } from '@switchboard/client'
import type { ChatMessage, Visitor } from '@switchboard/protocol'
import { field, h, messageItem, setting, stored } from '@switchboard/ui'

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

function startView(error?: string): void {
  const name = field('Name', { maxlength: '64', placeholder: 'Your name' })
  const start = h('button', { text: 'Start chat', attrs: { type: 'submit' } })
  const form = h(
    'form',
    {
      on: {
        submit: async (ev) => {
          ev.preventDefault()
          const value = name.input.value.trim()
          if (!value) {
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
            startView(err instanceof SwitchboardError ? err.message : 'Could not reach the support service. Please try again.')
          }
        },
      },
    },
    h('div', { class: 'row' }, name.wrapper, start),
  )
  show(
    h('h1', { text: 'Chat with support' }),
    error ? h('p', { class: 'banner banner--bad', text: error, attrs: { role: 'alert' } }) : null,
    h('p', { class: 'muted', text: 'Tell us your name and an agent will be with you shortly.' }),
    form,
  )
  name.input.focus()
}

function connect(session: VisitorSession): void {
  client?.close()
  const connection = h('p', { class: 'banner banner--warn', attrs: { role: 'status', hidden: '' } })
  const status = h('div', { class: 'status', attrs: { role: 'status' } }, h('span', { class: 'dot' }), h('span', { text: 'Connecting…' }))
  const title = h('h1', { text: 'Chat with support' })
  const messages = h('ol', { class: 'messages', attrs: { 'aria-label': 'Conversation', 'aria-live': 'polite' } })
  const message = field('Message', { placeholder: 'Type a message', maxlength: '4000' })
  const send = h('button', { text: 'Send', attrs: { type: 'submit' } })
  const composer = h(
    'form',
    {
      on: {
        submit: (ev) => {
          ev.preventDefault()
          const text = message.input.value
          if (!text.trim() || !client) return
          // The message appears when the server echoes it, i.e. once it is stored.
          if (client.send(text)) message.input.value = ''
        },
      },
    },
    h('div', { class: 'row' }, message.wrapper, send),
  )
  composer.hidden = true
  show(title, connection, status, messages, composer)

  const setStatus = (text: string, busy: boolean) => {
    status.replaceChildren(...(busy ? [h('span', { class: 'dot' })] : []), h('span', { text }))
  }
  const chatting = (agentName: string) => {
    title.textContent = `Chatting with ${agentName}`
    setStatus(`${agentName} joined the chat`, false)
    composer.hidden = false
  }
  const render = (m: ChatMessage) => {
    const mine = m.from === 'User'
    messages.append(messageItem(mine ? 'You' : (session.agentName ?? 'Agent'), m.timestamp, m.content, mine))
    messages.scrollTop = messages.scrollHeight
  }
  const onState = (state: ConnectionState, info: { delayMs?: number }) => {
    if (state === 'reconnecting') {
      connection.hidden = false
      connection.textContent = `Connection lost — reconnecting${info.delayMs !== undefined ? ` in ${Math.ceil(info.delayMs / 1000)} s` : ''}…`
    } else if (state === 'open') {
      connection.hidden = true
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
      waiting: () => setStatus('Waiting for an agent…', true),
      agentJoined: (joined) => {
        session.supportId = joined.supportId
        session.agentName = joined.supportUserName
        stored.set(SESSION_KEY, session)
        chatting(joined.supportUserName)
      },
      history: (list) => {
        chatting(session.agentName ?? 'your agent')
        messages.replaceChildren()
        list.forEach(render)
      },
      message: render,
      expired: () => expiredView(),
      error: (error) => {
        connection.hidden = false
        connection.textContent = error.message
      },
    },
  }).connect()
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
