/**
 * What the restore task handlers share: where things live, the member's state, hooks, and
 * the clean-up of staged files. Every helper is safe to call again after a crash.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdsnapError } from '../../core/errors.js';
import type { MemberStatus } from '../../core/plans.js';
import { runCommand } from '../member-external.js';
import { writeFileAtomic, type RestoreHold } from '../state.js';
import type { TaskContext } from './types.js';

/** `<agent dataDir>/restores/<operationId>/`: staged snapshot (and hook files) of one restore. */
export function restoreDir(ctx: TaskContext, operationId: string): string {
  return path.join(ctx.config.dataDir, 'restores', operationId);
}

export function stagedPath(ctx: TaskContext, operationId: string): string {
  return path.join(restoreDir(ctx, operationId), 'snapshot.db');
}

/** The member's data dir; external mode needs --etcd-data-dir for a restore. */
export function memberDataDir(ctx: TaskContext): string {
  const dir = ctx.config.etcdDataDir;
  if (dir === undefined) {
    throw new EtcdsnapError('INVALID_CONFIG', 'A restore needs the etcd member\'s data dir: start the agent with --etcd-data-dir (the directory etcd runs with as --data-dir).', {
      details: { flag: '--etcd-data-dir' },
    });
  }
  return dir;
}

/** `<etcdDataDir>.pre-restore-<operationId>`: where the old data dir is kept. */
export function asideDir(dataDir: string, operationId: string): string {
  return `${dataDir}.pre-restore-${operationId}`;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function makeRestoreDir(ctx: TaskContext, operationId: string): Promise<string> {
  await mkdir(path.join(ctx.config.dataDir, 'restores'), { recursive: true, mode: 0o700 });
  const dir = restoreDir(ctx, operationId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** sha256 (hex) and size of a file. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Removes `.<name>.restore-*` temp dirs an interrupted etcdctl restore left next to `dataDir`. */
export async function removeRestoreTemps(dataDir: string): Promise<string[]> {
  const parent = path.dirname(dataDir);
  const prefix = `.${path.basename(dataDir)}.restore-`;
  const removed: string[] = [];
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    await rm(path.join(parent, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** The hold of this operation, or a CONFLICT naming the other one. */
export function holdOf(ctx: TaskContext, operationId: string): RestoreHold | null {
  const hold = ctx.state.state.hold;
  if (hold && hold.operationId !== operationId) {
    throw new EtcdsnapError(
      'CONFLICT',
      `This node is still held by restore ${hold.operationId} (its member was stopped for it). Roll that restore back (or finish it) before starting restore ${operationId}.`,
      { details: { heldBy: hold.operationId } },
    );
  }
  return hold;
}

export function requireHold(ctx: TaskContext, operationId: string, kind: string): RestoreHold {
  const hold = holdOf(ctx, operationId);
  if (!hold) throw new EtcdsnapError('INVALID_ARGUMENT', `${kind} of restore ${operationId} needs its restore-stop first: this node's member was not stopped for it.`);
  return hold;
}

export function updateHold(ctx: TaskContext, change: (h: RestoreHold) => void): Promise<void> {
  return ctx.state.update((s) => {
    if (s.hold) change(s.hold);
  });
}

/** Whether the local member answers on its client URL. */
export async function memberAnswers(ctx: TaskContext, timeoutMs = 1000): Promise<boolean> {
  try {
    const client = await ctx.member.etcd.connect({ endpoints: [ctx.member.endpoints[0] as string], dialTimeoutMs: timeoutMs, requestTimeoutMs: timeoutMs });
    client.close();
    return true;
  } catch {
    return false;
  }
}

/** Waits until the member no longer answers; ETCD_MEMBER_FAILED after `timeoutMs`. */
export async function waitMemberGone(ctx: TaskContext, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (await memberAnswers(ctx, 500)) {
    ctx.signal.throwIfAborted();
    if (Date.now() > until) {
      throw new EtcdsnapError('ETCD_MEMBER_FAILED', `The etcd member still answers at ${ctx.member.endpoints[0]} ${Math.round(timeoutMs / 1000)} s after it was stopped${ctx.member.mode === 'external' ? ' (check --etcd-stop-command)' : ''}; nothing was changed on disk.`);
    }
    await delay(200);
  }
}

/**
 * When this member is the leader, waits (at most `maxMs`) until the other members no longer
 * answer. etcd 3.4's leader tries to hand leadership over when it stops, and waits for its
 * request timeout (~7 s) when every follower is stopping at the same moment; stopped last, it
 * finds no follower and exits at once. Best effort: any error just ends the wait.
 */
export async function letFollowersStopFirst(ctx: TaskContext, maxMs = 15_000): Promise<void> {
  const self = ctx.member.endpoints[0] as string;
  let others: string[] = [];
  try {
    const client = await ctx.member.etcd.connect({ endpoints: [self], dialTimeoutMs: 1000, requestTimeoutMs: 1000 });
    try {
      const st = await client.status(self);
      if (st.leaderId === '0' || st.leaderId !== st.memberId) return;
      others = (await client.members()).filter((m) => m.id !== st.memberId).flatMap((m) => (m.clientURLs[0] ? [m.clientURLs[0]] : []));
    } finally {
      client.close();
    }
  } catch {
    return;
  }
  if (others.length === 0) return;
  ctx.progress('this member leads: waiting for the other members to stop first');
  const answers = async (endpoint: string): Promise<boolean> => {
    try {
      const c = await ctx.member.etcd.connect({ endpoints: [endpoint], dialTimeoutMs: 500, requestTimeoutMs: 500 });
      c.close();
      return true;
    } catch {
      return false;
    }
  };
  // Each follower has to be seen down once (in a rollback it may come back on its old data at once).
  const seenDown = new Set<string>();
  for (const until = Date.now() + maxMs; Date.now() < until; await delay(200)) {
    ctx.signal.throwIfAborted();
    const left = others.filter((e) => !seenDown.has(e));
    const up = await Promise.all(left.map(answers));
    left.forEach((e, i) => void (up[i] ? undefined : seenDown.add(e)));
    if (seenDown.size === others.length) return;
  }
}

/**
 * Stops the member (managed: the process; external: the stop command if it answers) and waits
 * until it is gone. `leaderLast` (restore-stop, where every member stops for good): a leader
 * first waits for the others to stop (see letFollowersStopFirst). Not in a rollback, where
 * followers come back on their old data at once.
 */
export async function stopMember(ctx: TaskContext, leaderLast = false): Promise<void> {
  if (leaderLast) await letFollowersStopFirst(ctx);
  if (ctx.member.mode === 'managed') await ctx.member.stop();
  else if (await memberAnswers(ctx)) await ctx.member.stop();
  await waitMemberGone(ctx);
}

/** Starts the member (managed: idempotent; external: the start command unless it answers already). */
export async function startMember(ctx: TaskContext): Promise<void> {
  if (ctx.member.mode === 'managed') await ctx.member.start();
  else if (!(await memberAnswers(ctx))) await ctx.member.start();
}

/**
 * Waits until this member answers with a leader. CLUSTER_UNHEALTHY when it answers without
 * one (its peers are missing), ETCD_MEMBER_FAILED when it does not answer, after `timeoutMs`.
 */
export async function waitMemberHealthy(ctx: TaskContext, timeoutMs: number): Promise<MemberStatus> {
  const until = Date.now() + timeoutMs;
  let last: MemberStatus | undefined;
  for (;;) {
    ctx.signal.throwIfAborted();
    last = await ctx.member.status(Math.max(200, Math.min(2000, until - Date.now())));
    if (last.state === 'healthy') return last;
    if (Date.now() > until) break;
    await delay(200);
  }
  const answered = last.state === 'unhealthy' && last.etcdVersion !== undefined;
  throw new EtcdsnapError(
    answered ? 'CLUSTER_UNHEALTHY' : 'ETCD_MEMBER_FAILED',
    `The etcd member ${last.name} (${last.clientUrl}) did not become healthy within ${Math.round(timeoutMs / 1000)} s: ${last.error ?? last.state}.`,
    { details: { member: last.name, state: last.state, error: last.error } },
  );
}

export type HookPhase = 'stop' | 'start';

/**
 * Runs `--stop-hook` / `--start-hook` (when configured) with ETCDSNAP_OPERATION_ID,
 * ETCDSNAP_PHASE and, for the start hook, ETCDSNAP_KUBERNETES_VERSION and
 * ETCDSNAP_CLUSTER_CONFIG_FILE (a 0600 file with the cluster config), each unset when null.
 * Returns whether a hook ran.
 */
export async function runHook(ctx: TaskContext, phase: HookPhase, operationId: string, cluster?: { kubernetesVersion: string | null; clusterConfig: string | null }): Promise<boolean> {
  const command = phase === 'stop' ? ctx.config.stopHook : ctx.config.startHook;
  if (!command) return false;
  const env: Record<string, string | undefined> = { ETCDSNAP_OPERATION_ID: operationId, ETCDSNAP_PHASE: phase, ETCDSNAP_KUBERNETES_VERSION: undefined, ETCDSNAP_CLUSTER_CONFIG_FILE: undefined };
  if (cluster) {
    if (cluster.kubernetesVersion !== null) env.ETCDSNAP_KUBERNETES_VERSION = cluster.kubernetesVersion;
    if (cluster.clusterConfig !== null) {
      const file = path.join(await makeRestoreDir(ctx, operationId), 'cluster-config');
      await writeFileAtomic(file, cluster.clusterConfig, 0o600);
      env.ETCDSNAP_CLUSTER_CONFIG_FILE = file;
    }
  }
  ctx.logger.info({ operationId, phase }, `running the ${phase} hook`);
  try {
    await runCommand(command, `${phase} hook (--${phase}-hook)`, 300_000, env);
  } catch (err) {
    const e = err as EtcdsnapError;
    throw new EtcdsnapError(e.code, `${e.message}\nFix the hook (or the service it ${phase}s), then retry.`, { cause: e, details: { flag: `--${phase}-hook` } });
  }
  return true;
}

/** Stops serving and removes `<dataDir>/restores/<operationId>/` and its state records. */
export async function removeStaged(ctx: TaskContext, operationId: string): Promise<void> {
  await ctx.transfer.unserve(operationId);
  await rm(restoreDir(ctx, operationId), { recursive: true, force: true });
  if (ctx.state.state.staged[operationId]) {
    await ctx.state.update((s) => {
      delete s.staged[operationId];
    });
  }
}
