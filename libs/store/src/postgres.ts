import pg from 'pg'
import type { Database, Queryable, QueryResult } from './db.js'

export interface PostgresOptions {
  /** Connections in the pool. @default 10 */
  max?: number
  /** Called with an idle connection's error (e.g. the server restarted); the pool drops that connection and opens a new one when next needed. @default ignore */
  onError?: (err: Error) => void
  /** Give up connecting after this long. @default 5000 */
  connectionTimeoutMillis?: number
}

/** bigint (int8) columns read as numbers, as PGlite reads them: ids and counts stay far below 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format)
  },
}

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      const result = await client.query(sql, params as unknown[] | undefined)
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 }
    },
    async exec(sql: string) {
      // Without parameters node-postgres sends the simple query protocol, which runs several statements.
      await client.query(sql)
    },
  }
}

/**
 * A pool of connections to the PostgreSQL server at `url`
 * (`postgres://user:password@host:port/database`). Connections are opened
 * when needed, so a server that is down fails the queries made meanwhile and
 * the pool serves new ones once it is back.
 */
export function connectPostgres(url: string, opts: PostgresOptions = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 5000,
    types,
  })
  // Without a listener an idle connection's error (server gone) would crash the process.
  pool.on('error', (err) => opts.onError?.(err))
  const self = wrap(pool)
  return {
    kind: 'postgres',
    ...self,
    async transaction(fn) {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        await client.query('BEGIN')
        const result = await fn(wrap(client))
        await client.query('COMMIT')
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr
        })
        throw err
      } finally {
        // A connection whose ROLLBACK failed is not given back to the pool.
        client.release(broken)
      }
    },
    close: () => pool.end(),
  }
}
