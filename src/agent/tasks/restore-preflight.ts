/**
 * Checks a node makes before a restore stops anything (restore-prepare and restore-fetch):
 * etcdctl is there, the member's data dir is known and the agent can stop and start etcd,
 * no other restore holds the node, and there is room for the staged file and the restored
 * data dir.
 */
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { EtcdsnapError } from '../../core/errors.js';
import { runEtcdctl } from '../../etcd/etcdctl.js';
import { holdOf, memberDataDir } from './restore-common.js';
import type { TaskContext } from './types.js';

const MiB = 1024 * 1024;

/** The nearest existing directory at or above `p`. */
async function existingAncestor(p: string): Promise<string> {
  for (let d = p; ; d = path.dirname(d)) {
    try {
      await stat(d);
      return d;
    } catch {
      if (path.dirname(d) === d) return d;
    }
  }
}

/** Free bytes for an unprivileged writer, and the device, of the file system holding `dir`. */
async function space(dir: string): Promise<{ dir: string; dev: number; free: number }> {
  const at = await existingAncestor(dir);
  const [fs, st] = await Promise.all([statfs(at), stat(at)]);
  return { dir: at, dev: st.dev, free: fs.bavail * fs.bsize };
}

/**
 * Throws a coded error naming what to fix. `rawSize` (or an estimate) sizes the disk check:
 * the staged file under the agent's data dir plus the restored data dir next to the member's
 * (about the same size again); `alreadyStaged` bytes are on disk already.
 */
export async function preflight(ctx: TaskContext, operationId: string, rawSize: number, alreadyStaged = 0): Promise<void> {
  holdOf(ctx, operationId);
  const dataDir = memberDataDir(ctx);
  if (ctx.config.mode === 'external') {
    for (const [key, flag] of [
      ['etcdStopCommand', '--etcd-stop-command'],
      ['etcdStartCommand', '--etcd-start-command'],
    ] as const) {
      if (!ctx.config[key]) throw new EtcdsnapError('INVALID_CONFIG', `A restore stops and starts etcd: start the agent with ${flag} (external mode).`, { details: { flag } });
    }
  }
  const version = await runEtcdctl(['version']);
  if (version.code !== 0) throw new EtcdsnapError('ETCDCTL_NOT_FOUND', `etcdctl does not run (${version.stderr.trim().slice(0, 200)}); install Debian's etcd-client.`);

  const staging = await space(path.join(ctx.config.dataDir, 'restores'));
  const restoring = await space(path.dirname(dataDir));
  const needStaged = Math.max(0, rawSize - alreadyStaged);
  const needs = staging.dev === restoring.dev ? [{ at: staging, bytes: needStaged + rawSize, what: 'the staged snapshot and the restored data dir' }] : [
    { at: staging, bytes: needStaged, what: 'the staged snapshot' },
    { at: restoring, bytes: rawSize, what: 'the restored data dir' },
  ];
  for (const n of needs) {
    if (n.at.free < n.bytes) {
      throw new EtcdsnapError(
        'TARGET_IO',
        `Not enough disk space for a restore: ${n.what} need${n.what.includes(' and ') ? '' : 's'} about ${Math.ceil(n.bytes / MiB)} MiB on the file system of ${n.at.dir}, which has ${Math.floor(n.at.free / MiB)} MiB free. Free some space (old snapshots, *.pre-restore-* dirs) and retry.`,
        { details: { dir: n.at.dir, needBytes: n.bytes, freeBytes: n.at.free } },
      );
    }
  }
}
