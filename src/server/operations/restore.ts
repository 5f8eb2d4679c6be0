import { randomBytes } from 'node:crypto';
import { CODECS, type Codec } from '../../core/codec.js';
import { isEtcdsnapError } from '../../core/errors.js';
import type { RestorePrepareResult, RestoreStartResult } from '../../core/plans.js';
import { taskResult } from '../db/tasks.js';
import { chooseRestoreSource, describeSource, nodesInOrder, parseRestoreParams } from './restore-source.js';
import { rollbackRestore } from './restore-rollback.js';
import {
  awaitAll,
  currentNodes,
  dataOf,
  dispatchAll,
  fail,
  markPhase,
  removed,
  restoreTaskId,
  seconds,
  setClusterDesired,
  silentFailure,
  type RestoreData,
} from './restore-tasks.js';
import type { OperationKind, PhaseContext, PhaseOutcome } from './types.js';

/**
 * Restore of a whole cluster (issue 5). Each phase sends its task to the nodes once (ids
 * unique per operation, node and kind), waits for the agents' reports and moves on; decisions
 * (source, init node, tokens, the cluster's previous version and config) are stored in `data`
 * before any task that depends on them is sent, so every phase may run again after a crash.
 *
 *   Started        restore-prepare on the init node → restore-fetch on the others → mode applied
 *   Shutdown       restore-stop everywhere
 *   Restore        restore-apply everywhere (new cluster token, full initial cluster)
 *   RestartCluster restore-start everywhere → members compared → restore-finish everywhere
 *   failure        rollback (restore-rollback.ts)
 */

const TRANSFER_TOKEN_BYTES = 32;

