import type { Command } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { LocalTarget } from '../storage/local.js';
import type { BackupTarget } from '../storage/target.js';

export interface TargetOptions {
  dir?: string;
  clusterId?: string;
}

/** `--dir` (local target); S3 options are added next to it. */
export function addTargetOptions(cmd: Command): Command {
  return cmd.option('--dir <dir>', 'local snapshot directory (the local target)', process.env.ETCDSNAP_DIR);
}

/** Every target the options name, local first. Throws INVALID_ARGUMENT when none is named. */
export function targetsFromOptions(opts: TargetOptions): BackupTarget[] {
  const targets: BackupTarget[] = [];
  if (opts.dir) targets.push(new LocalTarget({ dir: opts.dir }));
  if (targets.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'No snapshot location given: pass --dir DIR (or --s3 with its options).');
  return targets;
}

/** The one target a read or delete command works on. */
export function singleTarget(opts: TargetOptions): BackupTarget {
  const all = targetsFromOptions(opts);
  return all[all.length - 1] as BackupTarget;
}
