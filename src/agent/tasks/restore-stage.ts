/**
 * Getting the snapshot onto every node before anything is stopped: restore-prepare (the init
 * node: from its snapshot dir or S3, then served to the others) and restore-fetch (the other
 * nodes: from the init node, certificate pinned). A bad copy fails the restore here, before
 * any downtime.
 */
import { chmod, rm, stat } from 'node:fs/promises';
import { EtcdsnapError } from '../../core/errors.js';
import type { RestoreFetchTask, RestorePrepareResult, RestorePrepareTask } from '../../core/plans.js';
import { snapshotFileStatus } from '../../etcd/restore.js';
import { fetchVerified } from '../../snapshot/fetch.js';
import type { BackupTarget } from '../../storage/target.js';
import type { StagedSnapshot } from '../state.js';
import { downloadSnapshot, mib } from '../transfer-client.js';
import { hashFile, makeRestoreDir, stagedPath } from './restore-common.js';
import { preflight } from './restore-preflight.js';
import type { TaskContext, TaskResult } from './types.js';

/** The staged file of an earlier (interrupted) run, if it is still what was recorded. */
async function reusable(ctx: TaskContext, operationId: string, expect?: { sha256: string; size: number }): Promise<StagedSnapshot | undefined> {
  const rec = ctx.state.state.staged[operationId];
  if (!rec || (expect && (rec.rawSha256 !== expect.sha256 || rec.rawSize !== expect.size))) return undefined;
  const size = await stat(rec.file).then(
    (s) => s.size,
    () => -1,
  );
  if (size !== rec.rawSize) return undefined;
  const now = await hashFile(rec.file);
  return now.sha256 === rec.rawSha256 ? rec : undefined;
}

async function record(ctx: TaskContext, staged: StagedSnapshot): Promise<void> {
  await chmod(staged.file, 0o600);
  await ctx.state.update((s) => {
    s.staged[staged.operationId] = staged;
  });
}

function sourceTarget(task: RestorePrepareTask, ctx: TaskContext): BackupTarget {
  if (task.source.storage === 'local') return ctx.local;
  if (!ctx.plan.policy.s3) throw new EtcdsnapError('INVALID_ARGUMENT', `Restore ${task.operationId} reads ${task.source.name} from S3, but the cluster's policy has no S3 target.`);
  return ctx.snapshots.s3Target(ctx.plan);
}

/** Init node: stage the snapshot (verified) and serve it to the other nodes. */
export async function restorePrepareTask(task: RestorePrepareTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  const dest = stagedPath(ctx, op);
  let staged = await reusable(ctx, op);
  if (staged) {
    await preflight(ctx, op, staged.rawSize, staged.rawSize);
  } else {
    const target = sourceTarget(task, ctx);
    const snap = await target.stat(task.source.name, ctx.signal);
    if (task.source.sha256 !== undefined) {
      if (!snap.metadata) {
        throw new EtcdsnapError('METADATA_MISSING', `Snapshot ${snap.location} has no metadata, so its sha256 cannot be compared with the one the server recorded; nothing was changed.`);
      }
      if (snap.metadata.sha256 !== task.source.sha256) {
        throw new EtcdsnapError(
          'SNAPSHOT_CHECKSUM_MISMATCH',
          `Snapshot ${snap.location} has sha256 ${snap.metadata.sha256} in its metadata, not ${task.source.sha256} as the server recorded: it is another copy or was replaced. Nothing was changed; use another snapshot.`,
          { details: { location: snap.location } },
        );
      }
    }
    await preflight(ctx, op, snap.metadata?.rawSize ?? snap.size);
    await makeRestoreDir(ctx, op);
    await rm(dest, { force: true });
    ctx.progress(`fetching ${snap.location} (${Math.ceil(snap.size / 1048576)} MiB)`);
    const got = await fetchVerified(target, task.source.name, dest, ctx.signal);
    staged = { operationId: op, file: dest, rawSha256: got.rawSha256, rawSize: got.rawSize };
    await record(ctx, staged);
  }
  const status = await snapshotFileStatus(dest);
  const served = await ctx.transfer.serve(op, dest, staged.rawSize, task.transferToken);
  const result: RestorePrepareResult = {
    rawSha256: staged.rawSha256,
    rawSize: staged.rawSize,
    revision: status.revision,
    totalKey: status.totalKey,
    transferUrl: served.url,
    transferCertSha256: served.certSha256,
  };
  return { message: `Staged ${task.source.name} (${staged.rawSize} bytes, revision ${status.revision}, ${status.totalKey} keys); serving it at ${served.url}.`, result };
}

/** Other nodes: download the staged file from the init node, verify it, stage it. */
export async function restoreFetchTask(task: RestoreFetchTask, ctx: TaskContext): Promise<TaskResult> {
  const op = task.operationId;
  const expect = { sha256: task.rawSha256, size: task.rawSize };
  const again = await reusable(ctx, op, expect);
  if (again) {
    await preflight(ctx, op, task.rawSize, task.rawSize);
    return { message: `The snapshot from ${task.source.node} was already staged and verified (${task.rawSize} bytes).` };
  }
  await preflight(ctx, op, task.rawSize);
  await makeRestoreDir(ctx, op);
  const dest = stagedPath(ctx, op);
  await rm(dest, { force: true });
  const from = task.source.node;
  ctx.progress(`downloading ${mib(0, task.rawSize)} from ${from}`);
  const got = await downloadSnapshot({
    url: task.source.url,
    operationId: op,
    certSha256: task.source.certSha256,
    token: task.source.token,
    node: from,
    dest,
    size: task.rawSize,
    sha256: task.rawSha256,
    signal: ctx.signal,
    progress: (bytes, total) => ctx.progress(`downloading ${mib(bytes, total)} from ${from}`),
  });
  await record(ctx, { operationId: op, file: dest, rawSha256: task.rawSha256, rawSize: task.rawSize });
  return { message: `Downloaded the snapshot from ${from} (${got.bytes} bytes, sha256 verified${got.attempts > 1 ? `, ${got.attempts} attempts` : ''}).` };
}