function validPrepared(r: Record<string, unknown> | undefined): RestoreData['prepared'] | undefined {
  if (!r) return undefined;
  const { rawSha256, rawSize, revision, totalKey, transferUrl, transferCertSha256 } = r as Partial<RestorePrepareResult>;
  const hex = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  const int = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (!hex(rawSha256) || !int(rawSize, 1) || !int(revision, 1) || !hex(transferCertSha256) || typeof transferUrl !== 'string' || !/^https?:\/\//.test(transferUrl)) return undefined;
  const { storedCodec, storedSha256, storedSize } = r as Partial<RestorePrepareResult>;
  const stored = (CODECS as readonly unknown[]).includes(storedCodec) && storedCodec !== 'none' && hex(storedSha256) && int(storedSize, 1) ? { codec: storedCodec as Codec, sha256: storedSha256, size: storedSize } : undefined;
  return { rawSha256, rawSize, revision, totalKey: int(totalKey, 0) ? totalKey : 0, transferUrl, transferCertSha256, ...(stored ? { stored } : {}) };
}

/** The restore's transfer token, kept encrypted in the operation's data. */
function transferToken(pc: PhaseContext): string {
  return pc.ctx.keyring.decrypt(dataOf(pc).transferToken as string, `restore:${pc.op.id}:transfer`);
}

/** Chooses and records the source, init node, participants and transfer token (once). */
async function decide(pc: PhaseContext): Promise<PhaseOutcome | undefined> {
  const params = parseRestoreParams(pc.params);
  const usable = (n: (typeof pc.nodes)[number]): boolean => pc.silentFor(n) <= pc.ctx.config.nodeTimeoutMs;
  let choice;
  try {
    choice = await chooseRestoreSource(pc.ctx.db, pc.cluster, pc.nodes, params, usable, false);
  } catch (err) {
    if (isEtcdsnapError(err)) return fail((err.details?.node as string | undefined) ?? null, err.code, err.message);
    throw err;
  }
  const m = choice.metadata;
  await pc.setData({
    nodes: nodesInOrder(pc.nodes).map((n) => ({ id: n.id, name: n.name })),
    fallback: choice.fallback,
    attempt: 1,
    // A secret at rest: kept encrypted with the server key, like S3 secrets.
    transferToken: pc.ctx.keyring.encrypt(randomBytes(TRANSFER_TOKEN_BYTES).toString('base64url'), `restore:${pc.op.id}:transfer`),
    snapshot: m
      ? { kubernetesVersion: m.kubernetesVersion, clusterConfig: m.clusterConfig, summary: m.summary ? { keys: m.summary.keys, revision: m.summary.revision } : null, revisionExact: m.etcd.revisionExact }
      : { kubernetesVersion: null, clusterConfig: null, summary: null, revisionExact: false },
    times: { Started: pc.op.created_at },
    // Last: its presence says the rest is there.
    source: choice.primary,
  });
  await pc.note(`restoring from the ${describeSource(choice.primary)}: ${choice.why}${choice.fallback ? `; fallback: ${describeSource(choice.fallback)}` : ''}`);
  return undefined;
}

async function started(pc: PhaseContext): Promise<PhaseOutcome> {
  if (!dataOf(pc).source) {
    const refused = await decide(pc);
    if (refused) return refused;
  }
  const data = dataOf(pc);
  const source = data.source as NonNullable<RestoreData['source']>;
  const { nodes, gone } = currentNodes(pc);
  if (gone) return removed(gone);
  const init = nodes.find((n) => n.id === source.nodeId);
  if (!init) return removed({ id: source.nodeId, name: source.node });
  const others = nodes.filter((n) => n !== init);
  const kind = data.attempt === 2 ? 'prepare2' : 'prepare';
  const prepareId = restoreTaskId(pc.op.id, init.id, kind);
  let tasks = await pc.tasks();
  if (!tasks.some((t) => t.id === prepareId)) {
    await pc.dispatch(init, {
      id: prepareId,
      kind: 'restore-prepare',
      operationId: pc.op.id,
      source: { storage: source.storage, name: source.name, ...(source.sha256 ? { sha256: source.sha256 } : {}) },
      transferToken: transferToken(pc),
    });
    await pc.setStep(init.name, 'pending', `init node: get ${source.name} from ${source.storage === 's3' ? 'S3' : 'its snapshot dir'}`);
    for (const n of others) await pc.setStep(n.name, 'pending', `waiting for the init node ${init.name}`);
    tasks = await pc.tasks();
  }
  const prep = tasks.find((t) => t.id === prepareId);
  if (prep?.state === 'failed') {
    if (data.attempt !== 2 && data.fallback) {
      const fb = data.fallback;
      await pc.note(`getting the snapshot on ${init.name} failed (${prep.code ?? 'TASK_FAILED'}: ${prep.message ?? 'no reason given'}); retrying once from the ${describeSource(fb)}`);
      await pc.setData({ source: fb, fallback: null, attempt: 2 });
      return started(pc);
    }
    await pc.setStep(init.name, 'failed', prep.message ?? 'getting the snapshot failed');
    return fail(init.name, prep.code ?? 'TASK_FAILED', `Getting snapshot ${source.name} on the init node ${init.name} failed: ${prep.message ?? 'no reason given'}`);
  }
  if (prep?.state !== 'succeeded') {
    if (prep?.state === 'running') await pc.setStep(init.name, 'running', prep.message ?? 'getting and verifying the snapshot');
    return silentFailure(pc, init, 'getting the snapshot') ?? { kind: 'wait' };
  }
  if (!data.prepared) {
    const prepared = validPrepared(taskResult(prep));
    if (!prepared) return fail(init.name, 'INTERNAL', `The agent of the init node ${init.name} reported restore-prepare succeeded without a valid result (${prep.result ?? 'none'}): is it of a compatible version?`);
    await pc.setData({ prepared });
    await pc.note(`${init.name}: snapshot staged and verified (revision ${prepared.revision}, ${prepared.rawSize} bytes, sha256 ${prepared.rawSha256.slice(0, 12)}…); serving it to the other nodes`);
  }
  const prepared = dataOf(pc).prepared as NonNullable<RestoreData['prepared']>;
  await pc.setStep(init.name, 'succeeded', others.length ? 'snapshot staged; serving it to the other nodes' : 'snapshot staged');
  const sent = await dispatchAll(pc, tasks, others, 'fetch', (_n, id) => ({
    id,
    kind: 'restore-fetch',
    operationId: pc.op.id,
    source: { url: prepared.transferUrl, certSha256: prepared.transferCertSha256, token: transferToken(pc), node: init.name },
    rawSha256: prepared.rawSha256,
    rawSize: prepared.rawSize,
    // The compressed bytes when the init node serves them: a fraction of the raw size to move.
    ...(prepared.stored ? { stored: prepared.stored } : {}),
  }));
  if (sent) tasks = await pc.tasks();
  const fetched = await awaitAll(pc, tasks, others, 'fetch', { doing: `downloading the snapshot from ${init.name}`, done: 'snapshot downloaded and verified', what: `Downloading the snapshot from ${init.name}` });
  if ('outcome' in fetched) return fetched.outcome;
  const applied = await applyMode(pc);
  await markPhase(pc, 'Shutdown');
  return { kind: 'next', phase: 'Shutdown', message: `every node has the snapshot (revision ${prepared.revision}); ${applied}; stopping every member` };
}

/** The mode's change of the cluster's desired version/config; the previous values are saved first. */
async function applyMode(pc: PhaseContext): Promise<string> {
  const { mode } = parseRestoreParams(pc.params);
  const snap = dataOf(pc).snapshot;
  if (mode === 'etcd' || !snap) return 'mode etcd: Kubernetes version and cluster config unchanged';
  if (!dataOf(pc).previous) await pc.setData({ previous: { kubernetesVersion: pc.cluster.kubernetes_version, clusterConfig: pc.cluster.cluster_config } });
  await setClusterDesired(pc, { kubernetesVersion: snap.kubernetesVersion, ...(mode === 'all' ? { clusterConfig: snap.clusterConfig } : {}) });
  return mode === 'all' ? `mode all: Kubernetes version ${snap.kubernetesVersion ?? '(none)'} and the snapshot's cluster config` : `mode kubernetes-version: Kubernetes version ${snap.kubernetesVersion ?? '(none)'}`;
}

async function shutdown(pc: PhaseContext): Promise<PhaseOutcome> {
  const { nodes, gone } = currentNodes(pc);
  if (gone) return removed(gone);
  if (!dataOf(pc).stopping) await pc.setData({ stopping: true });
  let tasks = await pc.tasks();
  if (await dispatchAll(pc, tasks, nodes, 'stop', (_n, id) => ({ id, kind: 'restore-stop', operationId: pc.op.id }))) tasks = await pc.tasks();
  const r = await awaitAll(pc, tasks, nodes, 'stop', { doing: 'stopping etcd', done: 'etcd stopped', what: 'Stopping etcd' });
  if ('outcome' in r) return r.outcome;
  await markPhase(pc, 'Restore');
  return { kind: 'next', phase: 'Restore', message: `every member is stopped (${nodes.map((n) => n.name).join(', ')}); restoring the snapshot into fresh data dirs` };
}

async function restore(pc: PhaseContext): Promise<PhaseOutcome> {
  const { nodes, gone } = currentNodes(pc);
  if (gone) return removed(gone);
  if (!dataOf(pc).initialClusterToken) {
    await pc.setData({ initialCluster: nodes.map((n) => `${n.member_name}=${n.member_peer_url}`).join(','), initialClusterToken: `etcdsnap-${pc.op.id}` });
    await pc.note(`new cluster token etcdsnap-${pc.op.id}; initial cluster ${dataOf(pc).initialCluster}`);
  }
  const data = dataOf(pc);
  let tasks = await pc.tasks();
  const sent = await dispatchAll(pc, tasks, nodes, 'apply', (n, id) => ({
    id,
    kind: 'restore-apply',
    operationId: pc.op.id,
    memberName: n.member_name,
    peerUrl: n.member_peer_url,
    initialCluster: data.initialCluster as string,
    initialClusterToken: data.initialClusterToken as string,
    rawSha256: (data.prepared as NonNullable<RestoreData['prepared']>).rawSha256,
  }));
  if (sent) tasks = await pc.tasks();
  const r = await awaitAll(pc, tasks, nodes, 'apply', { doing: 'restoring the snapshot', done: 'restored into a fresh data dir', what: 'Restoring the snapshot' });
  if ('outcome' in r) return r.outcome;
  await markPhase(pc, 'RestartCluster');
  return { kind: 'next', phase: 'RestartCluster', message: 'every node restored the snapshot into a fresh data dir (old ones moved aside); starting the members' };
}

/** Every member must hold the same content as the snapshot; undefined when they do. */
async function verify(pc: PhaseContext, results: { node: string; r: Partial<RestoreStartResult> }[]): Promise<PhaseOutcome | undefined> {
  const data = dataOf(pc);
  const rev = (data.prepared as NonNullable<RestoreData['prepared']>).revision;
  const bad = (node: string | null, message: string): PhaseOutcome => fail(node, 'RESTORE_VERIFY_FAILED', message);
  for (const { node, r } of results) {
    if (typeof r.hashKv !== 'number' || typeof r.revision !== 'number' || typeof r.keys !== 'number') return bad(node, `The member on ${node} reported no hash, revision and key count after its start (${JSON.stringify(r)}).`);
    if (r.revision < rev) return bad(node, `The member on ${node} is at revision ${r.revision}, below the snapshot's revision ${rev}.`);
  }
  const list = (k: 'hashKv' | 'keys'): string => results.map((x) => `${x.node} ${x.r[k]}`).join(', ');
  for (const k of ['hashKv', 'keys'] as const) {
    const counts = new Map<number, number>();
    for (const { r } of results) counts.set(r[k] as number, (counts.get(r[k] as number) ?? 0) + 1);
    if (counts.size > 1) {
      const majority = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      const odd = results.find((x) => x.r[k] !== majority) ?? results[0];
      return bad(odd?.node ?? null, `The members differ after the restore: ${k === 'hashKv' ? `hash of the keyspace at revision ${rev}` : `key count at revision ${rev}`}: ${list(k)}.`);
    }
  }
  const first = results[0]?.r as RestoreStartResult;
  const s = data.snapshot;
  if (s?.summary && s.revisionExact && s.summary.revision === rev) {
    if (first.keys !== s.summary.keys) return bad(results[0]?.node ?? null, `Every member has ${first.keys} keys at revision ${rev}, but the snapshot's metadata says ${s.summary.keys}.`);
    await pc.note(`verified: every member has hash ${first.hashKv} and ${first.keys} keys at revision ${rev}, as the snapshot's metadata says`);
  } else {
    const why = !s?.summary ? 'the snapshot has no content summary' : !s.revisionExact ? 'the snapshot’s revision is not exact (writes raced its start)' : `its summary is of revision ${s.summary.revision}, not ${rev}`;
    await pc.note(`verified: every member has hash ${first.hashKv} and ${first.keys} keys at revision ${rev}; key count not compared with the metadata: ${why}`);
  }
  await pc.setData({ verified: { revision: rev, hashKv: first.hashKv, keys: first.keys } });
  return undefined;
}

async function restartCluster(pc: PhaseContext): Promise<PhaseOutcome> {
  const { nodes, gone } = currentNodes(pc);
  if (gone) return removed(gone);
  const data = dataOf(pc);
  const rev = (data.prepared as NonNullable<RestoreData['prepared']>).revision;
  let tasks = await pc.tasks();
  const timeoutMs = pc.ctx.config.restoreStartTimeoutMs;
  if (await dispatchAll(pc, tasks, nodes, 'start', (_n, id) => ({ id, kind: 'restore-start', operationId: pc.op.id, revision: rev, timeoutMs }))) tasks = await pc.tasks();
  const startedAll = await awaitAll(pc, tasks, nodes, 'start', { doing: 'starting the restored member', done: 'member started and healthy', what: 'Starting the restored member' });
  if ('outcome' in startedAll) return startedAll.outcome;
  if (!data.verified) {
    const results = startedAll.done.map((t, i) => ({ node: (nodes[i] as (typeof nodes)[number]).name, r: taskResult<Partial<RestoreStartResult>>(t) ?? {} }));
    const bad = await verify(pc, results);
    if (bad) return bad;
  }
  const sent = await dispatchAll(pc, tasks, nodes, 'finish', (_n, id) => ({
    id,
    kind: 'restore-finish',
    operationId: pc.op.id,
    kubernetesVersion: pc.cluster.kubernetes_version,
    clusterConfig: pc.cluster.cluster_config,
  }));
  if (sent) tasks = await pc.tasks();
  const finished = await awaitAll(pc, tasks, nodes, 'finish', { doing: 'running the start hook', done: 'finished', what: 'Finishing the restore' });
  if ('outcome' in finished) return finished.outcome;
  // Every node runs on the snapshot and ran its start hook: the restore is committed. Only now
  // do nodes release their hold and drop their old data dirs; a failure here is reported, never
  // rolled back (some nodes may have removed their old data already).
  if (await dispatchAll(pc, tasks, nodes, 'cleanup', (_n, id) => ({ id, kind: 'restore-cleanup', operationId: pc.op.id, keepOldDataDays: pc.ctx.config.restoreKeepOldDataDays }))) tasks = await pc.tasks();
  for (const node of nodes) {
    const t = tasks.find((x) => x.id === restoreTaskId(pc.op.id, node.id, 'cleanup'));
    if (t?.state === 'succeeded') {
      await pc.setStep(node.name, 'succeeded', t.message ?? 'restored; old data dir removed');
      continue;
    }
    if (t?.state === 'failed') {
      if (!(dataOf(pc).noted ?? []).includes(t.id)) {
        await pc.setData({ noted: [...(dataOf(pc).noted ?? []), t.id] });
        await pc.note(`${node.name}: the restore is done, but cleaning up failed (${t.code ?? 'TASK_FAILED'}: ${t.message ?? 'no reason given'}); remove its old data dir <data dir>.pre-restore-${pc.op.id} by hand once you no longer need it`);
      }
      await pc.setStep(node.name, 'succeeded', `restored; clean-up failed: ${t.message ?? 'no reason given'}`);
      continue;
    }
    if (pc.silentFor(node) <= pc.ctx.config.nodeTimeoutMs) return { kind: 'wait' };
    await pc.note(`${node.name}: the restore is done, but its agent has been silent too long to clean up; start the agent (it keeps the member stopped on a restart until then) or remove <data dir>.pre-restore-${pc.op.id} by hand`);
  }
  await pc.clearTasks();
  await markPhase(pc, 'Finished');
  return { kind: 'next', phase: 'Finished', message: finishedMessage(pc) };
}

function finishedMessage(pc: PhaseContext): string {
  const data = dataOf(pc);
  const { snapshot, mode } = parseRestoreParams(pc.params);
  const t = data.times ?? {};
  const order = ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'] as const;
  const parts: string[] = [];
  for (let i = 0; i < order.length - 1; i++) {
    const a = t[order[i] as (typeof order)[number]];
    const b = t[order[i + 1] as (typeof order)[number]];
    if (a !== undefined && b !== undefined) parts.push(`${order[i]} ${seconds(b - a)}`);
  }
  const total = (t.Finished ?? pc.ctx.now()) - pc.op.created_at;
  const v = data.verified;
  return `restored ${snapshot} (mode ${mode}) on ${(data.nodes ?? []).map((n) => n.name).join(', ')} at revision ${v?.revision ?? data.prepared?.revision}${v ? ` (${v.keys} keys)` : ''} in ${seconds(total)} (${parts.join(', ')})`;
}

export const restoreOperation: OperationKind = {
  kind: 'restore',
  phases: { Started: started, Shutdown: shutdown, Restore: restore, RestartCluster: restartCluster },
  onFail: rollbackRestore,
  describe(params) {
    return `restore of ${String(params.snapshot)} (mode ${String(params.mode)})`;
  },
};
