import { PGlite, type Transaction } from '@electric-sql/pglite'
import type { Database, Queryable, QueryResult } from './db.js'

function wrap(db: PGlite | Transaction): Queryable {
  return {
    async query<Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      const result = await db.query<Row>(sql, params as unknown[] | undefined)
      return { rows: result.rows, rowCount: Math.max(result.affectedRows ?? 0, result.rows.length) }
    },
    async exec(sql: string) {
      await db.exec(sql)
    },
  }
}

/**
 * PGlite (PostgreSQL compiled to WebAssembly, in this process) with its data
 * in `dir`, kept across close and reopen; in memory when `dir` is undefined.
 * One connection: queries and transactions run one after another, which is
 * also what makes `pg_advisory_xact_lock` trivially held. A data directory is
 * for one process at a time.
 */
export async function openPglite(dir: string | undefined): Promise<Database> {
  const db = await PGlite.create(dir === undefined ? undefined : { dataDir: dir })
  return {
    kind: 'pglite',
    ...wrap(db),
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  }
}
