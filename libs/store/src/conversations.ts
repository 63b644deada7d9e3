import { createHash } from 'node:crypto'
import type { Database, Queryable } from './db.js'

/*
 * The durable record of conversations: what the archiver (issue 17, not yet
 * wired into the services) writes and the REST API will read. Every function
 * takes a Database, a pg pool or PGlite, and runs the same SQL on both.
 */

export const STATUSES = ['OPEN', 'IN_PROGRESS', 'WAITING_FOR_USER', 'WAITING_FOR_ADMIN', 'RESOLVED', 'CLOSED'] as const
export type Status = (typeof STATUSES)[number]

/** A conversation's fields as a writer knows them; what is left out is kept as stored. */
export interface ConversationFields {
  chatId: string
  visitorId?: string
  userId?: string
  username?: string
  email?: string
  subject?: string
  category?: string
  priority?: string
  status?: Status
  agentId?: string
  supportUserName?: string
  createdAt?: Date
  claimedAt?: Date
  endedAt?: Date
  endedBy?: string
  endReason?: string
  expiredAt?: Date
  tags?: string[]
}

/** Column of each field (the same order everywhere below). */
const COLUMNS = {
  visitorId: 'visitor_id',
  userId: 'user_id',
  username: 'username',
  email: 'email',
  subject: 'subject',
  category: 'category',
  priority: 'priority',
  status: 'status',
  agentId: 'agent_id',
  supportUserName: 'support_user_name',
  createdAt: 'created_at',
  claimedAt: 'claimed_at',
  endedAt: 'ended_at',
  endedBy: 'ended_by',
  endReason: 'end_reason',
  expiredAt: 'expired_at',
  tags: 'tags',
} as const satisfies Record<Exclude<keyof ConversationFields, 'chatId'>, string>

/** Creates the conversation, or sets the given fields of the one there. */
export async function upsertConversation(db: Queryable, fields: ConversationFields): Promise<void> {
  const given = (Object.keys(COLUMNS) as (keyof typeof COLUMNS)[]).filter((k) => fields[k] !== undefined)
  const columns = given.map((k) => COLUMNS[k])
  const values = given.map((k) => fields[k])
  const placeholders = values.map((_, i) => `$${i + 2}`)
  const update = columns.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
  await db.query(
    `INSERT INTO conversations (chat_id${columns.map((c) => `, ${c}`).join('')}) VALUES ($1${placeholders.map((p) => `, ${p}`).join('')})
     ON CONFLICT (chat_id) ${update}`,
    [fields.chatId, ...values],
  )
}

export interface ArchivedMessage {
  chatId: string
  seq: number
  messageId: string
  from: 'User' | 'Support'
  content: string
  timestamp: string
  clientMessageId?: string
}

/**
 * Stores a batch in one transaction, each message once: a message already
 * there (same chat and seq) is skipped, so a batch delivered twice changes
 * nothing. A conversation not yet recorded is created with what is known.
 * Resolves to how many messages were new.
 */
