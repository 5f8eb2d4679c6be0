import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, EtcdsnapError, isEtcdsnapError, toEtcdsnapError, type ErrorCode } from '../../core/errors.js';
import type { DeleteSnapshotsTask } from '../../core/plans.js';
import type { BackupTarget } from '../../storage/target.js';
import type { TaskContext, TaskResult } from './types.js';

/** Which target holds an entry of the task, and the snapshot's name there. */
function resolve(entry: string, ctx: TaskContext): { target: BackupTarget; name: string } {
  if (entry.startsWith('s3://')) {
    if (!ctx.plan.policy.s3) throw new EtcdsnapError('INVALID_ARGUMENT', `Cannot delete ${entry}: the cluster's policy has no S3 target.`);
    const s3 = ctx.snapshots.s3Target(ctx.plan);
    const name = entry.slice(entry.lastIndexOf('/') + 1);
    if (s3.location(name) !== entry) throw new EtcdsnapError('INVALID_ARGUMENT', `Cannot delete ${entry}: it is not in the cluster's S3 target (${s3.location(name)}).`);
    return { target: s3, name };
  }
  if (entry.startsWith('file://')) {
    const file = fileURLToPath(entry);
    if (path.dirname(file) !== ctx.local.dir) throw new EtcdsnapError('INVALID_ARGUMENT', `Cannot delete ${entry}: it is not in this node's snapshot directory ${ctx.local.dir}.`);
    return { target: ctx.local, name: path.basename(file) };
  }
  return { target: ctx.local, name: entry };
}

/**
 * Deletes snapshots (and their metadata) by stored name from this node's snapshot dir, or by
 * location (`file://…` on this node, `s3://…` in the cluster's S3 target). A snapshot already
 * gone counts as deleted. Every deleted location is reported, also when others failed.
 */
export async function deleteSnapshotsTask(task: DeleteSnapshotsTask, ctx: TaskContext): Promise<TaskResult> {
  const deleted: string[] = [];
  const failures: Array<{ entry: string; error: EtcdsnapError }> = [];
  for (const entry of task.names) {
    ctx.signal.throwIfAborted();
    try {
      const { target, name } = resolve(entry, ctx);
      try {
        await target.delete(name, ctx.signal);
      } catch (err) {
        if (!isEtcdsnapError(err, 'SNAPSHOT_NOT_FOUND')) throw err;
      }
      deleted.push(target.location(name));
    } catch (err) {
      failures.push({ entry, error: toEtcdsnapError(err) });
    }
  }
  await ctx.record({ deleted });
  const first = failures[0];
  if (first) {
    const code: ErrorCode = first.error.code in ERROR_CODES ? first.error.code : 'INTERNAL';
    throw new EtcdsnapError(code, `Deleted ${deleted.length} of ${task.names.length} snapshots; could not delete ${failures.map((f) => `${f.entry} (${f.error.toLine()})`).join('; ')}`);
  }
  return { message: `Deleted ${deleted.length} snapshot${deleted.length === 1 ? '' : 's'}.` };
}
