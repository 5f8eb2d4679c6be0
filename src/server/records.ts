import type { SnapshotReport } from '../core/plans.js';
import { EtcdsnapError, isEtcdsnapError } from '../core/errors.js';
import { createS3Target } from '../storage/s3.js';
import type { StoredSnapshot } from '../storage/target.js';
import { clusterPolicy, clusterSecrets, loadCluster } from './clusters.js';
import type { ServerContext } from './context.js';
import { getNodeByName } from './db/clusters.js';
import type { Db } from './db/schema.js';
import * as snaps from './db/snapshots.js';
import type { SnapshotRow } from './db/snapshots.js';
import { insertTaskOnce } from './db/tasks.js';
import { newId } from './crypto.js';
import { joinS3 } from './policy.js';
import { snapshotView } from './views.js';

/** Snapshot records: one per stored location, from agent reports and S3 listings. */

export type Storage = 'local' | 's3';

/** Stable id: cluster, storage kind and name (names carry the node, see DESIGN "A snapshot"). */
export function recordId(clusterId: string, storage: Storage, name: string): string {
  return `${clusterId}.${storage}.${name}`;
}

export function storageOf(location: string): Storage | undefined {
  if (location.startsWith('file://')) return 'local';
  if (location.startsWith('s3://')) return 's3';
  return undefined;
}

/** JSON with sorted keys: the same document from a report and from a listing compares equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function rowFromReport(clusterId: string, node: string, r: SnapshotReport, now: number): SnapshotRow | undefined {
  const storage = storageOf(r.location);
  if (!storage) return undefined;
  const created = Date.parse(r.createdAt);
  return {
    id: recordId(clusterId, storage, r.name),
    cluster_id: clusterId,
    name: r.name,
    node,
    state: r.state,
    message: r.message ?? null,
    code: r.code ?? null,
    location: r.location,
    storage,
    size: r.size,
    created_at: Number.isFinite(created) ? created : now,
    kubernetes_version: r.metadata?.kubernetesVersion ?? null,
    metadata: r.metadata ? canonicalJson(r.metadata) : null,
    duration_ms: r.durationMs ?? null,
    seen_at: now,
    deleting_task_id: null,
  };
}

export function rowFromListing(clusterId: string, s: StoredSnapshot, now: number): SnapshotRow {
  const created = s.metadata ? Date.parse(s.metadata.createdAt) : s.modifiedAt.getTime();
  return {
    id: recordId(clusterId, 's3', s.name),
    cluster_id: clusterId,
    name: s.name,
    node: s.metadata?.node ?? '',
    state: 'successful',
    message: null,
    code: null,
    location: s.location,
    storage: 's3',
    size: s.size,
    created_at: created,
    kubernetes_version: s.metadata?.kubernetesVersion ?? null,
    metadata: s.metadata ? canonicalJson(s.metadata) : null,
    duration_ms: null,
    seen_at: now,
    deleting_task_id: null,
  };
}

export interface RecordChanges {
  upserted: SnapshotRow[];
  inserted: SnapshotRow[];
  removed: SnapshotRow[];
}

/**
 * Applies a report's snapshots (idempotent upserts) and deletions (by location: a node's own
 * local files, or any S3 object of the cluster) inside the caller's transaction.
 */
export async function applyReportedSnapshots(tx: Db, clusterId: string, node: string, reports: SnapshotReport[], deleted: string[], now: number): Promise<RecordChanges> {
  const out: RecordChanges = { upserted: [], inserted: [], removed: [] };
  for (const r of reports) {
    const row = rowFromReport(clusterId, node, r, now);
    if (!row) continue;
    const result = await snaps.upsertSnapshot(tx, row);
    if (result !== 'unchanged') out.upserted.push(row);
    if (result === 'inserted') out.inserted.push(row);
  }
  for (const row of await snaps.findSnapshotsByLocation(tx, clusterId, deleted)) {
    if (row.storage === 'local' && row.node !== node) continue;
    await snaps.deleteSnapshot(tx, row.id);
    out.removed.push(row);
  }
  return out;
}

