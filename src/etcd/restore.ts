/**
 * `etcdctl snapshot restore` made safe to call on a node's real data dir.
 *
 * etcdctl refuses an existing --data-dir (even an empty one) and leaves a partial
 * `member/snap/db` behind when it fails (FACTS.md). So we restore into a fresh sibling
 * path and rename it into place: the data dir either does not change at all or appears
 * complete. A non-empty data dir is refused before anything is touched; moving an old data
 * dir aside is the caller's decision (the restore operation keeps it for rollback).
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { EtcdsnapError, type ErrorCode } from '../core/errors.js';
import { etcdctlErrorText, runEtcdctl } from './etcdctl.js';

export interface RestoreSnapshotOptions {
  /** An etcd snapshot file as `etcdctl snapshot save` writes it (sha256 trailer included). */
  file: string;
  /** Must not exist, or be an empty directory (which is replaced). */
  dataDir: string;
  memberName: string;
  /** `m1=http://…:2380,m2=…` — every member of the restored cluster. */
  initialCluster: string;
  /** This member's peer URL(s). */
  initialAdvertisePeerUrls: string | string[];
  /** A new token, so restored members never talk to members of the old cluster. */
  initialClusterToken: string;
  /** Default `etcdctl` on PATH. */
  etcdctl?: string;
  signal?: AbortSignal;
}

export interface RestoreResult {
  dataDir: string;
  durationMs: number;
}

export interface SnapshotFileStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** Restores `file` into `dataDir`; on any failure `dataDir` is left exactly as it was. */
export async function restoreSnapshotFile(o: RestoreSnapshotOptions): Promise<RestoreResult> {
  const started = Date.now();
  for (const [key, value] of Object.entries({ file: o.file, dataDir: o.dataDir, memberName: o.memberName, initialCluster: o.initialCluster, initialClusterToken: o.initialClusterToken })) {
    if (!value) throw new EtcdsnapError('INVALID_ARGUMENT', `restore needs a non-empty ${key}.`);
  }
  const peerUrls = Array.isArray(o.initialAdvertisePeerUrls) ? o.initialAdvertisePeerUrls.join(',') : o.initialAdvertisePeerUrls;
  if (!peerUrls) throw new EtcdsnapError('INVALID_ARGUMENT', 'restore needs the member\'s peer URL (initialAdvertisePeerUrls).');
  const file = path.resolve(o.file);
  await assertSnapshotFile(file);
  const dataDir = await resolveDataDir(path.resolve(o.dataDir));

  const parent = path.dirname(dataDir);
  const createdParent = await mkdir(parent, { recursive: true });
  const temp = path.join(parent, `.${path.basename(dataDir)}.restore-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const args = ['snapshot', 'restore', file, `--data-dir=${temp}`, `--name=${o.memberName}`, `--initial-cluster=${o.initialCluster}`, `--initial-advertise-peer-urls=${peerUrls}`, `--initial-cluster-token=${o.initialClusterToken}`];
    const res = await runEtcdctl(args, { ...(o.etcdctl ? { etcdctl: o.etcdctl } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    if (res.code !== 0) throw restoreError(file, res.stderr);
    await stat(path.join(temp, 'member', 'snap', 'db')).catch((err: unknown) => {
      throw new EtcdsnapError('ETCD_RESTORE_FAILED', `etcdctl reported success but wrote no member/snap/db under ${temp}.`, { cause: err });
    });
    try {
      // Replaces an empty directory atomically; fails (ENOTEMPTY/EEXIST) if it filled up meanwhile.
      await rename(temp, dataDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') throw notEmpty(dataDir, err);
      throw new EtcdsnapError('ETCD_RESTORE_FAILED', `Could not move the restored data into ${dataDir}: ${(err as Error).message}`, { cause: err });
    }
    await fsyncDir(parent);
    return { dataDir, durationMs: Date.now() - started };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (createdParent) await removeEmptyDirs(parent, createdParent);
    throw err;
  }
}

/** `etcdctl snapshot status -w json`. It checks neither the trailer nor the digest (FACTS.md). */
export async function snapshotFileStatus(file: string, options: { etcdctl?: string } = {}): Promise<SnapshotFileStatus> {
  const abs = path.resolve(file);
  await assertSnapshotFile(abs);
  const res = await runEtcdctl(['snapshot', 'status', abs, '-w', 'json'], options);
  if (res.code !== 0) {
    const text = etcdctlErrorText(res.stderr);
    const code: ErrorCode = /invalid database|bolt|file size too small/i.test(text) ? 'SNAPSHOT_CORRUPT' : 'INTERNAL';
    throw new EtcdsnapError(code, `etcdctl snapshot status of ${abs} failed: ${text}`, { details: { file: abs, stderr: text } });
  }
  try {
    const parsed = JSON.parse(res.stdout) as Partial<SnapshotFileStatus>;
    const out = { hash: Number(parsed.hash), revision: Number(parsed.revision), totalKey: Number(parsed.totalKey), totalSize: Number(parsed.totalSize) };
    if (Object.values(out).some((v) => !Number.isFinite(v))) throw new Error(`unexpected fields in ${res.stdout.trim()}`);
    return out;
  } catch (err) {
    throw new EtcdsnapError('INTERNAL', `Could not read etcdctl snapshot status output: ${(err as Error).message}`, { cause: err });
  }
}

async function assertSnapshotFile(file: string): Promise<void> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Snapshot file ${file} does not exist.`, { cause: err, details: { file } });
    throw new EtcdsnapError('INTERNAL', `Cannot read snapshot file ${file}: ${err.message}`, { cause: err });
  });
  if (!st.isFile()) throw new EtcdsnapError('INVALID_ARGUMENT', `${file} is not a regular file.`, { details: { file } });
}

