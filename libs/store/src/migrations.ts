import { readdir, readFile } from 'node:fs/promises'
import type { Database } from './db.js'

/**
 * The migrations: numbered plain `.sql` files (`001_conversations.sql` …) in
 * the package's `migrations/`, read relative to this module, so from `src/`
 * and from `dist/` alike (a deployment keeps `migrations/` beside `dist/`).
 */
export const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)

/**
 * The key of the advisory lock every migrating instance takes first, so two
 * instances starting at once never apply one migration twice: the second
 * waits, then finds it recorded. (PGlite has one connection, so the lock is
 * always free there; it accepts the call all the same.)
 */
export const MIGRATION_LOCK_KEY = 0x5357_4d49

const FILE = /^(\d+)_[a-z0-9_]+\.sql$/

export interface Migration {
  version: number
  name: string
  sql: string
}

/** The migration files, in order of their number. */
export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => FILE.test(name))
  const migrations = await Promise.all(
    names.map(async (name) => ({ version: Number(FILE.exec(name)![1]), name, sql: await readFile(new URL(name, dir), 'utf8') })),
  )
  migrations.sort((a, b) => a.version - b.version)
  for (const [i, m] of migrations.entries()) {
    if (i > 0 && migrations[i - 1]!.version === m.version) throw new Error(`two migrations numbered ${m.version}`)
  }
  return migrations
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order,
 * each in its own transaction under the advisory lock (its SQL and its record
 * commit together, or neither does). Resolves to the names it applied: none
 * when the schema is up to date.
 */
export async function migrate(db: Database, migrations?: Migration[]): Promise<string[]> {
  const pending = migrations ?? (await readMigrations())
  const applied: string[] = []
  for (const migration of pending) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
      await tx.exec(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      )
      const found = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version])
      if (found.rows.length > 0) return false
      await tx.exec(migration.sql)
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
      return true
    })
    if (done) applied.push(migration.name)
  }
  return applied
}
