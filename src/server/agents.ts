import { PROTOCOL_VERSION, type AgentReport, type RegistrationRequest, type RegistrationResponse } from '../core/plans.js';
import { EtcdsnapError } from '../core/errors.js';
import type { ServerContext } from './context.js';
import { hashToken, newId, newToken, sameDigest } from './crypto.js';
import * as repo from './db/clusters.js';
import type { ClusterRow, NodeRow } from './db/clusters.js';
import { getOperation } from './db/operations.js';
import * as snaps from './db/snapshots.js';
import { deleteTask, listNodeTasks, updateTask } from './db/tasks.js';
import { applyReportedSnapshots, publishRecords, type RecordChanges } from './records.js';
import { nodeView } from './views.js';

/** The agent side of the API: registration with a cluster's token, reports. */

/** The cluster whose registration token this is (constant-time check of the stored hash), or undefined. */
export async function clusterForRegistrationToken(ctx: ServerContext, token: string): Promise<ClusterRow | undefined> {
  const hash = hashToken(token);
  const row = await repo.getClusterByRegistrationHash(ctx.db, hash);
  return row && sameDigest(row.registration_token_hash, hash) ? row : undefined;
}

/**
 * Registers a node (or re-registers it: same cluster and node name keep the node id, and a new
 * token replaces the old one, so an agent that lost its data dir can join again).
 */
export async function registerNode(ctx: ServerContext, cluster: ClusterRow, req: RegistrationRequest): Promise<RegistrationResponse> {
  const token = newToken('node');
  const now = ctx.now();
  const node = await ctx.db.transaction().execute(async (tx) => {
    const existing = await repo.getNodeByName(tx, cluster.id, req.node);
    const fields = {
      mode: req.mode,
      agent_version: req.agentVersion,
      member_name: req.member.name,
      member_client_url: req.member.clientUrl,
      member_peer_url: req.member.peerUrl,
      last_seen_at: now,
      updated_at: now,
    };
    let id: string;
    if (existing) {
      id = existing.id;
      await repo.updateNode(tx, id, fields);
      await repo.deleteNodeTokens(tx, id);
    } else {
      id = newId('n');
      await repo.insertNode(tx, {
        id,
        cluster_id: cluster.id,
        name: req.node,
        ...fields,
        member_state: null,
        etcd_version: null,
        db_size: null,
        revision: null,
        member_error: null,
        applied_plan_id: null,
        next_scheduled_at: null,
        last_report_at: null,
        registered_at: now,
      });
    }
    await repo.insertToken(tx, { hash: hashToken(token), kind: 'node', node_id: id, cluster_id: cluster.id, created_at: now });
    return (await repo.getNode(tx, id)) as NodeRow;
  });
  ctx.log.info({ clusterId: cluster.id, node: req.node, nodeId: node.id, agentVersion: req.agentVersion, reregistered: node.registered_at !== now }, 'node registered');
  ctx.events.publish({ type: 'node', node: nodeView(ctx, node) });
  return { apiVersion: PROTOCOL_VERSION, nodeId: node.id, clusterId: cluster.id, nodeToken: token };
}

/** Marks the node seen (plan requests); at most one write per node every 5 s (or half a report interval). */
export async function touchNode(ctx: ServerContext, node: NodeRow): Promise<void> {
  const now = ctx.now();
  if (node.last_seen_at !== null && now - node.last_seen_at < Math.min(5000, ctx.config.reportIntervalMs / 2)) return;
  await repo.updateNode(ctx.db, node.id, { last_seen_at: now });
}

/**
 * Applies an agent report: member status, snapshot records (idempotent), deletions, task
 * statuses. Finished delete tasks are settled here (their records go, the task leaves the
 * plan); operation tasks are left to the operation, which the engine re-evaluates now.
 */
