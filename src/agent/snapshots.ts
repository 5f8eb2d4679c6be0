import { setTimeout as delay } from 'node:timers/promises';
import { isEtcdsnapError, toEtcdsnapError, type EtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { SnapshotMetadata } from '../core/metadata.js';
import { formatName, RECURRING_BASE } from '../core/names.js';
import type { NodePlan, SnapshotReport } from '../core/plans.js';
import { parseS3Config } from '../core/s3-config.js';
import type { EtcdClient } from '../etcd/client.js';
import { prune, type RetentionRule } from '../snapshot/retention.js';
import { saveSnapshot } from '../snapshot/save.js';
import { closeTarget, createTarget } from '../storage/factory.js';
import type { LocalTarget } from '../storage/local.js';
import type { BackupTarget } from '../storage/target.js';
import { agentEtcdError } from './etcd-access.js';
import type { LocalMember } from './member.js';

/** What one snapshot produced: one report per target, and locations retention deleted. */
export interface SnapshotOutcome {
  name: string;
  reports: SnapshotReport[];
  deleted: string[];
  /** Set when no target stored the snapshot. */
  error?: EtcdsnapError;
}

export interface SnapshotRequest {
  base: string;
  kind: SnapshotMetadata['kind'];
  /** Recurring snapshots prune older ones of their base afterwards. */
  retention: boolean;
  taskId?: string;
  signal?: AbortSignal;
}

/**
 * Takes this node's snapshots with the engine (src/snapshot/save.ts) into the local snapshot
 * dir and, when the plan's policy has S3, into S3 from the same stream; applies retention
 * after recurring ones. Failures become records (`state: failed` with code and message), one
 * per target, never only a log line. Callers serialise calls (the agent's snapshot mutex).
 */
export class SnapshotWorker {
  private s3: { key: string; target: BackupTarget } | undefined;
  private readonly lastUnix = new Map<string, number>();

  constructor(
    private readonly o: { node: string; local: LocalTarget; member: LocalMember; logger: Logger },
  ) {}

  async take(plan: NodePlan, req: SnapshotRequest): Promise<SnapshotOutcome> {
    const { policy } = plan;
    const codec = policy.compression;
    const createdAt = await this.distinctSecond(req.base);
    const name = formatName({ base: req.base, node: this.o.node, unix: Math.floor(createdAt.getTime() / 1000), codec });
    const targets: BackupTarget[] = [this.o.local];
    const reports: SnapshotReport[] = [];
    const failed = (location: string, err: EtcdsnapError): SnapshotReport => ({
      name,
      node: this.o.node,
      state: 'failed',
      location,
      size: 0,
      createdAt: createdAt.toISOString(),
      code: err.code,
      message: err.message.slice(0, 4000),
      metadata: null,
      ...(req.taskId ? { taskId: req.taskId } : {}),
    });
    let s3: BackupTarget | undefined;
    if (policy.s3) {
      try {
        s3 = this.s3Target(plan);
        targets.push(s3);
      } catch (err) {
        // A bad S3 setting fails the S3 copy, not the local one.
        const e = toEtcdsnapError(err, 'INVALID_CONFIG');
        const folder = (policy.s3.folder ?? '').replace(/\/+$/, '');
        reports.push(failed(`s3://${policy.s3.bucket}/${folder ? `${folder}/` : ''}${name}`, e));
      }
    }
    let client: EtcdClient | undefined;
    const began = Date.now();
    try {
      client = await this.o.member.etcd.connect({ endpoints: this.o.member.endpoints });
      const result = await saveSnapshot({
        source: client,
        endpoint: this.o.member.endpoints[0] as string,
        targets,
        node: this.o.node,
        base: req.base,
        kind: req.kind,
        codec,
        kubernetesVersion: plan.kubernetesVersion,
        clusterConfig: plan.clusterConfig,
        cluster: { id: plan.cluster.id, name: plan.cluster.name },
        now: () => createdAt,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      const durationMs = Date.now() - began;
      for (const s of result.stored) {
        reports.push({
          name,
          node: this.o.node,
          state: 'successful',
          location: s.location,
          size: s.size,
          createdAt: createdAt.toISOString(),
          durationMs,
          metadata: s.metadata ?? result.metadata,
          ...(req.taskId ? { taskId: req.taskId } : {}),
        });
      }
      for (const f of result.failures) reports.push(failed(f.target, f.error));
      const deleted = req.retention ? await this.retention(plan, targets.filter((t) => result.stored.some((s) => s.location === t.location(name))), req.signal) : [];
      this.o.logger.info({ name, stored: result.stored.map((s) => s.location), failures: result.failures.length, deleted }, 'snapshot taken');
      return { name, reports, deleted };
    } catch (err) {
      const e = agentEtcdError(err);
      if (e.code !== 'OPERATION_ABORTED') for (const t of targets) reports.push(failed(t.location(name), e));
      if (e.code === 'OPERATION_ABORTED') this.o.logger.info({ name }, 'snapshot cancelled (agent stopping)');
      else this.o.logger.warn({ name, code: e.code, err: e.message }, 'snapshot failed');
      return { name, reports, deleted: [], error: e };
    } finally {
      client?.close();
    }
  }

  /** Releases the S3 client. */
  close(): void {
    if (this.s3) closeTarget(this.s3.target);
    this.s3 = undefined;
  }

  /** One S3 target per distinct setting, so its metadata cache lives across snapshots. */
  s3Target(plan: NodePlan): BackupTarget {
    const key = JSON.stringify([plan.policy.s3, plan.cluster.id]);
    if (this.s3?.key !== key) {
      this.close();
      const target = createTarget({ kind: 's3', config: parseS3Config(plan.policy.s3), clusterId: plan.cluster.id });
      this.s3 = { key, target };
    }
    return this.s3.target;
  }

  /** Names carry unix seconds: a second snapshot of the same base waits for the next second. */
  private async distinctSecond(base: string): Promise<Date> {
    let now = new Date();
    const last = this.lastUnix.get(base);
    const unix = Math.floor(now.getTime() / 1000);
    if (last !== undefined && unix <= last) {
      await delay((last + 1) * 1000 - now.getTime());
      now = new Date();
    }
    this.lastUnix.set(base, Math.floor(now.getTime() / 1000));
    return now;
  }

  /** Keeps the newest N recurring snapshots (local: this node's; S3: per the policy's scope). */
  private async retention(plan: NodePlan, targets: BackupTarget[], signal?: AbortSignal): Promise<string[]> {
    const deleted: string[] = [];
    for (const target of targets) {
      const rule: RetentionRule =
        target.kind === 'local' || !plan.policy.s3
          ? { base: RECURRING_BASE, keep: plan.policy.retention, scope: 'node', node: this.o.node }
          : { base: RECURRING_BASE, keep: plan.policy.s3.retention, scope: plan.policy.s3.retentionScope, ...(plan.policy.s3.retentionScope === 'node' ? { node: this.o.node } : {}) };
      try {
        const r = await prune(target, rule, signal);
        deleted.push(...r.deleted.map((n) => target.location(n)));
        // Another agent pruning the same cluster-wide scope may have deleted it first.
        for (const f of r.failures.filter((x) => x.code !== 'SNAPSHOT_NOT_FOUND')) this.o.logger.warn({ name: f.name, code: f.code, err: f.error }, 'retention could not delete a snapshot');
      } catch (err) {
        if (!isEtcdsnapError(err, 'OPERATION_ABORTED')) this.o.logger.warn({ err: toEtcdsnapError(err).message, target: target.kind }, 'retention failed');
      }
    }
    return deleted;
  }
}
