import type { Command } from 'commander';
import { allowedRestoreModes } from '../core/metadata.js';
import { snapshotFileStatus } from '../etcd/restore.js';
import { LocalTarget } from '../storage/local.js';
import { humanBytes, render, table, type OutputFormat } from './output.js';
import { singleTarget, type TargetOptions } from './targets.js';

const UNKNOWN_WITHOUT_METADATA = ['kubernetesVersion', 'clusterConfig', 'cluster', 'node', 'content summary', 'sha256 of the stored bytes'];

export function inspectAction(cmd: Command): Command {
  return cmd
    .description('Show a snapshot’s metadata and content summary (keys per resource). A plain etcdctl file is inspected with etcdctl snapshot status.')
    .argument('<name>', 'snapshot name')
    .action(async (name: string, opts: TargetOptions & { output: OutputFormat }) => {
      const target = singleTarget(opts);
      const snap = await target.stat(name);
      if (snap.metadata) {
        const m = snap.metadata;
        const data = { location: snap.location, size: snap.size, restoreModes: allowedRestoreModes(m), metadata: m };
        process.stdout.write(
          render(opts.output, data, () => {
            const head = table(
              ['FIELD', 'VALUE'],
              [
                ['name', m.name],
                ['location', snap.location],
                ['node', m.node],
                ['created', m.createdAt],
                ['kind', m.kind],
                ['kubernetes version', m.kubernetesVersion ?? '-'],
                ['cluster config', m.clusterConfig === null ? '-' : `${m.clusterConfig.length} bytes`],
                ['etcd version', m.etcd.version],
                ['revision', m.etcd.revisionExact ? String(m.etcd.revision) : `${m.etcd.revisionMin}..${m.etcd.revision}`],
                ['members', String(m.etcd.memberCount)],
                ['size', `${humanBytes(m.rawSize)} raw, ${humanBytes(m.storedSize)} stored (${m.codec})`],
                ['sha256', m.sha256],
                ['restore modes', allowedRestoreModes(m).join(', ')],
              ],
            );
            const summary = m.summary
              ? `\n${table(['RESOURCE', 'KEYS'], Object.entries(m.summary.byResource).map(([r, n]) => [r, String(n)]))}total ${m.summary.keys} keys at revision ${m.summary.revision}\n`
              : '\nno content summary\n';
            return head + summary;
          }),
        );
        return;
      }
      // A plain file (e.g. from etcdctl snapshot save): ask etcdctl what it can tell.
      const status = target instanceof LocalTarget && snap.name === name ? await snapshotFileStatus(target.dataPath(name)) : undefined;
      const data = { location: snap.location, size: snap.size, metadata: null, etcdctlStatus: status ?? null, unknown: UNKNOWN_WITHOUT_METADATA, restoreModes: ['etcd'] };
      process.stdout.write(
        render(opts.output, data, () =>
          [
            `${snap.location}: ${humanBytes(snap.size)}, no metadata sidecar.\n`,
            status ? `etcdctl snapshot status: revision ${status.revision}, ${status.totalKey} keys (all revisions), hash ${status.hash}\n` : '',
            `Unknown without metadata: ${UNKNOWN_WITHOUT_METADATA.join(', ')}. Only restore mode "etcd" is possible; etcd's own checksum is verified on restore.\n`,
          ].join(''),
        ),
      );
    });
}