export async function appendMessages(db: Database, batch: readonly ArchivedMessage[]): Promise<number> {
  if (batch.length === 0) return 0
  return db.transaction(async (tx) => {
    let inserted = 0
    const chats = new Set<string>()
    for (const m of batch) {
      if (!chats.has(m.chatId)) {
        chats.add(m.chatId)
        await tx.query('INSERT INTO conversations (chat_id, created_at) VALUES ($1, $2) ON CONFLICT (chat_id) DO NOTHING', [m.chatId, m.timestamp])
      }
      const r = await tx.query(
        `INSERT INTO messages (chat_id, seq, message_id, from_party, content, sent_at, client_message_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [m.chatId, m.seq, m.messageId, m.from, m.content, m.timestamp, m.clientMessageId ?? null],
      )
      inserted += r.rowCount
    }
    // The counts from the rows themselves: right however often a batch comes.
    for (const chatId of chats) {
      await tx.query(
        `UPDATE conversations SET (message_count, last_message_at) =
           (SELECT count(*), max(sent_at) FROM messages WHERE chat_id = $1) WHERE chat_id = $1`,
        [chatId],
      )
    }
    return inserted
  })
}

/** One event of a conversation's history (created, claimed, transferred, ended, expired, a status change). */
export async function recordEvent(db: Queryable, e: { chatId: string; kind: string; at?: Date; data?: object; eventKey?: string }): Promise<boolean> {
  await db.query('INSERT INTO conversations (chat_id) VALUES ($1) ON CONFLICT (chat_id) DO NOTHING', [e.chatId])
  const r = await db.query(
    `INSERT INTO conversation_events (chat_id, kind, at, data, event_key) VALUES ($1, $2, coalesce($3, now()), $4, $5) ON CONFLICT (event_key) DO NOTHING`,
    [e.chatId, e.kind, e.at ?? null, JSON.stringify(e.data ?? {}), e.eventKey ?? null],
  )
  return r.rowCount === 1
}

export interface Conversation {
  chatId: string
  visitorId: string | null
  username: string | null
  email: string | null
  subject: string | null
  category: string | null
  priority: string | null
  status: Status
  agentId: string | null
  createdAt: string
  endedAt: string | null
  messageCount: number
  lastMessageAt: string | null
  tags: string[]
}

const SELECT_CONVERSATION = `SELECT chat_id, visitor_id, username, email, subject, category, priority, status, agent_id,
  created_at, created_at::text AS created_at_text, ended_at, message_count, last_message_at, tags FROM conversations`

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString())

function conversationOf(r: Record<string, unknown>): Conversation {
  return {
    chatId: r.chat_id as string,
    visitorId: (r.visitor_id as string | null) ?? null,
    username: (r.username as string | null) ?? null,
    email: (r.email as string | null) ?? null,
    subject: (r.subject as string | null) ?? null,
    category: (r.category as string | null) ?? null,
    priority: (r.priority as string | null) ?? null,
    status: r.status as Status,
    agentId: (r.agent_id as string | null) ?? null,
    createdAt: iso(r.created_at)!,
    endedAt: iso(r.ended_at),
    messageCount: Number(r.message_count),
    lastMessageAt: iso(r.last_message_at),
    tags: (r.tags as string[] | null) ?? [],
  }
}

export async function getConversation(db: Queryable, chatId: string): Promise<Conversation | null> {
  const { rows } = await db.query(`${SELECT_CONVERSATION} WHERE chat_id = $1`, [chatId])
  return rows[0] === undefined ? null : conversationOf(rows[0])
}

/** Up to `limit` messages before `beforeSeq` (all when absent), oldest first. */
export async function listMessages(
  db: Queryable,
  chatId: string,
  page: { beforeSeq?: number; limit?: number } = {},
): Promise<{ messages: ArchivedMessage[]; hasMore: boolean }> {
  const limit = page.limit ?? 50
  const { rows } = await db.query(
    `SELECT seq, message_id, from_party, content, sent_at, client_message_id FROM messages
     WHERE chat_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
    [chatId, page.beforeSeq ?? 2 ** 31 - 1, limit + 1],
  )
  const hasMore = rows.length > limit
  const messages = rows.slice(0, limit).reverse().map((r) => ({
    chatId,
    seq: Number(r.seq),
    messageId: r.message_id as string,
    from: r.from_party as 'User' | 'Support',
    content: r.content as string,
    timestamp: iso(r.sent_at)!,
    ...(r.client_message_id ? { clientMessageId: r.client_message_id as string } : {}),
  }))
  return { messages, hasMore }
}

export interface ConversationQuery {
  /** Full text, as a web search box takes it (`websearch_to_tsquery`), over message contents and the subject. */
  q?: string
  status?: Status
  agentId?: string
  category?: string
  priority?: string
  from?: Date
  to?: Date
  cursor?: string
  limit?: number
}

/** Conversations newest first, cursor-paged: `nextCursor` asks for the page after, null on the last one. */
export async function searchConversations(db: Queryable, query: ConversationQuery = {}): Promise<{ items: Conversation[]; nextCursor: string | null }> {
  const where: string[] = []
  const params: unknown[] = []
  const param = (v: unknown) => {
    params.push(v)
    return `$${params.length}`
  }
  for (const [field, column] of [['status', 'status'], ['agentId', 'agent_id'], ['category', 'category'], ['priority', 'priority']] as const) {
    if (query[field] !== undefined) where.push(`${column} = ${param(query[field])}`)
  }
  if (query.from !== undefined) where.push(`created_at >= ${param(query.from)}`)
  if (query.to !== undefined) where.push(`created_at < ${param(query.to)}`)
  if (query.q !== undefined && query.q.trim() !== '') {
    const q = param(query.q)
    where.push(`(search @@ websearch_to_tsquery('simple', ${q}) OR EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = conversations.chat_id
      AND to_tsvector('simple', m.content) @@ websearch_to_tsquery('simple', ${q})))`)
  }
  if (query.cursor !== undefined) {
    const [at, chatId] = decodeCursor(query.cursor)
    where.push(`(created_at, chat_id) < (${param(at)}::timestamptz, ${param(chatId)})`)
  }
  const limit = Math.min(Math.max(query.limit ?? 20, 1), 100)
  const { rows } = await db.query(
    `${SELECT_CONVERSATION} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, chat_id DESC LIMIT ${param(limit + 1)}`,
    params,
  )
  const items = rows.slice(0, limit).map(conversationOf)
  // The cursor keeps created_at as PostgreSQL writes it: a JavaScript Date would drop its microseconds and skip rows of the same millisecond.
  const last = rows[limit - 1]
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.created_at_text as string, last.chat_id as string) : null }
}

const encodeCursor = (createdAt: string, chatId: string): string => Buffer.from(JSON.stringify([createdAt, chatId])).toString('base64url')

/** The cursor's (created_at, chat_id), or an error the API answers 400 with. */
function decodeCursor(cursor: string): [string, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && !Number.isNaN(Date.parse(value[0]))) {
      return [value[0], value[1]]
    }
  } catch {
    // Falls through to the error below.
  }
  throw new RangeError('invalid cursor')
}

