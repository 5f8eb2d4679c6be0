import type { Operation, SnapshotRecord } from '../core/api.js';
import { EtcdsnapError } from '../core/errors.js';
import { findCluster, withApi } from './cluster-command.js';
import { humanAge, humanBytes, render, table, type OutputFormat } from './output.js';
import type { ServerOptions } from './server-config.js';
import { describeOperation, watchOperation } from './watch.js';

/** `snapshot save CLUSTER`: a one-time snapshot operation on every etcd node of the cluster. */
export async function saveOnServer(ref: string, opts: ServerOptions & { name?: string; wait?: boolean; output: OutputFormat }): Promise<void> {
  await withApi(opts, async (api) => {
    const cluster = await findCluster(api, ref);
    const op = await api.request<Operation>('POST', `/clusters/${cluster.id}/snapshots`, opts.name && opts.name !== 'on-demand' ? { name: opts.name } : {});
    if (!opts.wait) {
      process.stdout.write(render(opts.output, op, () => `operation ${op.id}: ${describeOperation(op)}\nfollow it: etcdsnap operation watch ${op.id}\n`));
      return;
    }
    const done = await watchOperation(api, op.id, (line) => process.stdout.write(`${line}\n`));
    if (done.phase === 'Failed') process.exitCode = 1;
  });
}

function recordsTable(list: SnapshotRecord[]): string {
  return table(
    ['STATE', 'NAME', 'NODE', 'LOCATION', 'SIZE', 'AGE', 'MODES'],
    list.map((r) => [r.state, r.name, r.node, r.location, humanBytes(r.size), humanAge(new Date(r.createdAt)), r.restoreModes.join(',')]),
  );
}

export async function listOnServer(ref: string, opts: ServerOptions & { output: OutputFormat }): Promise<void> {
  await withApi(opts, async (api) => {
    const cluster = await findCluster(api, ref);
    const list = await api.get<SnapshotRecord[]>(`/clusters/${cluster.id}/snapshots`);
    process.stdout.write(render(opts.output, list, () => recordsTable(list)));
  });
}

/** Deletes every record (local and S3 copies) of each name. */
export async function deleteOnServer(ref: string, names: string[], opts: ServerOptions): Promise<void> {
  await withApi(opts, async (api) => {
    const cluster = await findCluster(api, ref);
    const list = await api.get<SnapshotRecord[]>(`/clusters/${cluster.id}/snapshots`);
    let failed = 0;
    for (const name of names) {
      const matches = list.filter((r) => r.name === name);
      if (matches.length === 0) {
        failed += 1;
        process.stderr.write(`error: ${new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Cluster ${cluster.name} has no snapshot ${name}.`).toLine()}\n`);
        continue;
      }
      for (const r of matches) {
        await api.request('DELETE', `/clusters/${cluster.id}/snapshots/${encodeURIComponent(r.id)}`);
        process.stdout.write(`deleted ${r.location}\n`);
      }
    }
    if (failed > 0) process.exitCode = failed === names.length ? 1 : 3;
  });
}
