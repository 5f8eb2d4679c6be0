import type { Command } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { closeTarget, createTarget } from '../storage/factory.js';
import type { BackupTarget } from '../storage/target.js';
import { addS3Options, s3ConfigFromOptions, type S3CliOptions } from './s3-options.js';

export interface TargetOptions extends S3CliOptions {
  dir?: string;
  clusterId?: string;
}

const opened: BackupTarget[] = [];

/** `--dir` (local target), the S3 flags, and `--cluster-id` (S3 listings are scoped by it). */
export function addTargetOptions(cmd: Command): Command {
  cmd.option('--dir <dir>', 'local snapshot directory (default: $ETCDSNAP_DIR)', process.env.ETCDSNAP_DIR);
  addS3Options(cmd);
  return cmd.option('--cluster-id <id>', 'cluster id: stored in new snapshots; S3 listings then show only this cluster’s snapshots');
}

/** Every target the options name, local first. Throws INVALID_ARGUMENT when none is named. */
export function targetsFromOptions(opts: TargetOptions): BackupTarget[] {
  const targets: BackupTarget[] = [];
  if (opts.dir) targets.push(createTarget({ kind: 'local', dir: opts.dir }));
  const s3 = s3ConfigFromOptions(opts);
  if (s3) targets.push(createTarget({ kind: 's3', config: s3, ...(opts.clusterId ? { clusterId: opts.clusterId } : {}) }));
  if (targets.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'No snapshot location given: pass --dir DIR and/or --s3 with its options.');
  opened.push(...targets);
  return targets;
}

/** The one target a read, delete or restore works on: S3 when --s3 is given, else --dir. */
export function singleTarget(opts: TargetOptions): BackupTarget {
  const all = targetsFromOptions(opts);
  return all[all.length - 1] as BackupTarget;
}

/** Called once the command is done, so open sockets do not keep the process alive. */
export function closeOpenedTargets(): void {
  for (const t of opened.splice(0)) closeTarget(t);
}
