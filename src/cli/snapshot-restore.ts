import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { RESTORE_MODES, type RestoreMode } from '../core/metadata.js';
import { restoreFromTarget } from '../snapshot/restore.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';
import { addServerOptions, type ServerOptions } from './server-config.js';
import { restoreOnServer } from './snapshot-server.js';
import { singleTarget, type TargetOptions } from './targets.js';

interface RestoreCliOptions extends TargetOptions, ServerOptions {
  dataDir?: string;
  memberName?: string;
  initialCluster?: string;
  initialAdvertisePeerUrls?: string;
  initialClusterToken?: string;
  mode?: RestoreMode;
  storage?: 'local' | 's3';
  wait?: boolean;
  yes?: boolean;
  output: OutputFormat;
}

const STANDALONE_FLAGS = [
  ['dataDir', '--data-dir'],
  ['memberName', '--member-name'],
  ['initialCluster', '--initial-cluster'],
  ['initialAdvertisePeerUrls', '--initial-advertise-peer-urls'],
] as const;

export function restoreAction(cmd: Command): Command {
  return addServerOptions(
    cmd
      .description(
        'Restore a snapshot. `restore CLUSTER NAME --mode …`: the whole cluster, through the etcdsnap server (every member stopped, restored and started again; rolled back on failure). `restore NAME --dir/--s3 --data-dir …`: standalone, one member’s data dir — size and sha256 are verified first, then etcdctl snapshot restore runs into a new data dir; run it on every member with the same --initial-cluster and token, then start the members.',
      )
      .argument('<cluster-or-name>', 'CLUSTER on the etcdsnap server (then NAME), or the snapshot name for a standalone restore')
      .argument('[name]', 'with CLUSTER: the snapshot’s stored name, as `etcdsnap snapshot ls CLUSTER` shows it')
      .addOption(new Option('--mode <mode>', 'with CLUSTER: etcd (data only), kubernetes-version (also the version), all (also the cluster config)').choices(RESTORE_MODES))
      .addOption(new Option('--storage <storage>', 'with CLUSTER: restore from this copy (default: the local copy if its node is there, else S3)').choices(['local', 's3']))
      .option('--wait', 'with CLUSTER: follow the phases until the restore ends (exit 0 Finished, 1 Failed)')
      .option('--yes', 'with CLUSTER: do not ask to type the cluster name (required without a terminal)')
      .addOption(new Option('-o, --output <format>', 'with CLUSTER: output format').choices(OUTPUT_FORMATS).default('table'))
      .option('--data-dir <dir>', 'standalone: new data dir for the member (must not exist or be empty)')
      .option('--member-name <name>', 'standalone: this member’s name (etcd --name)')
      .option('--initial-cluster <list>', 'standalone: name=peerURL,… of every member')
      .option('--initial-advertise-peer-urls <urls>', 'standalone: this member’s peer URL(s)')
      .option('--initial-cluster-token <token>', 'standalone: new cluster token (default: a random one; use the same on every member)'),
  ).action(async (first: string, second: string | undefined, opts: RestoreCliOptions) => {
    if (second !== undefined) {
      if (!opts.mode) throw new EtcdsnapError('INVALID_ARGUMENT', 'Missing --mode: etcd, kubernetes-version or all (see the snapshot’s restore modes in `etcdsnap snapshot ls CLUSTER`).');
      await restoreOnServer(first, second, { ...opts, mode: opts.mode });
      return;
    }
    await restoreStandalone(first, opts);
  });
}

async function restoreStandalone(name: string, opts: RestoreCliOptions): Promise<void> {
  const missing = STANDALONE_FLAGS.filter(([k]) => !opts[k]).map(([, flag]) => flag);
  if (missing.length > 0) {
    throw new EtcdsnapError(
      'INVALID_ARGUMENT',
      `A standalone restore needs ${missing.join(', ')} (and --dir or --s3). To restore a whole cluster through the server: etcdsnap snapshot restore CLUSTER NAME --mode etcd|kubernetes-version|all.`,
    );
  }
  const o = opts as RestoreCliOptions & Required<Pick<RestoreCliOptions, 'dataDir' | 'memberName' | 'initialCluster' | 'initialAdvertisePeerUrls'>>;
  const token = o.initialClusterToken ?? `etcdsnap-${randomBytes(6).toString('hex')}`;
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  try {
    const fetched = await restoreFromTarget({
      target: singleTarget(o),
      name,
      dataDir: o.dataDir,
      memberName: o.memberName,
      initialCluster: o.initialCluster,
      initialAdvertisePeerUrls: o.initialAdvertisePeerUrls,
      initialClusterToken: token,
      signal: ac.signal,
    });
    process.stdout.write(
      `restored ${name} into ${o.dataDir} (member ${o.memberName}, cluster token ${token})\n` +
        `  verified with ${fetched.verifiedWith === 'metadata' ? 'the metadata sha256 and etcd’s checksum' : 'etcd’s checksum only (no metadata sidecar)'}\n`,
    );
  } finally {
    process.off('SIGINT', onSignal);
  }
}
