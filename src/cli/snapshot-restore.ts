import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { restoreFromTarget } from '../snapshot/restore.js';
import { singleTarget, type TargetOptions } from './targets.js';

interface RestoreCliOptions extends TargetOptions {
  dataDir: string;
  memberName: string;
  initialCluster: string;
  initialAdvertisePeerUrls: string;
  initialClusterToken?: string;
}

export function restoreAction(cmd: Command): Command {
  return cmd
    .description(
      'Restore one member’s data dir from a snapshot: size and sha256 are verified first, then etcdctl snapshot restore runs into a new data dir. Run it on every member with the same --initial-cluster and token, then start the members.',
    )
    .argument('<name>', 'snapshot name')
    .requiredOption('--data-dir <dir>', 'new data dir for the member (must not exist or be empty)')
    .requiredOption('--member-name <name>', 'this member’s name (etcd --name)')
    .requiredOption('--initial-cluster <list>', 'name=peerURL,… of every member')
    .requiredOption('--initial-advertise-peer-urls <urls>', 'this member’s peer URL(s)')
    .option('--initial-cluster-token <token>', 'new cluster token (default: a random one; use the same on every member)')
    .action(async (name: string, opts: RestoreCliOptions) => {
      const token = opts.initialClusterToken ?? `etcdsnap-${randomBytes(6).toString('hex')}`;
      const ac = new AbortController();
      const onSignal = (): void => ac.abort();
      process.once('SIGINT', onSignal);
      try {
        const fetched = await restoreFromTarget({
          target: singleTarget(opts),
          name,
          dataDir: opts.dataDir,
          memberName: opts.memberName,
          initialCluster: opts.initialCluster,
          initialAdvertisePeerUrls: opts.initialAdvertisePeerUrls,
          initialClusterToken: token,
          signal: ac.signal,
        });
        process.stdout.write(
          `restored ${name} into ${opts.dataDir} (member ${opts.memberName}, cluster token ${token})\n` +
            `  verified with ${fetched.verifiedWith === 'metadata' ? 'the metadata sha256 and etcd’s checksum' : 'etcd’s checksum only (no metadata sidecar)'}\n`,
        );
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}
