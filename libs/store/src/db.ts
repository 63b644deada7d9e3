/**
 * The one interface both back-ends implement (a `pg.Pool` on a PostgreSQL
 * server, PGlite in-process): every store function takes a `Database` and
 * runs the same SQL on either.
 */

/** Rows of a query, and how many rows it returned or changed. */
export interface QueryResult<Row> {
  rows: Row[]
  rowCount: number
}

/** What runs SQL: the database itself, or a transaction's connection. */
export interface Queryable {
  /** One statement, with `$1 … $n` parameters. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>
  /** A script of several statements, no parameters (a migration file). */
  exec(sql: string): Promise<void>
}

export interface Database extends Queryable {
  /** Which back-end: a PostgreSQL server, or PGlite in this process. */
  readonly kind: 'postgres' | 'pglite'
  /**
   * Runs `fn` in one transaction (BEGIN … COMMIT on one connection): committed
   * when it resolves, rolled back when it throws (and the error rethrown).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Closes every connection (PGlite: flushes its data directory). */
  close(): Promise<void>
}
