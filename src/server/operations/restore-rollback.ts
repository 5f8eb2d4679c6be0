import type { NodeRow } from '../db/clusters.js';
import { deleteTask } from '../db/tasks.js';
import { dataOf, restoreTaskId, seconds, setClusterDesired, type NodeRef } from './restore-tasks.js';
import type { Failure, PhaseContext } from './types.js';

/**
 * A failed restore puts the cluster back as it was: the cluster's version and config first
 * (agents' plans follow), then `restore-rollback` on every node (old data dir back, member
 * started if it ran, start hook with the old version and config, staged files removed). The
 * engine calls this at every evaluation while it answers 'wait'. A rollback that failed, or a
 * node silent for longer than the node timeout since the rollback began, ends the operation
 * with ROLLBACK_INCOMPLETE naming the node and what to do; a silent node keeps its rollback
 * task, so its agent still rolls back when it comes back.
 */
export async function rollbackRestore(pc: PhaseContext, failure: Failure): Promise<Failure | 'wait'> {
  let data = dataOf(pc);
  if (!data.source) {
    // Nothing was sent to any node.
    await pc.clearTasks();
    if (failure.node) await pc.setStep(failure.node, 'failed', failure.message);
    return { ...failure, rolledBack: true, message: `${failure.message.replace(/\.$/, '')}; nothing was changed` };
  }
  if (!data.rollback) {
    if (data.previous) {
      await setClusterDesired(pc, data.previous);
      await pc.note(`the cluster's Kubernetes version and config are back to ${data.previous.kubernetesVersion ?? '(none)'} and the previous config`);
    }
    const old = data.previous ?? { kubernetesVersion: pc.cluster.kubernetes_version, clusterConfig: pc.cluster.cluster_config };
    // The forward tasks leave the plans; the rollback tasks are the only ones left.
    await pc.clearTasks();
    await pc.setData({ rollback: { ...old, startedAt: pc.ctx.now() } });
    data = dataOf(pc);
    await pc.note(`rolling back every node (${(data.nodes ?? []).map((n) => n.name).join(', ')}): ${data.stopping ? 'old data dirs back, members started again' : 'staged files removed; no member was stopped'}`);
  }
  const rb = data.rollback as NonNullable<typeof data.rollback>;
  const tasks = await pc.tasks();
  const present: { ref: NodeRef; node: NodeRow | undefined }[] = (data.nodes ?? []).map((ref) => ({ ref, node: pc.nodes.find((n) => n.id === ref.id) }));
  for (const { node } of present) {
    if (!node) continue;
    const id = restoreTaskId(pc.op.id, node.id, 'rollback');
    if (tasks.some((t) => t.id === id)) continue;
    await pc.dispatch(node, {
      id,
      kind: 'restore-rollback',
      operationId: pc.op.id,
      kubernetesVersion: rb.kubernetesVersion,
      clusterConfig: rb.clusterConfig,
      timeoutMs: pc.ctx.config.restoreStartTimeoutMs,
    });
    await pc.setStep(node.name, 'pending', 'rollback sent to the agent');
  }

  const incomplete: { node: string; why: string }[] = [];
  const keep = new Set<string>();
  let waiting = false;
  for (const { ref, node } of present) {
    if (!node) {
      if (data.stopping) incomplete.push({ node: ref.name, why: 'it was removed from the cluster, so it could not be told to roll back' });
      continue;
    }
    const id = restoreTaskId(pc.op.id, node.id, 'rollback');
    const t = tasks.find((x) => x.id === id);
    if (t?.state === 'succeeded') {
      await pc.setStep(node.name, node.name === failure.node ? 'failed' : 'succeeded', `rolled back${t.message ? `: ${t.message}` : ''}`);
      continue;
    }
    if (t?.state === 'failed') {
      await pc.setStep(node.name, 'failed', `rollback failed: ${t.message ?? 'no reason given'}`);
      incomplete.push({ node: node.name, why: `its rollback failed (${t.code ?? 'TASK_FAILED'}: ${t.message ?? 'no reason given'})` });
      continue;
    }
    if (t?.state === 'running') await pc.setStep(node.name, 'running', t.message ?? 'rolling back');
    // Silent since the rollback began (a node that was silent already gets one more node timeout).
    const silentMs = pc.ctx.now() - Math.max(node.last_seen_at ?? node.registered_at, rb.startedAt, pc.ctx.startedAt);
    if (silentMs > pc.ctx.config.nodeTimeoutMs) {
      keep.add(id);
      if (data.stopping) incomplete.push({ node: node.name, why: `its agent has not reported for ${seconds(silentMs)} since the rollback began` });
      continue;
    }
    waiting = true;
  }
  if (waiting) return 'wait';

  // Done: the rollback tasks leave the plans, except those of silent nodes (their agents still need them).
  for (const t of tasks) if (!keep.has(t.id)) await deleteTask(pc.ctx.db, t.id);
  pc.ctx.plans.notify(pc.cluster.id);
  if (incomplete.length > 0) {
    const first = incomplete[0] as { node: string; why: string };
    const dir = `<data dir>.pre-restore-${pc.op.id}`;
    await pc.note(`rollback incomplete on ${incomplete.map((i) => i.node).join(', ')}`);
    return {
      node: first.node,
      code: 'ROLLBACK_INCOMPLETE',
      rolledBack: false,
      message:
        `${failure.message}; rollback incomplete on ${incomplete.map((i) => `${i.node} (${i.why})`).join('; ')}. ` +
        `On ${incomplete.map((i) => i.node).join(', ')}, the member's previous data is kept in ${dir}: if the agent is down, start it (it finishes the rollback it was sent); ` +
        `otherwise stop etcd there, move ${dir} back to the member's data dir, start etcd, and check with "etcdsnap cluster show ${pc.cluster.name}". The other members are back on their previous data.`,
    };
  }
  return { ...failure, rolledBack: true, message: `${failure.message.replace(/\.$/, '')}; ${data.stopping ? 'rolled back: every member is back on its previous data' : 'nothing was changed'}` };
}
