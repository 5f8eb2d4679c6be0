import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';

export interface OpenedDatabase {
  db: Kysely<Database>;
  /** Migrations applied by this open. */
  applied: string[];
  close(): Promise<void>;
}

/**
 * Opens (creating) the SQLite database at `file` — WAL journal, foreign keys on, a busy
 * timeout for a second reader such as `sqlite3` — and migrates it to the latest schema.
 */
export async function openSqlite(file: string): Promise<OpenedDatabase> {
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const applied = await migrate(db as Kysely<unknown>);
    return { db, applied, close: () => db.destroy() };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
