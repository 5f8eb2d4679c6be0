/**
 * restore-finish, restore-cleanup and restore-rollback: how a restore ends on a node. Cleanup
 * (after every node finished) and rollback release the hold and remove staged files; rollback
 * puts the old data dir back first.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { EtcdsnapError, toEtcdsnapError } from '../../core/errors.js';
import type { RestoreCleanupTask, RestoreFinishTask, RestoreRollbackTask } from '../../core/plans.js';
import { fsyncDir } from '../state.js';
import { asideDir, exists, removeRestoreTemps, removeStaged, runHook, startMember, stopMember, updateHold, waitMemberHealthy } from './restore-common.js';
import { sweepKeptDataDirs } from './restore-sweep.js';
import type { TaskContext, TaskResult } from './types.js';

const DAY = 86_400_000;

/**
 * The member runs on the restored data; the start hook runs with the restored version and
 * config. Nothing is released yet: until restore-cleanup the node can still be rolled back.
 */
export async function restoreFinishTask(task: RestoreFinishTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  const hold = ctx.state.state.hold?.operationId === op ? ctx.state.state.hold : null;
  if (!hold) return { message: `Restore ${op} was already cleaned up on this node.` };
  if (ctx.member.mode === 'managed') await ctx.member.start(); // already running unless the agent restarted
  if (ctx.config.startHook) ctx.progress('running the start hook');
  await runHook(ctx, 'start', op, { kubernetesVersion: task.kubernetesVersion, clusterConfig: task.clusterConfig });
  return { message: `Restore ${op}: the member runs on the restored data${ctx.config.startHook ? '; start hook run' : ''}.` };
}

/** After every node finished: release the hold, remove staged files, keep or remove the old data dir. */
export async function restoreCleanupTask(task: RestoreCleanupTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  if (ctx.member.mode === 'managed' && ctx.state.state.hold?.operationId === op) await ctx.member.start();
  const dataDir = ctx.config.etcdDataDir;
  const aside = dataDir === undefined ? undefined : asideDir(dataDir, op);
  const keep = aside !== undefined && (await exists(aside));
  const expiresAt = new Date(Date.now() + task.keepOldDataDays * DAY).toISOString();
  // One write: the hold goes and the old data dir is scheduled for removal (now, with 0 days).
  await ctx.state.update((s) => {
    if (s.hold?.operationId === op) s.hold = null;
    if (keep && !s.keptDataDirs.some((k) => k.path === aside)) s.keptDataDirs.push({ path: aside, expiresAt });
  });
  await removeStaged(ctx, op);
  await sweepKeptDataDirs(ctx.state, ctx.logger);
  const old = !keep ? '' : task.keepOldDataDays === 0 ? `; removed the old data dir ${aside}` : `; the old data dir ${aside} is kept until ${expiresAt}`;
  return { message: `Restore ${op} finished on this node${old}.` };
}

/** Puts the node back as it was before the restore, whatever the restore got to. */
export async function restoreRollbackTask(task: RestoreRollbackTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  const hold = ctx.state.state.hold?.operationId === op ? ctx.state.state.hold : null;
  if (!hold) {
    await removeStaged(ctx, op);
    return { message: `Nothing was stopped on this node for restore ${op}; removed its staged files.` };
  }
  ctx.progress('stopping the etcd member');
  await stopMember(ctx);
  const dataDir = ctx.config.etcdDataDir;
  let putBack = false;
  if (dataDir !== undefined) {
    await removeRestoreTemps(dataDir);
    const aside = asideDir(dataDir, op);
    if (await exists(aside)) {
      // What is at the data dir was restored from the snapshot: the old one goes back.
      await rm(dataDir, { recursive: true, force: true });
      await rename(aside, dataDir);
      await fsyncDir(path.dirname(dataDir));
      putBack = true;
    } else if (hold.dataDirExisted === false) {
      await rm(dataDir, { recursive: true, force: true }); // the node had no data dir before
    }
  }
  if (hold.memberWasRunning) {
    await updateHold(ctx, (h) => void (h.memberStarted = true));
    ctx.progress('starting the etcd member on its old data');
    try {
      await startMember(ctx);
      await waitMemberHealthy(ctx, task.timeoutMs);
    } catch (err) {
      const e = toEtcdsnapError(err);
      if (e.code === 'OPERATION_ABORTED') throw e;
      throw new EtcdsnapError('ETCD_MEMBER_FAILED', `Rolled the data dir back${putBack ? '' : ' (nothing had been moved)'}, but the etcd member did not come back: ${e.message}`, {
        cause: e,
        details: { ...e.details, dataDir, putBack },
      });
    }
  }
  if (hold.stopHookRan) await runHook(ctx, 'start', op, { kubernetesVersion: task.kubernetesVersion, clusterConfig: task.clusterConfig });
  await ctx.state.update((s) => {
    if (s.hold?.operationId === op) s.hold = null;
  });
  await removeStaged(ctx, op);
  return {
    message: `Rolled restore ${op} back on this node: ${putBack ? 'the old data dir is back' : 'the data dir was not replaced'}${hold.memberWasRunning ? ', the member is healthy' : ', the member stays stopped (it was not running before)'}${hold.stopHookRan && ctx.config.startHook ? ', start hook run' : ''}.`,
  };
}