/**
 * Erases everything of one visitor (their conversations, with messages and
 * events), recorded in `erasures` with a hash of the identifier and the
 * counts, never the content. Resolves to the conversations erased.
 */
export async function eraseVisitor(db: Database, who: { visitorId: string } | { email: string }, requestedBy?: string): Promise<number> {
  const [selector, value, match] =
    'visitorId' in who ? (['visitor_id', who.visitorId, 'visitor_id = $1'] as const) : (['email', who.email.toLowerCase(), 'lower(email) = $1'] as const)
  return db.transaction(async (tx) => {
    const counted = await tx.query<{ conversations: number; messages: number }>(
      `SELECT count(*)::int AS conversations, coalesce(sum(message_count), 0)::int AS messages FROM conversations WHERE ${match}`,
      [value],
    )
    await tx.query(`DELETE FROM conversations WHERE ${match}`, [value])
    const { conversations, messages } = counted.rows[0]!
    await tx.query('INSERT INTO erasures (selector, subject_sha256, conversations, messages, requested_by) VALUES ($1, $2, $3, $4, $5)', [
      selector,
      createHash('sha256').update(value).digest('hex'),
      conversations,
      messages,
      requestedBy ?? null,
    ])
    return conversations
  })
}

/** Retention: deletes conversations whose last activity is older than `days` days (0: none). Resolves to how many. */
export async function deleteOlderThan(db: Queryable, days: number): Promise<number> {
  if (days <= 0) return 0
  const r = await db.query(
    `DELETE FROM conversations WHERE coalesce(last_message_at, created_at) < now() - make_interval(days => $1::int)`,
    [days],
  )
  return r.rowCount
}
