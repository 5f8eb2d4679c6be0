import type { Phase } from '../../core/api.js';
import type { Codec } from '../../core/codec.js';
import type { RestoreTaskKind, Task } from '../../core/plans.js';
import { clusterViews } from '../views.js';
import type { ClusterRow, NodeRow } from '../db/clusters.js';
import { updateCluster } from '../db/clusters.js';
import type { TaskRow } from '../db/tasks.js';
import type { Failure, PhaseContext, PhaseOutcome } from './types.js';
import type { RestoreSource } from './restore-source.js';

/**
 * The restore's persisted state (`data`) and the helpers its phases share: task ids, sending
 * a task to a set of nodes once, and waiting for them with per-node steps and history notes.
 */

export interface NodeRef {
  id: string;
  name: string;
}

export interface ClusterDesired {
  kubernetesVersion: string | null;
  clusterConfig: string | null;
}

export interface RestoreData {
  /** Every node of the cluster when the restore started, in registration order. */
  nodes?: NodeRef[];
  source?: RestoreSource;
  fallback?: RestoreSource | null;
  /** 1, or 2 after the retry from the fallback source. */
  attempt?: number;
  /** Encrypted with the server key (context `restore:<opId>:transfer`). */
  transferToken?: string;
  /** What the snapshot's metadata says (kept: the record may be deleted meanwhile). */
  snapshot?: { kubernetesVersion: string | null; clusterConfig: string | null; summary: { keys: number; revision: number } | null; revisionExact: boolean };
  /** The init node's restore-prepare result. */
  prepared?: {
    rawSha256: string;
    rawSize: number;
    revision: number;
    totalKey: number;
    transferUrl: string;
    transferCertSha256: string;
    /** The stored (compressed) bytes the init node serves too, if it does. */
    stored?: { codec: Codec; sha256: string; size: number };
  };
  /** The cluster's version and config before the mode changed them (set just before the change). */
  previous?: ClusterDesired;
  /** Set before the first restore-stop: from then on members may have changed. */
  stopping?: boolean;
  initialClusterToken?: string;
  initialCluster?: string;
  verified?: { revision: number; hashKv: number; keys: number };
  /** When each phase began (epoch ms). */
  times?: Partial<Record<Phase, number>>;
  /** Task ids whose success is noted in the history already. */
  noted?: string[];
  rollback?: ClusterDesired & { startedAt: number };
  /** Set by the engine while the operation rolls back. */
  failing?: Failure;
}

export const dataOf = (pc: PhaseContext): RestoreData => pc.data as RestoreData;

type Short = 'prepare' | 'prepare2' | 'fetch' | 'stop' | 'apply' | 'start' | 'finish' | 'cleanup' | 'rollback';

/** Unique per (operation, node, kind): `op_…-n_…-stop` (at most 55 characters). */
export function restoreTaskId(operationId: string, nodeId: string, kind: Short): string {
  return `${operationId}-${nodeId}-${kind}`;
}

export function shortKind(kind: RestoreTaskKind): Short {
  return kind.slice('restore-'.length) as Short;
}

export function fail(node: string | null, code: string, message: string): PhaseOutcome {
  return { kind: 'fail', failure: { node, code, message } };
}

/** The restore's nodes as rows now; a node removed meanwhile is a failure. */
export function currentNodes(pc: PhaseContext): { nodes: NodeRow[]; gone?: NodeRef } {
  const out: NodeRow[] = [];
  for (const ref of dataOf(pc).nodes ?? []) {
    const row = pc.nodes.find((n) => n.id === ref.id);
    if (!row) return { nodes: out, gone: ref };
    out.push(row);
  }
  return { nodes: out };
}

export function removed(ref: NodeRef): PhaseOutcome {
  return fail(ref.name, 'NODE_DISCONNECTED', `Node ${ref.name} was removed from the cluster during the restore.`);
}

