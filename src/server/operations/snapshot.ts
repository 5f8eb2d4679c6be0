import type { SnapshotTask } from '../../core/plans.js';
import type { NodeRow } from '../db/clusters.js';
import { nodeConnected } from '../views.js';
import type { OperationKind, PhaseContext, PhaseOutcome } from './types.js';

/**
 * One-time snapshot ("Snapshot now"): `Started` — the cluster must have nodes, each connected
 * with a healthy member; then every node gets a `snapshot` task — → `RestartCluster` once every
 * task succeeded — tasks removed, wait until every node reported its normal plan applied —
 * → `Finished`. A failed task, or a node silent for longer than `nodeTimeoutMs`, → `Failed`
 * naming the node and the reason; the tasks are removed either way.
 */

interface Dispatched {
  id: string;
  name: string;
  taskId: string;
}

/** Unique per operation and node; agents never run a task id twice. */
export function snapshotTaskId(operationId: string, nodeId: string): string {
  return `${operationId}-${nodeId}`.slice(0, 64);
}

function silent(pc: PhaseContext, node: NodeRow): PhaseOutcome | undefined {
  const ms = pc.silentFor(node);
  if (ms <= pc.ctx.config.nodeTimeoutMs) return undefined;
  return {
    kind: 'fail',
    failure: { node: node.name, code: 'NODE_DISCONNECTED', message: `Node ${node.name} has not reported for ${Math.round(ms / 1000)} s (limit ${Math.round(pc.ctx.config.nodeTimeoutMs / 1000)} s): is its agent running and able to reach the server?` },
  };
}

/** Nodes the operation dispatched to, as they are now; a node removed meanwhile fails the operation. */
function dispatchedNodes(pc: PhaseContext): { nodes: { d: Dispatched; node: NodeRow }[]; gone?: Dispatched } {
  const list = (pc.data.nodes ?? []) as Dispatched[];
  const out: { d: Dispatched; node: NodeRow }[] = [];
  for (const d of list) {
    const node = pc.nodes.find((n) => n.id === d.id);
    if (!node) return { nodes: out, gone: d };
    out.push({ d, node });
  }
  return { nodes: out };
}

async function started(pc: PhaseContext): Promise<PhaseOutcome> {
  if (pc.data.dispatched !== true) {
    if (pc.nodes.length === 0) {
      return { kind: 'fail', failure: { node: null, code: 'CLUSTER_UNHEALTHY', message: `Cluster ${pc.cluster.name} has no registered nodes: start an agent on each etcd node (GET /api/v1/clusters/${pc.cluster.id}/join).` } };
    }
    for (const node of pc.nodes) {
      if (!nodeConnected(pc.ctx, node)) {
        const seen = node.last_seen_at === null ? 'never reported' : `not seen for ${Math.round((pc.now - node.last_seen_at) / 1000)} s`;
        return { kind: 'fail', failure: { node: node.name, code: 'NODE_DISCONNECTED', message: `Node ${node.name} is disconnected (${seen}); no snapshot was taken. Start its agent or remove the node, then retry.` } };
      }
      if (node.member_state !== 'healthy') {
        const state = node.member_state ?? 'unknown (no report yet)';
        return {
          kind: 'fail',
          failure: { node: node.name, code: 'CLUSTER_UNHEALTHY', message: `etcd member ${node.member_name} on node ${node.name} is ${state}${node.member_error ? `: ${node.member_error}` : ''}; no snapshot was taken.` },
        };
      }
    }
    const base = typeof pc.params.name === 'string' ? pc.params.name : undefined;
    const dispatched: Dispatched[] = pc.nodes.map((n) => ({ id: n.id, name: n.name, taskId: snapshotTaskId(pc.op.id, n.id) }));
    for (const [i, node] of pc.nodes.entries()) {
      const task: SnapshotTask = { id: (dispatched[i] as Dispatched).taskId, kind: 'snapshot', operationId: pc.op.id, ...(base ? { base } : {}) };
      await pc.dispatch(node, task);
      await pc.setStep(node.name, 'pending', 'snapshot task sent to the agent');
    }
    await pc.setData({ dispatched: true, nodes: dispatched });
    await pc.note(`health checked (${pc.nodes.length} healthy members); snapshot task sent to ${dispatched.map((d) => d.name).join(', ')}`);
  }

  const { nodes, gone } = dispatchedNodes(pc);
  if (gone) return { kind: 'fail', failure: { node: gone.name, code: 'NODE_DISCONNECTED', message: `Node ${gone.name} was removed from the cluster during the snapshot.` } };
  const tasks = await pc.tasks();
  let done = 0;
  for (const { d, node } of nodes) {
    const t = tasks.find((x) => x.id === d.taskId);
    if (t?.state === 'failed') {
      const why = t.message ?? 'no reason given';
      return { kind: 'fail', failure: { node: node.name, code: t.code ?? 'TASK_FAILED', message: `Snapshot on node ${node.name} failed: ${why}` } };
    }
    if (t?.state === 'succeeded') {
      await pc.setStep(node.name, 'succeeded', t.message ?? 'snapshot taken');
      done++;
      continue;
    }
    if (t?.state === 'running') await pc.setStep(node.name, 'running', t.message ?? 'taking the snapshot');
    const s = silent(pc, node);
    if (s) return s;
  }
  if (done < nodes.length) return { kind: 'wait' };
  return { kind: 'next', phase: 'RestartCluster', message: `snapshot taken on every node (${nodes.map((n) => n.d.name).join(', ')}); nodes return to their normal plan` };
}

async function restartCluster(pc: PhaseContext): Promise<PhaseOutcome> {
  if (pc.data.tasksCleared !== true) {
    await pc.clearTasks();
    await pc.setData({ tasksCleared: true });
  }
  const { nodes, gone } = dispatchedNodes(pc);
  if (gone) return { kind: 'fail', failure: { node: gone.name, code: 'NODE_DISCONNECTED', message: `Node ${gone.name} was removed from the cluster before it returned to its normal plan.` } };
  let back = 0;
  for (const { node } of nodes) {
    const plan = await pc.ctx.plans.compute(node.id);
    if (plan && node.applied_plan_id === plan.planId) {
      await pc.setStep(node.name, 'succeeded', 'snapshot taken; back on the normal plan');
      back++;
      continue;
    }
    const s = silent(pc, node);
    if (s) return s;
  }
  if (back < nodes.length) return { kind: 'wait' };
  return { kind: 'next', phase: 'Finished', message: 'every node is back on its normal plan' };
}

export const snapshotOperation: OperationKind = {
  kind: 'snapshot',
  phases: { Started: started, RestartCluster: restartCluster },
  async onFail(pc, failure) {
    await pc.clearTasks();
    if (failure.node) await pc.setStep(failure.node, 'failed', failure.message);
    return failure;
  },
  describe(params) {
    return typeof params.name === 'string' ? `one-time snapshot "${params.name}"` : 'one-time snapshot';
  },
};
