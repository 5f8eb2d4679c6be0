import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/log.js';
import type { ServerConfig } from './config.js';
import type { ServerDeps } from './context.js';
import { hashToken, Keyring, loadOrCreateKey, newToken } from './crypto.js';
import { countAdminTokens, insertToken } from './db/clusters.js';
import { openSqlite } from './db/open.js';
import type { Db } from './db/schema.js';
import { ensureServerTls, loadGivenTls } from './tls.js';

/** Files of the data dir. */
export const DATA_FILES = { db: 'etcdsnap.db', key: 'server.key', tls: 'tls' } as const;

export interface Bootstrapped {
  deps: ServerDeps;
  /** The admin token, only when this start created it (print it once). */
  adminToken: string | undefined;
  /** Closes the database. */
  close(): Promise<void>;
}

/** Creates the admin token when there is none; returns it then, undefined otherwise. */
export async function ensureAdminToken(db: Db, now: number): Promise<string | undefined> {
  if ((await countAdminTokens(db)) > 0) return undefined;
  const token = newToken('admin');
  await insertToken(db, { hash: hashToken(token), kind: 'admin', node_id: null, cluster_id: null, created_at: now });
  return token;
}

/** Replaces every admin token with a new one (a lost token); returns it. */
export async function resetAdminToken(db: Db, now: number): Promise<string> {
  await db.deleteFrom('tokens').where('kind', '=', 'admin').execute();
  return (await ensureAdminToken(db, now)) as string;
}

/**
 * Everything a server needs from its data dir, made at first start: the directory (0700), the
 * server key (0600), the SQLite database (migrated), the admin token, the CA and leaf
 * certificate (unless plain HTTP or a given certificate).
 */
export async function bootstrap(config: ServerConfig, logger: Logger, options: { resetAdminToken?: boolean; now?: () => number } = {}): Promise<Bootstrapped> {
  const now = options.now ?? Date.now;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  const { key, created } = await loadOrCreateKey(join(config.dataDir, DATA_FILES.key));
  if (created) logger.info({ file: join(config.dataDir, DATA_FILES.key) }, 'server key created: back it up with the database, secrets cannot be read without it');
  const opened = await openSqlite(join(config.dataDir, DATA_FILES.db));
  try {
    if (opened.applied.length > 0) logger.info({ migrations: opened.applied }, 'database migrated');
    const adminToken = options.resetAdminToken ? await resetAdminToken(opened.db, now()) : await ensureAdminToken(opened.db, now());
    let tls = null;
    if (config.tlsCert && config.tlsKey) tls = await loadGivenTls(config.tlsCert, config.tlsKey, config.tlsCA);
    else if (!config.insecureHttp) tls = await ensureServerTls(join(config.dataDir, DATA_FILES.tls), config.hostnames);
    return { deps: { db: opened.db, config, keyring: new Keyring(key), tls, logger, now }, adminToken, close: opened.close };
  } catch (err) {
    await opened.close();
    throw err;
  }
}
