/**
 * restore-stop and restore-apply: the downtime part of a restore on one node. The hold is
 * recorded before anything is stopped, the old data dir is only ever renamed aside (never
 * deleted, never copied), and a re-run after a crash at any point ends in the same state.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { EtcdsnapError } from '../../core/errors.js';
import type { RestoreApplyTask, RestoreStopTask } from '../../core/plans.js';
import { restoreSnapshotFile } from '../../etcd/restore.js';
import { fsyncDir } from '../state.js';
import { asideDir, exists, hashFile, holdOf, memberAnswers, memberDataDir, removeRestoreTemps, requireHold, runHook, stagedPath, stopMember, updateHold } from './restore-common.js';
import type { TaskContext, TaskResult } from './types.js';

/** Every node: hold (persisted), stop hook, stop the member and confirm it is gone. */
export async function restoreStopTask(task: RestoreStopTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  if (!holdOf(ctx, op)) {
    // The first run decides; a re-run after a crash keeps what it saw (the member was running).
    const memberWasRunning = ctx.member.mode === 'managed' ? ctx.member.running() === true : (await ctx.member.status()).state !== 'stopped';
    await ctx.state.update((s) => {
      s.hold = { operationId: op, memberWasRunning, stopHookRan: false, dataDirExisted: null, memberStarted: false, since: new Date().toISOString() };
    });
  }
  if (ctx.config.stopHook) {
    // Recorded before it runs: a rollback runs the start hook if the stop hook may have acted.
    await updateHold(ctx, (h) => void (h.stopHookRan = true));
    ctx.progress('running the stop hook');
    await runHook(ctx, 'stop', op);
  }
  ctx.progress('stopping the etcd member');
  await stopMember(ctx, true);
  const hold = ctx.state.state.hold;
  return { message: `The etcd member is stopped${ctx.config.stopHook ? ' (stop hook run)' : ''}; it stays stopped until the restore starts it or rolls back${hold?.memberWasRunning ? '' : ' (it was not running before)'}.` };
}

/** The staged file must still be the one the restore verified (cheap: the recorded digest). */
async function checkStaged(ctx: TaskContext, op: string, file: string, rawSha256: string): Promise<void> {
  const rec = ctx.state.state.staged[op];
  const mismatch = (got: string): EtcdsnapError =>
    new EtcdsnapError('SNAPSHOT_CHECKSUM_MISMATCH', `The staged snapshot ${file} has sha256 ${got}, not ${rawSha256} as the restore expects; nothing was changed. Roll the restore back and start it again.`);
  if (!(await exists(file))) {
    throw new EtcdsnapError('SNAPSHOT_NOT_FOUND', `The staged snapshot ${file} is missing (restore-prepare or restore-fetch did not stage it on this node); nothing was changed.`);
  }
  if (rec && rec.file === file) {
    if (rec.rawSha256 !== rawSha256) throw mismatch(rec.rawSha256);
    return;
  }
  const now = await hashFile(file);
  if (now.sha256 !== rawSha256) throw mismatch(now.sha256);
}

/**
 * Every node: move the data dir aside to `<dataDir>.pre-restore-<op>` and restore the staged
 * file into a fresh data dir as a member of the new cluster. Re-run: once the aside dir
 * exists, whatever is at the data dir was made by this restore and is made again.
 */
export async function restoreApplyTask(task: RestoreApplyTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  const hold = requireHold(ctx, op, 'restore-apply');
  const dataDir = memberDataDir(ctx);
  const file = stagedPath(ctx, op);
  await checkStaged(ctx, op, file, task.rawSha256);
  if (await memberAnswers(ctx)) {
    throw new EtcdsnapError('ETCD_MEMBER_FAILED', `The etcd member still answers at ${ctx.member.endpoints[0]}: its data dir is not touched while it runs. Stop it (restore-stop) first.`);
  }
  const aside = asideDir(dataDir, op);
  await removeRestoreTemps(dataDir);
  let existed = hold.dataDirExisted;
  if (existed === null) {
    const found = (await exists(aside)) || (await exists(dataDir));
    existed = found;
    await updateHold(ctx, (h) => void (h.dataDirExisted = found));
  }
  if (existed) {
    if (await exists(aside)) {
      await rm(dataDir, { recursive: true, force: true }); // made by an interrupted run of this task
    } else if (await exists(dataDir)) {
      await rename(dataDir, aside);
      await fsyncDir(path.dirname(dataDir));
    } else {
      throw new EtcdsnapError('ETCD_RESTORE_FAILED', `Neither the data dir ${dataDir} nor its moved-aside copy ${aside} exists any more; nothing was restored. Roll the restore back and check the node.`);
    }
  } else {
    await rm(dataDir, { recursive: true, force: true }); // the node had none: anything here is ours
  }
  ctx.progress(`restoring the snapshot into ${dataDir}`);
  const r = await restoreSnapshotFile({
    file,
    dataDir,
    memberName: task.memberName,
    initialCluster: task.initialCluster,
    initialAdvertisePeerUrls: task.peerUrl,
    initialClusterToken: task.initialClusterToken,
    signal: ctx.signal,
  });
  return { message: `Restored the snapshot into ${dataDir} in ${r.durationMs} ms${existed ? `; the old data dir is kept at ${aside}` : ' (there was no data dir before)'}.` };
}
