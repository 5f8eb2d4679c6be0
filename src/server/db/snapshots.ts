import type { Db, SnapshotsTable } from './schema.js';

export type SnapshotRow = SnapshotsTable;

/** Fields whose change is news (an event): not `seen_at`. */
const COMPARED: (keyof SnapshotRow)[] = ['name', 'node', 'state', 'message', 'code', 'location', 'size', 'created_at', 'kubernetes_version', 'metadata', 'deleting_task_id'];

/**
 * Inserts the record or updates it in place (same id: same cluster, storage and name), so an
 * agent may resend a report and a listing may confirm it. Says what happened.
 */
export async function upsertSnapshot(db: Db, row: SnapshotRow): Promise<'inserted' | 'updated' | 'unchanged'> {
  const old = await getSnapshot(db, row.id);
  if (!old) {
    await db.insertInto('snapshots').values(row).execute();
    return 'inserted';
  }
  const { id: _id, cluster_id: _c, deleting_task_id: _d, duration_ms, ...fields } = row;
  // A pending delete and a known duration survive a resend that does not carry them.
  await db
    .updateTable('snapshots')
    .set({ ...fields, duration_ms: duration_ms ?? old.duration_ms })
    .where('id', '=', row.id)
    .execute();
  const changed = COMPARED.some((k) => k !== 'deleting_task_id' && old[k] !== row[k]);
  return changed ? 'updated' : 'unchanged';
}

export function getSnapshot(db: Db, id: string): Promise<SnapshotRow | undefined> {
  return db.selectFrom('snapshots').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first. */
export function listSnapshots(db: Db, clusterId: string, filter: { storage?: 'local' | 's3'; state?: 'successful' | 'failed' } = {}): Promise<SnapshotRow[]> {
  let q = db.selectFrom('snapshots').selectAll().where('cluster_id', '=', clusterId);
  if (filter.storage) q = q.where('storage', '=', filter.storage);
  if (filter.state) q = q.where('state', '=', filter.state);
  return q.orderBy('created_at', 'desc').orderBy('name', 'desc').execute();
}

export function deleteSnapshot(db: Db, id: string): Promise<unknown> {
  return db.deleteFrom('snapshots').where('id', '=', id).execute();
}

export function findSnapshotsByLocation(db: Db, clusterId: string, locations: string[]): Promise<SnapshotRow[]> {
  if (locations.length === 0) return Promise.resolve([]);
  return db.selectFrom('snapshots').selectAll().where('cluster_id', '=', clusterId).where('location', 'in', locations).execute();
}

export function setDeletingTask(db: Db, id: string, taskId: string | null): Promise<unknown> {
  return db.updateTable('snapshots').set({ deleting_task_id: taskId }).where('id', '=', id).execute();
}

export function findSnapshotsByDeletingTask(db: Db, taskId: string): Promise<SnapshotRow[]> {
  return db.selectFrom('snapshots').selectAll().where('deleting_task_id', '=', taskId).execute();
}

/** Failed records created before `before`. */
export function listExpiredFailed(db: Db, before: number): Promise<SnapshotRow[]> {
  return db.selectFrom('snapshots').selectAll().where('state', '=', 'failed').where('created_at', '<', before).execute();
}

/** Newest successful record of each cluster (of `clusterIds`, or of all). */
export type LastSnapshot = Pick<SnapshotRow, 'cluster_id' | 'name' | 'created_at' | 'size'>;

export async function lastSuccessfulByCluster(db: Db, clusterIds?: string[]): Promise<Map<string, LastSnapshot>> {
  let newest = db.selectFrom('snapshots').select(['cluster_id', (eb) => eb.fn.max('created_at').as('m')]).where('state', '=', 'successful');
  if (clusterIds) newest = newest.where('cluster_id', 'in', clusterIds.length ? clusterIds : ['']);
  const rows = await db
    .selectFrom('snapshots as s')
    .innerJoin(newest.groupBy('cluster_id').as('t'), (join) => join.onRef('t.cluster_id', '=', 's.cluster_id').onRef('t.m', '=', 's.created_at'))
    .select(['s.cluster_id', 's.name', 's.created_at', 's.size'])
    .where('s.state', '=', 'successful')
    .execute();
  const out = new Map<string, LastSnapshot>();
  for (const r of rows) if (!out.has(r.cluster_id) || (out.get(r.cluster_id) as LastSnapshot).name < r.name) out.set(r.cluster_id, r);
  return out;
}
