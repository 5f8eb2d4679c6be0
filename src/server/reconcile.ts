import { toEtcdsnapError } from '../core/errors.js';
import { folderPrefix } from '../core/s3-config.js';
import { createS3Target } from '../storage/s3.js';
import { clusterPolicy, clusterSecrets } from './clusters.js';
import type { ServerContext } from './context.js';
import { getCluster, listClusterIds } from './db/clusters.js';
import * as snaps from './db/snapshots.js';
import { joinS3 } from './policy.js';
import { publishRecords, rowFromListing } from './records.js';

export interface ReconcileResult {
  clusterId: string;
  /** Records added or changed from the listing. */
  added: number;
  updated: number;
  /** Records whose objects vanished from S3. */
  removed: number;
  /** Null when the listing worked. */
  error: { code: string; message: string } | null;
}

/**
 * Keeps `s3://` records equal to the bucket: S3 is the source of truth for them. Per cluster,
 * one listing scoped by cluster id (the S3 target ignores other clusters' snapshots in a shared
 * bucket); listed snapshots without a record are added, records under the cluster's current
 * S3 folder whose object is gone are removed — only if they were last confirmed before the
 * listing started (an upload reported during the listing is not dropped). Records of an
 * earlier bucket or folder are left alone: they cannot be checked.
 */
export class S3Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Promise<ReconcileResult>>();
  private readonly requested = new Set<string>();

  constructor(private readonly ctx: () => ServerContext) {}

  /** Reconciles one cluster (joins a run in progress). Null when the cluster has no S3 settings. */
  reconcile(clusterId: string): Promise<ReconcileResult | null> {
    const inflight = this.running.get(clusterId);
    if (inflight) return inflight;
    const run = this.run(clusterId);
    const tracked = run.then((r) => r ?? { clusterId, added: 0, updated: 0, removed: 0, error: null });
    this.running.set(clusterId, tracked);
    void tracked.finally(() => this.running.delete(clusterId));
    return run;
  }

  /** Asks for a reconciliation soon (after a policy change), without waiting for it. */
  request(clusterId: string): void {
    this.requested.add(clusterId);
    setImmediate(() => {
      if (!this.requested.delete(clusterId)) return;
      this.reconcile(clusterId).catch((err: unknown) => this.ctx().log.warn({ err, clusterId }, 'S3 reconciliation failed'));
    });
  }

  private async run(clusterId: string): Promise<ReconcileResult | null> {
    const ctx = this.ctx();
    const cluster = await getCluster(ctx.db, clusterId);
    const s3 = cluster ? clusterPolicy(cluster).s3 : null;
    if (!cluster || !s3) return null;
    const result: ReconcileResult = { clusterId, added: 0, updated: 0, removed: 0, error: null };
    const target = createS3Target(joinS3(s3, clusterSecrets(ctx, cluster)), { clusterId, onWarning: (m) => ctx.log.warn({ clusterId }, m) });
    const started = ctx.now();
    try {
      const listed = await target.list();
      const folder = `s3://${s3.bucket}/${folderPrefix(target.config)}`;
      const inFolder = (loc: string): boolean => loc.startsWith(folder) && !loc.slice(folder.length).includes('/');
      const present = new Set(listed.map((s) => s.location));
      const changes = { upserted: [] as snaps.SnapshotRow[], removed: [] as snaps.SnapshotRow[] };
      await ctx.db.transaction().execute(async (tx) => {
        for (const s of listed) {
          const row = rowFromListing(clusterId, s, ctx.now());
          const old = await snaps.getSnapshot(tx, row.id);
          // A report knows the node and the duration; the listing knows the bytes: keep both.
          if (old && !row.node) row.node = old.node;
          const r = await snaps.upsertSnapshot(tx, row);
          if (r === 'inserted') result.added++;
          if (r === 'updated') result.updated++;
          if (r !== 'unchanged') changes.upserted.push(row);
        }
        for (const row of await snaps.listSnapshots(tx, clusterId, { storage: 's3', state: 'successful' })) {
          if (present.has(row.location) || !inFolder(row.location) || row.seen_at > started) continue;
          await snaps.deleteSnapshot(tx, row.id);
          changes.removed.push(row);
          result.removed++;
        }
      });
      publishRecords(ctx, changes);
      if (result.added || result.updated || result.removed) ctx.log.info({ ...result }, 'S3 snapshot records reconciled');
    } catch (err) {
      const e = toEtcdsnapError(err, 'TARGET_IO');
      result.error = { code: e.code, message: e.message };
      ctx.log.warn({ clusterId, code: e.code, message: e.message }, 'S3 listing failed; records left as they were');
    } finally {
      target.close();
    }
    return result;
  }

  /** Every cluster with S3 settings, a few at a time. */
  async reconcileAll(): Promise<ReconcileResult[]> {
    const ids = await listClusterIds(this.ctx().db);
    const out: ReconcileResult[] = [];
    for (let i = 0; i < ids.length; i += 4) {
      const batch = await Promise.all(ids.slice(i, i + 4).map((id) => this.reconcile(id)));
      for (const r of batch) if (r) out.push(r);
    }
    return out;
  }

  start(): void {
    const period = this.ctx().config.reconcileIntervalMs;
    if (period <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.reconcileAll().catch((err: unknown) => this.ctx().log.warn({ err }, 'S3 reconciliation round failed'));
    }, period);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.requested.clear();
    await Promise.allSettled([...this.running.values()]);
  }
}
