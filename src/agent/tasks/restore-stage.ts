/**
 * Getting the snapshot onto every node before anything is stopped: restore-prepare (the init
 * node: from its snapshot dir or S3, then served to the others) and restore-fetch (the other
 * nodes: from the init node, certificate pinned). A bad copy fails the restore here, before
 * any downtime.
 */
import { chmod, copyFile, link, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { codecOfName, type Codec } from '../../core/codec.js';
import { EtcdsnapError } from '../../core/errors.js';
import type { RestoreFetchTask, RestorePrepareResult, RestorePrepareTask } from '../../core/plans.js';
import { snapshotFileStatus } from '../../etcd/restore.js';
import { decompressVerified, fetchStored, fetchVerified } from '../../snapshot/fetch.js';
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
    const m = snap.metadata;
    await preflight(ctx, op, (m?.rawSize ?? snap.size) + (m ? m.storedSize : 0));
    await makeRestoreDir(ctx, op);
    await rm(dest, { force: true });
    ctx.progress(`fetching ${snap.location} (${Math.ceil(snap.size / 1048576)} MiB)`);
    if (task.source.storage === 's3' && m && m.codec !== 'none') {
      // Kept compressed first: the other nodes download these bytes from here, not the raw ones.
      const stored = storedPath(ctx, op);
      await rm(stored, { force: true });
      await fetchStored(target, task.source.name, stored, ctx.signal);
      ctx.progress(`decompressing the ${m.codec} bytes and verifying them`);
      const got = await decompressVerified(stored, m.codec, dest, { rawSha256: m.rawSha256, rawSize: m.rawSize }, ctx.signal);
      staged = { operationId: op, file: dest, rawSha256: got.rawSha256, rawSize: got.rawSize };
    } else {
      const got = await fetchVerified(target, task.source.name, dest, ctx.signal);
      staged = { operationId: op, file: dest, rawSha256: got.rawSha256, rawSize: got.rawSize };
    }
    await record(ctx, staged);
  }
  const status = await snapshotFileStatus(dest);
  const stored = await storedCopy(task, ctx);
  const served = await ctx.transfer.serve(op, dest, staged.rawSize, task.transferToken, stored?.file);
  const result: RestorePrepareResult = {
    rawSha256: staged.rawSha256,
    rawSize: staged.rawSize,
    revision: status.revision,
    totalKey: status.totalKey,
    transferUrl: served.url,
    transferCertSha256: served.certSha256,
    ...(stored ? { storedCodec: stored.codec, storedSha256: stored.sha256, storedSize: stored.size } : {}),
  };
  const also = stored ? ` and its ${stored.codec} bytes (${stored.size})` : '';
  return { message: `Staged ${task.source.name} (${staged.rawSize} bytes, revision ${status.revision}, ${status.totalKey} keys); serving it${also} at ${served.url}.`, result: result as Record<string, string | number> };
}

/** Where the init node keeps the stored (compressed) bytes it serves. */
function storedPath(ctx: TaskContext, operationId: string): string {
  return path.join(path.dirname(stagedPath(ctx, operationId)), 'snapshot.stored');
}

/**
 * The snapshot's stored (compressed) bytes for the other nodes to download instead of the raw
 * snapshot (a fraction of its size): a local snapshot's file hard-linked into the restore's dir
 * (so a retention run cannot remove it meanwhile), or the bytes fetched from S3 before they were
 * decompressed. Only for a compressed snapshot whose sha256 the server sent; undefined otherwise
 * (the raw file is served alone).
 */
async function storedCopy(task: RestorePrepareTask, ctx: TaskContext): Promise<{ file: string; codec: Codec; sha256: string; size: number } | undefined> {
  const sha256 = task.source.sha256;
  const codec = codecOfName(task.source.name);
  if (sha256 === undefined || codec === 'none') return undefined;
  const file = storedPath(ctx, task.operationId);
  if (task.source.storage === 'local') {
    await rm(file, { force: true });
    try {
      await link(path.join(ctx.local.dir, task.source.name), file);
    } catch {
      await copyFile(path.join(ctx.local.dir, task.source.name), file);
    }
  }
  const got = await hashFile(file).catch(() => undefined);
  if (!got || got.sha256 !== sha256) {
    await rm(file, { force: true });
    return undefined; // gone or changed since it was verified: serve the raw file only
  }
  return { file, codec, sha256, size: got.size };
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
  const stored = task.stored;
  const what = stored ? `${stored.codec} ` : '';
  const size = stored ? stored.size : task.rawSize;
  ctx.progress(`downloading ${what}${mib(0, size)} from ${from}`);
  const download = stored ? path.join(path.dirname(dest), 'snapshot.stored') : dest;
  const got = await downloadSnapshot({
    url: task.source.url,
    operationId: op,
    certSha256: task.source.certSha256,
    token: task.source.token,
    node: from,
    dest: download,
    size,
    sha256: stored ? stored.sha256 : task.rawSha256,
    signal: ctx.signal,
    progress: (bytes, total) => ctx.progress(`downloading ${what}${mib(bytes, total)} from ${from}`),
    ...(stored ? { file: 'snapshot.stored' as const } : {}),
  });
  if (stored) {
    ctx.progress(`decompressing the ${stored.codec} bytes and verifying them`);
    try {
      await decompressVerified(download, stored.codec, dest, { rawSha256: task.rawSha256, rawSize: task.rawSize }, ctx.signal);
    } finally {
      await rm(download, { force: true });
    }
  }
  await record(ctx, { operationId: op, file: dest, rawSha256: task.rawSha256, rawSize: task.rawSize });
  const how = stored ? `${got.bytes} ${stored.codec} bytes, decompressed to ${task.rawSize}; both sha256 verified` : `${got.bytes} bytes, sha256 verified`;
  return { message: `Downloaded the snapshot from ${from} (${how}${got.attempts > 1 ? `, ${got.attempts} attempts` : ''}).` };
}
