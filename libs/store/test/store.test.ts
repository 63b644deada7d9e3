/**
 * The same store tests against both back-ends: a real PostgreSQL server this
 * file starts (initdb + pg_ctl, libs/testing), and PGlite in a temp directory.
 */
import t, { type Test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startPostgres } from '@switchboard/testing'
import {
  appendMessages,
  connectPostgres,
  deleteOlderThan,
  eraseVisitor,
  getConversation,
  listMessages,
  migrate,
  openPglite,
  recordEvent,
  searchConversations,
  upsertConversation,
  type ArchivedMessage,
  type Database,
} from '@switchboard/store'

const id = (n: number) => n.toString(16).padStart(32, '0')
const msg = (chat: number, seq: number, content: string, from: 'User' | 'Support' = 'User'): ArchivedMessage => ({
  chatId: id(chat),
  seq,
  messageId: id(1000 * chat + seq),
  from,
  content,
  timestamp: new Date(Date.UTC(2026, 11, 1, 10, 0, seq)).toISOString(),
})

async function suite(t: Test, db: Database): Promise<void> {
  t.test('migrations apply once; again they are a no-op', async (t) => {
    t.same(await migrate(db), ['001_conversations.sql'])
    t.same(await migrate(db), [])
    const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations')
    t.same(rows.map((r) => Number(r.version)), [1])
  })

  t.test('a batch delivered twice stores each message once, in seq order, counted right', async (t) => {
    const batch = [msg(1, 2, 'second'), msg(1, 1, 'hello there'), msg(1, 3, 'a reply', 'Support')]
    t.equal(await appendMessages(db, batch), 3)
    t.equal(await appendMessages(db, [...batch, msg(1, 4, 'fourth')]), 1, 'only the new one')
    const { messages, hasMore } = await listMessages(db, id(1))
    t.same(messages.map((m) => [m.seq, m.content, m.from]), [[1, 'hello there', 'User'], [2, 'second', 'User'], [3, 'a reply', 'Support'], [4, 'fourth', 'User']])
    t.equal(hasMore, false)
    const c = await getConversation(db, id(1))
    t.equal(c?.messageCount, 4)
    t.equal(c?.lastMessageAt, msg(1, 4, '').timestamp)
    const page = await listMessages(db, id(1), { beforeSeq: 4, limit: 2 })
    t.same(page.messages.map((m) => m.seq), [2, 3])
    t.equal(page.hasMore, true)
  })

  t.test('fields, events, search and paging', async (t) => {
    await upsertConversation(db, { chatId: id(1), username: 'Ada', email: 'Ada@Example.com', visitorId: 'v-ada', subject: 'Invoice question', category: 'BILLING', createdAt: new Date('2026-12-01T10:00:00Z') })
    await upsertConversation(db, { chatId: id(2), username: 'Bob', visitorId: 'v-bob', status: 'IN_PROGRESS', createdAt: new Date('2026-12-02T10:00:00Z') })
    await upsertConversation(db, { chatId: id(3), username: 'Cy', visitorId: 'v-cy', createdAt: new Date('2026-12-03T10:00:00Z') })
    await appendMessages(db, [msg(2, 1, 'my router is blinking'), msg(3, 1, 'nothing special')])
    t.equal(await recordEvent(db, { chatId: id(2), kind: 'claimed', data: { agentId: 'a1' }, eventKey: 'e-1' }), true)
    t.equal(await recordEvent(db, { chatId: id(2), kind: 'claimed', data: { agentId: 'a1' }, eventKey: 'e-1' }), false, 'an event delivered twice is stored once')
    t.equal((await getConversation(db, id(1)))?.category, 'BILLING')
    t.equal((await getConversation(db, id(1)))?.messageCount, 4, 'fields set later keep the counts')
    t.equal(await getConversation(db, id(9)), null)

    const ids = async (q: Parameters<typeof searchConversations>[1]) => (await searchConversations(db, q)).items.map((c) => c.chatId)
    t.same(await ids({ q: 'router' }), [id(2)], 'a word of a message')
    t.same(await ids({ q: 'invoice' }), [id(1)], 'a word of the subject')
    t.same(await ids({ q: 'elephant' }), [], 'not a word that is nowhere')
    t.same(await ids({ status: 'IN_PROGRESS' }), [id(2)])
    t.same(await ids({}), [id(3), id(2), id(1)], 'newest first')
    const first = await searchConversations(db, { limit: 2 })
    t.same(first.items.map((c) => c.chatId), [id(3), id(2)])
    t.type(first.nextCursor, 'string')
    const second = await searchConversations(db, { limit: 2, cursor: first.nextCursor! })
    t.same(second.items.map((c) => c.chatId), [id(1)])
    t.equal(second.nextCursor, null)
    await t.rejects(searchConversations(db, { cursor: 'not-a-cursor' }), RangeError)
  })

  t.test('paging keeps rows created within one millisecond (microseconds apart)', async (t) => {
    for (const [n, at] of [[11, '2027-01-01T00:00:00.123400Z'], [12, '2027-01-01T00:00:00.123300Z'], [13, '2027-01-01T00:00:00.123200Z']] as const) {
      await db.query('INSERT INTO conversations (chat_id, created_at) VALUES ($1, $2::timestamptz)', [id(n), at])
    }
    const seen: string[] = []
    let cursor: string | undefined
    for (let page = 0; page < 3; page++) {
      const r = await searchConversations(db, { from: new Date('2027-01-01T00:00:00Z'), limit: 1, ...(cursor ? { cursor } : {}) })
      seen.push(...r.items.map((c) => c.chatId))
      cursor = r.nextCursor ?? undefined
    }
    t.same(seen, [id(11), id(12), id(13)], 'every row once, newest first')
    await db.query('DELETE FROM conversations WHERE chat_id = ANY($1)', [[id(11), id(12), id(13)]])
  })

  t.test('erasure removes everything of one visitor, keeps the others, and is audited without content', async (t) => {
    t.equal(await eraseVisitor(db, { email: 'ada@example.COM' }, 'admin-1'), 1)
    t.equal(await getConversation(db, id(1)), null)
    t.same((await listMessages(db, id(1))).messages, [])
    t.not(await getConversation(db, id(2)), null)
    t.equal(await eraseVisitor(db, { visitorId: 'v-bob' }), 1)
    const { rows: events } = await db.query('SELECT 1 FROM conversation_events WHERE chat_id = $1', [id(2)])
    t.equal(events.length, 0, 'events go with the conversation')
    const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM erasures ORDER BY id')
    t.same(rows.map((r) => [r.selector, r.conversations, r.messages]), [['email', 1, 4], ['visitor_id', 1, 1]])
    t.notMatch(JSON.stringify(rows), /ada@example|v-bob|Invoice/i, 'no identifier or content in the audit')
  })

  t.test('retention deletes what is older than the days given; 0 keeps everything', async (t) => {
    await upsertConversation(db, { chatId: id(4), createdAt: new Date(Date.now() - 40 * 86_400_000) })
    t.equal(await deleteOlderThan(db, 0), 0)
    // id(3)'s last message is 2026-12-01 (the fixture's clock); id(4) was created 40 days ago.
    const before = (await searchConversations(db, {})).items.length
    const deleted = await deleteOlderThan(db, 30)
    t.ok(deleted >= 1, `deleted ${deleted}`)
    t.equal(await getConversation(db, id(4)), null)
    t.equal((await searchConversations(db, {})).items.length, before - deleted)
  })
}

t.test('PostgreSQL server', async (t) => {
  const server = await startPostgres()
  t.teardown(() => server.stop())
  const db = connectPostgres(server.url)
  t.teardown(() => db.close())
  await suite(t, db)

  t.test('the pool recovers after the server crashed and came back', async (t) => {
    await server.kill()
    await t.rejects(db.query('SELECT 1'))
    await server.start()
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations')
    t.equal(rows[0]?.n, 1, 'committed data survived')
  })
})

t.test('PGlite', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sb-pglite-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const db = await openPglite(join(dir, 'data'))
  await suite(t, db)

  t.test('the data directory keeps everything across close and reopen', async (t) => {
    const before = await searchConversations(db, {})
    await db.close()
    const again = await openPglite(join(dir, 'data'))
    t.teardown(() => again.close())
    t.same(await migrate(again), [], 'already migrated')
    t.same(await searchConversations(again, {}), before)
  })
})