export function silentFailure(pc: PhaseContext, node: NodeRow, doing: string): PhaseOutcome | undefined {
  const ms = pc.silentFor(node);
  if (ms <= pc.ctx.config.nodeTimeoutMs) return undefined;
  return fail(node.name, 'NODE_DISCONNECTED', `Node ${node.name} has not reported for ${Math.round(ms / 1000)} s while ${doing} (limit ${Math.round(pc.ctx.config.nodeTimeoutMs / 1000)} s): is its agent running and able to reach the server?`);
}

/** Sends each node its task (built by `make`) unless it was sent already. */
export async function dispatchAll(pc: PhaseContext, tasks: TaskRow[], nodes: NodeRow[], kind: Short, make: (node: NodeRow, id: string) => Task): Promise<boolean> {
  let sent = false;
  for (const node of nodes) {
    const id = restoreTaskId(pc.op.id, node.id, kind);
    if (tasks.some((t) => t.id === id)) continue;
    await pc.dispatch(node, make(node, id));
    await pc.setStep(node.name, 'pending', `${kind} sent to the agent`);
    sent = true;
  }
  return sent;
}

export interface WaitLabels {
  /** "stopping etcd": what the node does (messages, silence). */
  doing: string;
  /** "etcd stopped": the step message on success when the agent gave none. */
  done: string;
  /** "Stopping etcd": the failure message's start. */
  what: string;
}

/**
 * Waits for each node's task of `kind`: steps follow the agent's messages, a success is noted
 * in the history once, a failed task or a node silent too long is the restore's failure.
 * Returns the tasks when every one succeeded.
 */
export async function awaitAll(pc: PhaseContext, tasks: TaskRow[], nodes: NodeRow[], kind: Short, l: WaitLabels): Promise<{ outcome: PhaseOutcome } | { done: TaskRow[] }> {
  const done: TaskRow[] = [];
  let waiting = false;
  const data = dataOf(pc);
  for (const node of nodes) {
    const t = tasks.find((x) => x.id === restoreTaskId(pc.op.id, node.id, kind));
    if (t?.state === 'failed') {
      await pc.setStep(node.name, 'failed', t.message ?? `${l.what} failed`);
      return { outcome: fail(node.name, t.code ?? 'TASK_FAILED', `${l.what} on node ${node.name} failed: ${t.message ?? 'no reason given'}`) };
    }
    if (t?.state === 'succeeded') {
      await pc.setStep(node.name, 'succeeded', t.message ?? l.done);
      if (!(data.noted ?? []).includes(t.id)) {
        await pc.setData({ noted: [...(data.noted ?? []), t.id] });
        await pc.note(`${node.name}: ${t.message ?? l.done}`);
      }
      done.push(t);
      continue;
    }
    waiting = true;
    if (t?.state === 'running') await pc.setStep(node.name, 'running', t.message ?? l.doing);
    const s = silentFailure(pc, node, l.doing);
    if (s) return { outcome: s };
  }
  return waiting ? { outcome: { kind: 'wait' } } : { done };
}

/** Sets the cluster's desired version and config (plans change: agents get them), and tells event listeners. */
export async function setClusterDesired(pc: PhaseContext, desired: Partial<ClusterDesired>): Promise<void> {
  const fields: Partial<ClusterRow> = { updated_at: pc.ctx.now() };
  if (desired.kubernetesVersion !== undefined) fields.kubernetes_version = desired.kubernetesVersion;
  if (desired.clusterConfig !== undefined) fields.cluster_config = desired.clusterConfig;
  await updateCluster(pc.ctx.db, pc.cluster.id, fields);
  Object.assign(pc.cluster, fields);
  pc.ctx.plans.notify(pc.cluster.id);
  const [view] = await clusterViews(pc.ctx, [pc.cluster]);
  if (view) pc.ctx.events.publish({ type: 'cluster', cluster: view, change: 'upsert' });
}

export async function markPhase(pc: PhaseContext, phase: Phase): Promise<void> {
  const data = dataOf(pc);
  if (data.times?.[phase] === undefined) await pc.setData({ times: { ...(data.times ?? {}), [phase]: pc.ctx.now() } });
}

export const seconds = (ms: number): string => `${Math.max(0, Math.round(ms / 100) / 10)} s`;
