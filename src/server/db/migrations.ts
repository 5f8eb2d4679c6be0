import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { EtcdsnapError } from '../../core/errors.js';

/**
 * Schema migrations, in code (no files to ship), applied in name order at every start. Only
 * the schema builder and portable types (text, integer, bigint): the same migrations must run
 * on PostgreSQL. Never edit a released migration: add the next one.
 */
const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('clusters')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('kubernetes_version', 'text')
        .addColumn('cluster_config', 'text')
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('s3_secrets', 'text')
        .addColumn('registration_token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('registration_token', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('agent_version', 'text', (c) => c.notNull())
        .addColumn('member_name', 'text', (c) => c.notNull())
        .addColumn('member_client_url', 'text', (c) => c.notNull())
        .addColumn('member_peer_url', 'text', (c) => c.notNull())
        .addColumn('member_state', 'text')
        .addColumn('etcd_version', 'text')
        .addColumn('db_size', 'bigint')
        .addColumn('revision', 'bigint')
        .addColumn('member_error', 'text')
        .addColumn('applied_plan_id', 'text')
        .addColumn('next_scheduled_at', 'bigint')
        .addColumn('last_seen_at', 'bigint')
        .addColumn('last_report_at', 'bigint')
        .addColumn('registered_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('nodes_cluster_name', ['cluster_id', 'name'])
        .execute();

      await db.schema
        .createTable('tokens')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.references('nodes.id').onDelete('cascade'))
        .addColumn('cluster_id', 'text', (c) => c.references('clusters.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tokens_node').on('tokens').column('node_id').execute();

      await db.schema
        .createTable('snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('code', 'text')
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('storage', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('kubernetes_version', 'text')
        .addColumn('metadata', 'text')
        .addColumn('duration_ms', 'bigint')
        .addColumn('seen_at', 'bigint', (c) => c.notNull())
        .addColumn('deleting_task_id', 'text')
        .execute();
      await db.schema.createIndex('snapshots_cluster_created').on('snapshots').columns(['cluster_id', 'created_at']).execute();
      await db.schema.createIndex('snapshots_location').on('snapshots').columns(['cluster_id', 'location']).execute();

      await db.schema
        .createTable('operations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('running_cluster_id', 'text', (c) => c.unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('failure', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema.createIndex('operations_cluster_created').on('operations').columns(['cluster_id', 'created_at']).execute();

      await db.schema
        .createTable('operation_steps')
        .addColumn('operation_id', 'text', (c) => c.notNull().references('operations.id').onDelete('cascade'))
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('operation_steps_pk', ['operation_id', 'node'])
        .execute();

      await db.schema
        .createTable('operation_history')
        .addColumn('operation_id', 'text', (c) => c.notNull().references('operations.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('operation_history_pk', ['operation_id', 'seq'])
        .execute();

      await db.schema
        .createTable('tasks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('cluster_id', 'text', (c) => c.notNull().references('clusters.id').onDelete('cascade'))
        .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
        .addColumn('operation_id', 'text', (c) => c.references('operations.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('code', 'text')
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tasks_node').on('tasks').columns(['node_id', 'created_at']).execute();
      await db.schema.createIndex('tasks_operation').on('tasks').column('operation_id').execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (const t of ['settings', 'tasks', 'operation_history', 'operation_steps', 'operations', 'snapshots', 'tokens', 'nodes', 'clusters']) {
        await db.schema.dropTable(t).ifExists().execute();
      }
    },
  },
  /** Structured output of a finished task (restore tasks report revision, hash, transfer URL…). */
  '0002_task_result': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('tasks').addColumn('result', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('tasks').dropColumn('result').execute();
    },
  },
  /**
   * A covering index for each cluster's newest successful snapshot (the clusters list and the
   * metrics): 36 → 6 ms with 1,000 clusters (docs/benchmarks.md, issue 4).
   */
  '0003_snapshots_newest': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.createIndex('snapshots_cluster_state_created').on('snapshots').columns(['cluster_id', 'state', 'created_at', 'name', 'size']).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('snapshots_cluster_state_created').execute();
    },
  },
};

const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };

/** Applies every pending migration; throws INTERNAL naming the one that failed. */
export async function migrate(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({ db, provider, migrationTableName: 'etcdsnap_migrations', migrationLockTableName: 'etcdsnap_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    throw new EtcdsnapError('INTERNAL', `Database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of the migrations known to this build (for `docs/server.md` and tests). */
export const MIGRATIONS = Object.keys(migrations);

/** Cheap liveness probe of the database. */
export async function ping(db: Kysely<unknown>): Promise<void> {
  await sql`select 1`.execute(db);
}
