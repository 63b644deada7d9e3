import type { FastifyInstance } from 'fastify'
import { httpErrorSchema, requireAgent } from '@switchboard/server-kit'

const configSchema = {
  summary: 'What the agent console needs before it connects',
  tags: ['agents'],
  response: {
    200: {
      description: 'Console settings',
      type: 'object',
      required: ['agentAuth', 'maxChatsPerAgent', 'chatServer'],
      properties: {
        agentAuth: { type: 'boolean', description: 'Whether agents need a token (AGENT_AUTH)' },
        maxChatsPerAgent: { type: 'integer', description: 'Chats each agent may hold; 0: no limit' },
        chatServer: {
          type: 'string',
          description: "Where the console reaches ChatServer: CHAT_SERVER_PUBLIC_URL, else this request's scheme and host with CHAT_SERVER_PORT",
        },
      },
    },
    403: { ...httpErrorSchema, description: 'ORIGIN_NOT_ALLOWED' },
  },
}

const meSchema = {
  summary: 'Who the presented agent token names',
  description: 'The token goes in `Authorization: Bearer …` or `?token=…`. With AGENT_AUTH=off, `{agentId: null, name: null}`.',
  tags: ['agents'],
  response: {
    200: {
      description: 'The agent',
      type: 'object',
      required: ['agentId', 'name'],
      properties: { agentId: { type: 'string', nullable: true }, name: { type: 'string', nullable: true } },
    },
    401: { ...httpErrorSchema, description: 'TOKEN_MISSING, TOKEN_INVALID or TOKEN_EXPIRED' },
    403: { ...httpErrorSchema, description: 'ORIGIN_NOT_ALLOWED' },
  },
}

/** What the agent console needs to know before it connects. */
export async function agentRoutes(app: FastifyInstance, opts: { maxChatsPerAgent: number; chatServerPublicUrl?: string; chatServerPort: number }) {
  const maxChats = opts.maxChatsPerAgent
  /** Whether agents need a token here, how many chats each may hold (0: no limit), and where ChatServer is. */
  app.get('/agent/config', { schema: configSchema }, async (req) => ({
    agentAuth: app.agentAuth.enabled,
    maxChatsPerAgent: maxChats,
    // Unset: ChatServer is beside Subscriber, on the host the browser used (so a console opened by LAN address works too).
    chatServer: opts.chatServerPublicUrl ?? `${req.protocol}://${req.hostname}:${opts.chatServerPort}`,
  }))

  /** Who the presented token says the agent is (401 if it is not valid). */
  app.get('/agent/me', { schema: meSchema, preValidation: requireAgent }, async (req) =>
    req.agent ?? { agentId: null, name: null },
  )
}
