import { Command, Option } from 'commander';
import { allowedRestoreModes } from '../core/metadata.js';
import { prune, DEFAULT_RETENTION } from '../snapshot/retention.js';
import type { StoredSnapshot } from '../storage/target.js';
import { humanAge, humanBytes, OUTPUT_FORMATS, render, table, type OutputFormat } from './output.js';
import { inspectAction } from './snapshot-inspect.js';
import { restoreAction } from './snapshot-restore.js';
import { saveAction } from './snapshot-save.js';
import { addServerOptions, type ServerOptions } from './server-config.js';
import { deleteOnServer, listOnServer } from './snapshot-server.js';
import { addTargetOptions, singleTarget, type TargetOptions } from './targets.js';
import { EtcdsnapError } from '../core/errors.js';

const outputOption = (): Option => new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table');

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a whole number of at least 1, got "${value}"`);
  return n;
}

export function snapshotRow(s: StoredSnapshot): Record<string, unknown> {
  const m = s.metadata;
  return {
    name: s.name,
    node: m?.node ?? null,
    location: s.location,
    size: s.size,
    createdAt: m?.createdAt ?? s.modifiedAt.toISOString(),
    kind: m?.kind ?? null,
    codec: m?.codec ?? null,
    kubernetesVersion: m?.kubernetesVersion ?? null,
    revision: m?.etcd.revision ?? null,
    restoreModes: allowedRestoreModes(m),
    hasMetadata: m !== undefined,
  };
}

export function snapshotCommand(): Command {
  const snap = new Command('snapshot').description('Take, list, inspect, delete, prune and restore etcd snapshots: through the server (with a CLUSTER) or standalone (--endpoints, --dir, --s3).');

  saveAction(addTargetOptions(snap.command('save')));

  addServerOptions(addTargetOptions(snap.command('ls').alias('list').description('List snapshots, newest first: a cluster’s records on the server, or those at --dir / --s3.')))
    .argument('[cluster]', 'cluster on the etcdsnap server (name or id); omit to list --dir or --s3')
    .addOption(outputOption())
    .action(async (cluster: string | undefined, opts: TargetOptions & ServerOptions & { output: OutputFormat }) => {
      if (cluster !== undefined) return listOnServer(cluster, opts);
      const list = await singleTarget(opts).list();
      const rows = list.map(snapshotRow);
      process.stdout.write(
        render(opts.output, rows, () =>
          table(
            ['NAME', 'NODE', 'SIZE', 'AGE', 'KUBERNETES', 'MODES', 'LOCATION'],
            list.map((s) => [
              s.name,
              s.metadata?.node ?? '?',
              humanBytes(s.size),
              humanAge(s.metadata ? new Date(s.metadata.createdAt) : s.modifiedAt),
              s.metadata?.kubernetesVersion ?? '-',
              allowedRestoreModes(s.metadata).join(','),
              s.location,
            ]),
          ),
        ),
      );
    });

  inspectAction(addTargetOptions(snap.command('inspect')).addOption(outputOption().default('yaml')));

  addServerOptions(addTargetOptions(snap.command('delete').alias('rm').description('Delete snapshots and their metadata: `delete CLUSTER NAME…` through the server, or `delete NAME… --dir/--s3`.')))
    .argument('<names...>', 'CLUSTER then snapshot names (server), or snapshot names (with --dir or --s3)')
    .action(async (args: string[], opts: TargetOptions & ServerOptions) => {
      if (!opts.dir && !opts.s3) {
        const [cluster, ...names] = args;
        if (!cluster || names.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'Usage: etcdsnap snapshot delete CLUSTER NAME… (server), or NAME… --dir DIR.');
        return deleteOnServer(cluster, names, opts);
      }
      const names = args;
      const target = singleTarget(opts);
      let failed = 0;
      for (const name of names) {
        try {
          await target.delete(name);
          process.stdout.write(`deleted ${target.location(name)}\n`);
        } catch (err) {
          failed += 1;
          process.stderr.write(`error: ${(err as { toLine?: () => string }).toLine?.() ?? String(err)}\n`);
        }
      }
      if (failed > 0) process.exitCode = failed === names.length ? 1 : 3;
    });

  addTargetOptions(snap.command('prune').description('Delete all but the newest N snapshots of one base name, per node.'))
    .option('--name <base>', 'base name of the snapshots to prune (etcd-snapshot, on-demand, or your --name)', 'etcd-snapshot')
    .option('--retention <n>', 'how many to keep per node', positiveInt, DEFAULT_RETENTION)
    .option('--node <node>', 'only prune this node’s snapshots')
    .addOption(new Option('--scope <scope>', 'count per node or across the cluster').choices(['node', 'cluster']).default('node'))
    .addOption(outputOption())
    .action(async (opts: TargetOptions & { name: string; retention: number; node?: string; scope: 'node' | 'cluster'; output: OutputFormat }) => {
      const result = await prune(singleTarget(opts), { base: opts.name, keep: opts.retention, scope: opts.scope, ...(opts.node ? { node: opts.node } : {}) });
      process.stdout.write(
        render(opts.output, result, () =>
          [...result.deleted.map((n) => `deleted ${n}\n`), ...result.failures.map((f) => `failed ${f.name}: ${f.code}: ${f.error}\n`), `kept ${result.kept}\n`].join(''),
        ),
      );
      if (result.failures.length > 0) process.exitCode = result.deleted.length > 0 ? 3 : 1;
    });

  restoreAction(addTargetOptions(snap.command('restore')));
  return snap;
}
