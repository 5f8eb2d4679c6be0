import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { EtcdsnapError } from '../core/errors.js';
import { restoreSnapshotFile } from '../etcd/restore.js';
import type { BackupTarget } from '../storage/target.js';
import { fetchVerified, type FetchResult } from './fetch.js';

export interface RestoreOptions {
  target: BackupTarget;
  name: string;
  /** New data dir of the member; must not exist or be empty. */
  dataDir: string;
  memberName: string;
  initialCluster: string;
  initialAdvertisePeerUrls: string;
  initialClusterToken: string;
  /** Where the verified raw file is staged (default: next to the data dir, same file system). */
  workDir?: string;
  etcdctl?: string;
  signal?: AbortSignal;
}

/** Refuses a data dir that exists and holds anything: a restore never overwrites data. */
export async function assertEmptyDataDir(dataDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dataDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new EtcdsnapError('DATA_DIR_NOT_EMPTY', `${dataDir} exists and is not a directory: restore into a new path.`);
    throw err;
  }
  if (entries.length > 0) {
    throw new EtcdsnapError('DATA_DIR_NOT_EMPTY', `Data dir ${dataDir} is not empty: restore into a new path (the existing data is left as it is).`);
  }
}

/**
 * Verifies, then restores one member's data dir from a stored snapshot: the data dir is
 * checked first, the snapshot is fetched and verified (size, sha256, etcd trailer) before
 * anything touches the data dir, then `etcdctl snapshot restore` runs into it.
 */
export async function restoreFromTarget(o: RestoreOptions): Promise<FetchResult> {
  const dataDir = resolve(o.dataDir);
  await assertEmptyDataDir(dataDir);
  const workDir = resolve(o.workDir ?? dirname(dataDir));
  await mkdir(workDir, { recursive: true });
  const staged = join(workDir, `.etcdsnap-restore-${randomBytes(6).toString('hex')}.db`);
  try {
    const fetched = await fetchVerified(o.target, o.name, staged, o.signal);
    o.signal?.throwIfAborted();
    await restoreSnapshotFile({
      file: staged,
      dataDir,
      memberName: o.memberName,
      initialCluster: o.initialCluster,
      initialAdvertisePeerUrls: o.initialAdvertisePeerUrls,
      initialClusterToken: o.initialClusterToken,
      ...(o.etcdctl ? { etcdctl: o.etcdctl } : {}),
    });
    return fetched;
  } finally {
    await rm(staged, { force: true });
  }
}