/** The real path to restore into; refuses anything but "absent" or "empty directory". */
async function resolveDataDir(dataDir: string): Promise<string> {
  const st = await lstat(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return dataDir;
  // A symlinked data dir (e.g. onto another disk) is restored where it points.
  const real = st.isSymbolicLink() ? await realpath(dataDir) : dataDir;
  const target = real === dataDir ? st : await stat(real);
  if (!target.isDirectory()) throw notEmpty(dataDir, undefined, 'exists and is not a directory');
  const entries = await readdir(real);
  if (entries.length > 0) throw notEmpty(dataDir, undefined, `is not empty (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''})`);
  return real;
}

function notEmpty(dataDir: string, cause?: unknown, what = 'is not empty'): EtcdsnapError {
  return new EtcdsnapError('DATA_DIR_NOT_EMPTY', `The etcd data dir ${dataDir} ${what}. Move it aside (or restore into a new path) and try again; nothing was changed.`, {
    cause,
    details: { dataDir },
  });
}

function restoreError(file: string, stderr: string): EtcdsnapError {
  const text = etcdctlErrorText(stderr);
  const details = { file, stderr: text };
  if (/expected sha256|sha256 mismatch|hash mismatch/i.test(text)) {
    return new EtcdsnapError('SNAPSHOT_CHECKSUM_MISMATCH', `Snapshot ${file} does not match the sha256 etcd recorded in it: the file is corrupted. Use another copy of the snapshot.`, { details });
  }
  if (/snapshot missing hash/i.test(text)) {
    return new EtcdsnapError('SNAPSHOT_CORRUPT', `Snapshot ${file} has no sha256 trailer (truncated or not an etcd snapshot). Use another copy of the snapshot.`, { details });
  }
  if (/invalid database|file size too small/i.test(text)) {
    return new EtcdsnapError('SNAPSHOT_CORRUPT', `Snapshot ${file} is not a valid etcd database: ${text}`, { details });
  }
  return new EtcdsnapError('ETCD_RESTORE_FAILED', `etcdctl snapshot restore of ${file} failed: ${text}`, { details });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Removes `dir` and its parents up to `top` while they are empty (the ones mkdir created). */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = path.dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}
