import type { Cluster, ClusterNode, Operation, SnapshotRecord } from '../core/api.js';
import { allowedRestoreModes, type SnapshotMetadata } from '../core/metadata.js';
import { parseSchedule } from '../core/schedule.js';
import { clusterPolicy, clusterSecrets } from './clusters.js';
import type { ServerContext } from './context.js';
import type { ClusterRow, NodeRow } from './db/clusters.js';
import { listHistory, listSteps, type OperationRow } from './db/operations.js';
import { lastSuccessfulByCluster, type SnapshotRow } from './db/snapshots.js';
import { policyView } from './policy.js';

/** Rows → API resources. Nothing here returns a secret: policies go through policyView. */

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** Seen within 3 report intervals (a report or a plan request). */
export function nodeConnected(ctx: ServerContext, node: Pick<NodeRow, 'last_seen_at'>): boolean {
  return node.last_seen_at !== null && ctx.now() - node.last_seen_at <= 3 * ctx.config.reportIntervalMs;
}

export function nodeState(ctx: ServerContext, node: NodeRow): ClusterNode['state'] {
  if (!nodeConnected(ctx, node)) return 'disconnected';
  return node.member_state === 'healthy' || node.member_state === 'stopped' ? node.member_state : 'unhealthy';
}

export function nodeView(ctx: ServerContext, n: NodeRow): ClusterNode {
  return {
    id: n.id,
    clusterId: n.cluster_id,
    name: n.name,
    mode: n.mode === 'external' ? 'external' : 'managed',
    agentVersion: n.agent_version,
    member: { name: n.member_name, clientUrl: n.member_client_url, peerUrl: n.member_peer_url },
    state: nodeState(ctx, n),
    etcdVersion: n.etcd_version,
    dbSize: n.db_size,
    error: n.member_state === null ? 'no status reported yet' : n.member_error,
    lastSeenAt: isoOrNull(n.last_seen_at),
    registeredAt: iso(n.registered_at),
  };
}

export function snapshotView(r: SnapshotRow): SnapshotRecord {
  const metadata = r.metadata ? (JSON.parse(r.metadata) as SnapshotMetadata) : null;
  return {
    id: r.id,
    clusterId: r.cluster_id,
    name: r.name,
    node: r.node,
    state: r.state,
    message: r.message,
    code: r.code,
    location: r.location,
    storage: r.storage,
    size: r.size,
    createdAt: iso(r.created_at),
    kubernetesVersion: r.kubernetes_version,
    restoreModes: r.state === 'successful' ? allowedRestoreModes(metadata ?? undefined) : [],
    metadata,
  };
}

/** Cluster resources, with node counts, last snapshot and running operation read in a few batched queries. */
export async function clusterViews(ctx: ServerContext, rows: ClusterRow[]): Promise<Cluster[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [nodes, last, running] = await Promise.all([
    ctx.db.selectFrom('nodes').select(['cluster_id', 'last_seen_at', 'member_state', 'next_scheduled_at']).where('cluster_id', 'in', ids).execute(),
    lastSuccessfulByCluster(ctx.db, ids),
    ctx.db.selectFrom('operations').select(['id', 'running_cluster_id']).where('running_cluster_id', 'in', ids).execute(),
  ]);
  const runningBy = new Map(running.map((o) => [o.running_cluster_id as string, o.id]));
  const nodesBy = new Map<string, typeof nodes>();
  for (const n of nodes) nodesBy.set(n.cluster_id, [...(nodesBy.get(n.cluster_id) ?? []), n]);
  const now = ctx.now();
  return rows.map((r) => {
    const mine = nodesBy.get(r.id) ?? [];
    const connected = mine.filter((n) => nodeConnected(ctx, n));
    const policy = clusterPolicy(r);
    const l = last.get(r.id);
    let next: number | null = null;
    if (policy.enabled) {
      const reported = connected.map((n) => n.next_scheduled_at).filter((t): t is number => t !== null && t > now);
      next = reported.length > 0 ? Math.min(...reported) : safeNext(policy.schedule, now);
    }
    return {
      id: r.id,
      name: r.name,
      kubernetesVersion: r.kubernetes_version,
      clusterConfig: r.cluster_config,
      policy: policyView(policy, clusterSecrets(ctx, r)),
      nodes: { total: mine.length, healthy: connected.filter((n) => n.member_state === 'healthy').length, connected: connected.length },
      lastSuccessfulSnapshot: l ? { name: l.name, createdAt: iso(l.created_at), size: l.size } : null,
      nextScheduledSnapshotAt: isoOrNull(next),
      runningOperationId: runningBy.get(r.id) ?? null,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
    };
  });
}

/** Next runs by `expression|second`: parsing a cron costs ~0.2 ms, and a list of 1000 clusters mostly shares a few schedules. */
const nextRuns = new Map<string, number | null>();

function safeNext(schedule: string, now: number): number | null {
  const key = `${schedule}|${Math.floor(now / 1000)}`;
  const hit = nextRuns.get(key);
  if (hit !== undefined) return hit;
  let next: number | null;
  try {
    next = parseSchedule(schedule).next(new Date(now)).getTime();
  } catch {
    next = null;
  }
  if (nextRuns.size >= 1000) nextRuns.clear();
  nextRuns.set(key, next);
  return next;
}

export async function operationViews(ctx: ServerContext, rows: OperationRow[]): Promise<Operation[]> {
  const ids = rows.map((r) => r.id);
  const [steps, history] = await Promise.all([listSteps(ctx.db, ids), listHistory(ctx.db, ids)]);
  return rows.map((o) => ({
    id: o.id,
    clusterId: o.cluster_id,
    kind: o.kind === 'restore' ? 'restore' : 'snapshot',
    phase: o.phase as Operation['phase'],
    params: JSON.parse(o.params) as Record<string, unknown>,
    steps: steps.filter((s) => s.operation_id === o.id).map((s) => ({ node: s.node, state: s.state, message: s.message, updatedAt: iso(s.updated_at) })),
    history: history.filter((h) => h.operation_id === o.id).map((h) => ({ at: iso(h.at), phase: h.phase, message: h.message })),
    message: o.message,
    failure: o.failure ? (JSON.parse(o.failure) as Operation['failure']) : null,
    createdAt: iso(o.created_at),
    updatedAt: iso(o.updated_at),
    finishedAt: isoOrNull(o.finished_at),
  }));
}