export function publishRecords(ctx: ServerContext, changes: Partial<RecordChanges>): void {
  for (const row of changes.upserted ?? []) ctx.events.publish({ type: 'snapshot', snapshot: snapshotView(row), change: 'upsert' });
  for (const row of changes.removed ?? []) ctx.events.publish({ type: 'snapshot', snapshot: snapshotView(row), change: 'delete' });
}

/** Removes failed records older than the TTL (default a day). Returns how many. */
export async function expireFailedRecords(ctx: ServerContext): Promise<number> {
  const expired = await snaps.listExpiredFailed(ctx.db, ctx.now() - ctx.config.failedRecordTtlMs);
  for (const row of expired) await snaps.deleteSnapshot(ctx.db, row.id);
  publishRecords(ctx, { removed: expired });
  if (expired.length > 0) ctx.log.info({ count: expired.length }, 'expired failed snapshot records');
  return expired.length;
}

export interface DeleteResult {
  id: string;
  /** True when the files and the record are gone; false while the node deletes them. */
  deleted: boolean;
  /** The node that deletes a local snapshot (its plan got a delete-snapshots task). */
  node: string | null;
  taskId: string | null;
}

/**
 * Deletes a snapshot's files and its record. S3: directly, with the cluster's settings (an
 * object already gone counts as deleted). Local: a delete-snapshots task in the node's plan;
 * the record goes when the agent reports the location deleted.
 */
export async function deleteRecord(ctx: ServerContext, clusterId: string, id: string): Promise<DeleteResult> {
  const cluster = await loadCluster(ctx, clusterId);
  const row = await snaps.getSnapshot(ctx.db, id);
  if (!row || row.cluster_id !== clusterId) throw new EtcdsnapError('NOT_FOUND', `Snapshot record ${id} not found in cluster ${clusterId}.`, { details: { clusterId, recordId: id } });
  if (row.state === 'failed') {
    await snaps.deleteSnapshot(ctx.db, id);
    publishRecords(ctx, { removed: [row] });
    return { id, deleted: true, node: null, taskId: null };
  }
  if (row.storage === 's3') {
    const policy = clusterPolicy(cluster);
    if (!policy.s3) throw new EtcdsnapError('CONFLICT', `Snapshot ${row.name} is at ${row.location}, but cluster ${cluster.name} has no S3 settings any more: set them again to delete it.`);
    const target = createS3Target(joinS3(policy.s3, clusterSecrets(ctx, cluster)), { clusterId, onWarning: (m) => ctx.log.warn({ clusterId }, m) });
    try {
      if (target.location(row.name) !== row.location) {
        throw new EtcdsnapError('CONFLICT', `Snapshot ${row.name} is at ${row.location}, outside the cluster's current S3 folder s3://${policy.s3.bucket}/${policy.s3.folder}: it is not deleted from here.`);
      }
      await target.delete(row.name);
    } catch (err) {
      if (!isEtcdsnapError(err, 'SNAPSHOT_NOT_FOUND')) throw err;
    } finally {
      target.close();
    }
    await snaps.deleteSnapshot(ctx.db, id);
    publishRecords(ctx, { removed: [row] });
    ctx.log.info({ clusterId, location: row.location }, 'snapshot deleted from S3');
    return { id, deleted: true, node: null, taskId: null };
  }
  const node = await getNodeByName(ctx.db, clusterId, row.node);
  if (!node) {
    // Nobody can delete the file any more: the record alone goes.
    await snaps.deleteSnapshot(ctx.db, id);
    publishRecords(ctx, { removed: [row] });
    return { id, deleted: true, node: null, taskId: null };
  }
  const taskId = newId('del');
  await ctx.db.transaction().execute(async (tx) => {
    await insertTaskOnce(tx, {
      id: taskId,
      cluster_id: clusterId,
      node_id: node.id,
      operation_id: null,
      kind: 'delete-snapshots',
      spec: JSON.stringify({ id: taskId, kind: 'delete-snapshots', names: [row.name] }),
      state: 'pending',
      message: null,
      code: null,
      started_at: null,
      finished_at: null,
      created_at: ctx.now(),
      result: null,
    });
    await snaps.setDeletingTask(tx, id, taskId);
  });
  ctx.plans.notify(clusterId);
  ctx.log.info({ clusterId, node: node.name, location: row.location, taskId }, 'snapshot delete sent to node');
  return { id, deleted: false, node: node.name, taskId };
}