export async function applyReport(ctx: ServerContext, node: NodeRow, report: AgentReport): Promise<void> {
  if (report.node !== node.name) {
    throw new EtcdsnapError('FORBIDDEN', `This token belongs to node ${node.name}, not to ${report.node}: an agent reports only for its own node.`);
  }
  const now = ctx.now();
  let planChanged = false;
  const changes: RecordChanges = { upserted: [], inserted: [], removed: [] };
  const stateChanged = node.member_state !== report.member.state || node.member_error !== (report.member.error ?? null) || node.applied_plan_id !== report.planId;
  const busy = report.snapshots.length > 0 || report.deleted.length > 0 || report.tasks.length > 0;
  // A heartbeat (nothing but status) is one UPDATE; anything more is one transaction.
  const run = <T>(fn: (db: typeof ctx.db) => Promise<T>): Promise<T> => (busy ? ctx.db.transaction().execute(fn) : fn(ctx.db));
  const updated = await run(async (tx) => {
    const fields: Partial<NodeRow> = {
      agent_version: report.agentVersion,
      member_name: report.member.name,
      member_client_url: report.member.clientUrl,
      member_peer_url: report.member.peerUrl,
      member_state: report.member.state,
      etcd_version: report.member.etcdVersion ?? null,
      db_size: report.member.dbSize ?? null,
      revision: report.member.revision ?? null,
      member_error: report.member.error ?? null,
      applied_plan_id: report.planId,
      next_scheduled_at: report.nextScheduledAt ? Date.parse(report.nextScheduledAt) : null,
      last_seen_at: now,
      last_report_at: now,
      updated_at: now,
    };
    await repo.updateNode(tx, node.id, fields);
    if (report.snapshots.length > 0 || report.deleted.length > 0) {
      const r = await applyReportedSnapshots(tx, node.cluster_id, node.name, report.snapshots, report.deleted, now);
      changes.upserted.push(...r.upserted);
      changes.inserted.push(...r.inserted);
      changes.removed.push(...r.removed);
    }

    if (report.tasks.length === 0) return { ...node, ...fields } as NodeRow;
    const tasks = new Map((await listNodeTasks(tx, node.id)).map((t) => [t.id, t]));
    for (const status of report.tasks) {
      const task = tasks.get(status.id);
      if (!task) continue; // finished and already removed: the agent stops sending it once it sees the new plan
      const finishedAt = status.finishedAt ? Date.parse(status.finishedAt) : null;
      const result = status.result === undefined ? null : JSON.stringify(status.result);
      if (task.state !== status.state || task.message !== (status.message ?? null) || task.result !== result) {
        await updateTask(tx, task.id, { state: status.state, message: status.message ?? null, code: status.code ?? null, started_at: Date.parse(status.startedAt), finished_at: finishedAt, result });
      }
      const ended = status.state === 'succeeded' || status.state === 'failed';
      if (task.kind === 'delete-snapshots' && ended) {
        planChanged = (await settleDeleteTask(tx, task.id, status.state === 'succeeded' || status.code === 'SNAPSHOT_NOT_FOUND', status.message, changes)) || planChanged;
      } else if (task.operation_id !== null && ended && (await getOperation(tx, task.operation_id))?.running_cluster_id === null) {
        // A task its operation left behind (a failed restore's rollback for a node that was away): done now, out of the plan.
        await deleteTask(tx, task.id);
        planChanged = true;
      }
    }
    return { ...node, ...fields } as NodeRow;
  });
  if (changes.inserted.length > 0) {
    const cluster = (await repo.getCluster(ctx.db, node.cluster_id))?.name ?? node.cluster_id;
    for (const row of changes.inserted) {
      ctx.metrics.snapshotsRecorded.inc({ cluster, state: row.state });
      if (row.state === 'successful' && row.duration_ms !== null) ctx.metrics.saveDuration.observe({ cluster, storage: row.storage }, row.duration_ms / 1000);
    }
  }
  publishRecords(ctx, changes);
  if (stateChanged) ctx.events.publish({ type: 'node', node: nodeView(ctx, updated) });
  if (planChanged) ctx.plans.notify(node.cluster_id);
  if (report.tasks.length > 0 || stateChanged) ctx.engine.kick();
}

/** A delete task ended: its records go when it worked (or the files were gone already); either way the task leaves the plan. */
async function settleDeleteTask(tx: Parameters<typeof deleteTask>[0], taskId: string, deleted: boolean, message: string | undefined, changes: RecordChanges): Promise<boolean> {
  for (const row of await snaps.findSnapshotsByDeletingTask(tx, taskId)) {
    if (deleted) {
      await snaps.deleteSnapshot(tx, row.id);
      changes.removed.push(row);
    } else {
      await snaps.setDeletingTask(tx, row.id, null);
      await tx.updateTable('snapshots').set({ message: `delete failed: ${message ?? 'no reason given'}` }).where('id', '=', row.id).execute();
      changes.upserted.push({ ...row, deleting_task_id: null, message: `delete failed: ${message ?? 'no reason given'}` });
    }
  }
  await deleteTask(tx, taskId);
  return true;
}
