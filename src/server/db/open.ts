import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDialectConfig } from 'kysely';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';

export interface OpenedDatabase {
  db: Kysely<Database>;
  /** Migrations applied by this open. */
  applied: string[];
  close(): Promise<void>;
}

/** Most prepared statements kept (the server issues a few dozen distinct queries; IN lists vary). */
const STATEMENT_CACHE = 256;

/**
 * Kysely prepares every query anew; preparing costs more than running the small queries of a
 * report or a plan poll. Statements are kept by SQL text (better-sqlite3 runs them
 * synchronously, and Kysely only iterates a statement when streaming, which we do not).
 */
function cachingPrepare(sqlite: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const cache = new Map<string, SqliteDatabase.Statement>();
  const prepare = (source: string): SqliteDatabase.Statement => {
    let stmt = cache.get(source);
    if (!stmt) {
      stmt = sqlite.prepare(source);
      if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value as string);
      cache.set(source, stmt);
    }
    return stmt;
  };
  return {
    prepare,
    close: () => {
      cache.clear();
      sqlite.close();
    },
  };
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
  // 64 MiB page cache (default 2 MiB): rows sit behind large metadata documents (docs/benchmarks.md, issue 4).
  sqlite.pragma('cache_size = -65536');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingPrepare(sqlite) }) });
  try {
    const applied = await migrate(db as Kysely<unknown>);
    return { db, applied, close: () => db.destroy() };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
