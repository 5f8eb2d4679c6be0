import { PROTOCOL_VERSION, type NodePlan, type Task } from '../core/plans.js';
import { clusterPolicy, clusterSecrets } from './clusters.js';
import type { ServerContext } from './context.js';
import type { Keyring } from './crypto.js';
import { getCluster, getNode } from './db/clusters.js';
import { listNodeTasks, type TaskRow } from './db/tasks.js';
import { fullPolicy } from './policy.js';

/** Most tasks a plan carries (NodePlanSchema); later ones wait their turn. */
export const MAX_PLAN_TASKS = 16;

/** Restore tasks carry the transfer token: their spec is kept encrypted (context `task:<id>`). */
function holdsSecret(task: Task): boolean {
  return task.kind === 'restore-prepare' || task.kind === 'restore-fetch';
}

/** The `tasks.spec` text for a task: JSON, encrypted with the server key when it holds a secret. */
export function sealTaskSpec(keyring: Keyring, task: Task): string {
  const json = JSON.stringify(task);
  return holdsSecret(task) ? keyring.encrypt(json, `task:${task.id}`) : json;
}

/** The task of a `tasks` row (decrypted when it was sealed). */
export function openTaskSpec(keyring: Keyring, row: Pick<TaskRow, 'id' | 'spec'>): Task {
  return JSON.parse(row.spec.startsWith('{') ? row.spec : keyring.decrypt(row.spec, `task:${row.id}`)) as Task;
}

interface Waiter {
  nodeId: string;
  after: string;
  resolve: (plan: NodePlan | null) => void;
  timer: NodeJS.Timeout;
}

/**
 * Plans are computed from the database — the cluster's policy (with S3 secrets: only that
 * cluster's nodes ever get them), version and config, and the node's tasks — and named by a
 * keyed hash of their content, so a planId changes exactly when the plan does, survives a
 * restart, and reveals nothing. Long-polls wait here until a change concerns them.
 */
export class PlanService {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly pending = new Set<string>();
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly ctx: Pick<ServerContext, 'db' | 'keyring' | 'log'>) {}

  /** The node's current plan, or undefined when the node (or its cluster) is gone. */
  async compute(nodeId: string): Promise<NodePlan | undefined> {
    const node = await getNode(this.ctx.db, nodeId);
    if (!node) return undefined;
    const [cluster, tasks] = await Promise.all([getCluster(this.ctx.db, node.cluster_id), listNodeTasks(this.ctx.db, nodeId)]);
    if (!cluster) return undefined;
    const body = {
      node: node.name,
      cluster: { id: cluster.id, name: cluster.name },
      kubernetesVersion: cluster.kubernetes_version,
      clusterConfig: cluster.cluster_config,
      policy: fullPolicy(clusterPolicy(cluster), clusterSecrets(this.ctx, cluster)),
      tasks: tasks.slice(0, MAX_PLAN_TASKS).map((t) => openTaskSpec(this.ctx.keyring, t)),
    };
    const planId = this.ctx.keyring.mac(`${PROTOCOL_VERSION}\n${JSON.stringify(body)}`);
    return { apiVersion: PROTOCOL_VERSION, planId, ...body };
  }

  /**
   * The plan once its id differs from `after`: at once if it already does, else when a change
   * arrives or after `waitMs` (null then, and when the server closes or `signal` aborts).
   */
  async next(clusterId: string, nodeId: string, after: string | undefined, waitMs: number, signal?: AbortSignal): Promise<NodePlan | null | undefined> {
    const plan = await this.compute(nodeId);
    if (!plan || plan.planId !== after || waitMs <= 0 || this.closed) return plan;
    return new Promise<NodePlan | null>((resolve) => {
      let set = this.waiters.get(clusterId);
      if (!set) this.waiters.set(clusterId, (set = new Set()));
      const waiter: Waiter = {
        nodeId,
        after: after as string,
        timer: setTimeout(() => done(null), waitMs),
        resolve: (p) => done(p),
      };
      const onAbort = (): void => done(null);
      const done = (p: NodePlan | null): void => {
        clearTimeout(waiter.timer);
        signal?.removeEventListener('abort', onAbort);
        const s = this.waiters.get(clusterId);
        if (s?.delete(waiter) && s.size === 0) this.waiters.delete(clusterId);
        resolve(p);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(waiter);
    });
  }

  /** Something in the cluster's plans may have changed: waiting nodes re-check (coalesced per event-loop turn). */
  notify(clusterId: string): void {
    if (!this.waiters.has(clusterId)) return;
    this.pending.add(clusterId);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const ids = [...this.pending];
      this.pending.clear();
      for (const id of ids) void this.recheck(id);
    });
  }

  private async recheck(clusterId: string): Promise<void> {
    const set = this.waiters.get(clusterId);
    if (!set) return;
    const byNode = new Map<string, Waiter[]>();
    for (const w of set) byNode.set(w.nodeId, [...(byNode.get(w.nodeId) ?? []), w]);
    for (const [nodeId, ws] of byNode) {
      try {
        const plan = await this.compute(nodeId);
        for (const w of ws) if (!plan || plan.planId !== w.after) w.resolve(plan ?? null);
      } catch (err) {
        this.ctx.log.warn({ err, nodeId }, 'plan recheck failed; the long-poll ends at its timeout');
      }
    }
  }

  /** Long-polls in flight (a gauge). */
  get waiting(): number {
    let n = 0;
    for (const s of this.waiters.values()) n += s.size;
    return n;
  }

  /** Ends every long-poll (204): for a prompt server shutdown. */
  close(): void {
    this.closed = true;
    for (const s of [...this.waiters.values()]) for (const w of [...s]) w.resolve(null);
  }
}
