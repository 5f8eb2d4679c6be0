import { createInterface } from 'node:readline/promises';
import type { Cluster, Operation, SnapshotRecord } from '../core/api.js';
import { EtcdsnapError } from '../core/errors.js';
import type { RestoreMode } from '../core/metadata.js';
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

/** Asks the user to type the cluster's name; refuses without a terminal (use --yes). */
async function confirmRestore(cluster: Cluster, name: string, mode: RestoreMode): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new EtcdsnapError('INVALID_ARGUMENT', `Restoring ${name} replaces the etcd data of every member of cluster ${cluster.name}, and there is no terminal to confirm on: pass --yes.`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const changes = mode === 'etcd' ? 'the etcd data' : mode === 'kubernetes-version' ? 'the etcd data and the Kubernetes version' : 'the etcd data, the Kubernetes version and the cluster config';
    const answer = await rl.question(`This stops every etcd member of cluster ${cluster.name} and replaces ${changes} with snapshot ${name}.\nType the cluster name to confirm: `);
    if (answer.trim() !== cluster.name) throw new EtcdsnapError('OPERATION_ABORTED', `"${answer.trim()}" is not "${cluster.name}": nothing was done.`);
  } finally {
    rl.close();
  }
}

/** `snapshot restore CLUSTER NAME --mode …`: a restore operation of the whole cluster. */
export async function restoreOnServer(ref: string, name: string, opts: ServerOptions & { mode: RestoreMode; storage?: 'local' | 's3'; wait?: boolean; yes?: boolean; output: OutputFormat }): Promise<void> {
  await withApi(opts, async (api) => {
    const cluster = await findCluster(api, ref);
    if (!opts.yes) await confirmRestore(cluster, name, opts.mode);
    const op = await api.request<Operation>('POST', `/clusters/${cluster.id}/restores`, { snapshot: name, mode: opts.mode, ...(opts.storage ? { storage: opts.storage } : {}) });
    if (!opts.wait) {
      process.stdout.write(render(opts.output, op, () => `restore ${op.id}: ${describeOperation(op)}\nfollow it: etcdsnap operation watch ${op.id}\n`));
      return;
    }
    // Progress on stdout for people; with -o json|yaml it goes to stderr and stdout gets the final operation.
    const progress = opts.output === 'table' ? process.stdout : process.stderr;
    const done = await watchOperation(api, op.id, (line) => progress.write(`${line}\n`));
    if (opts.output !== 'table') process.stdout.write(render(opts.output, done, () => ''));
    if (done.phase === 'Failed') {
      const f = done.failure;
      process.stderr.write(`error: restore ${op.id} failed${f?.node ? ` on node ${f.node}` : ''}: ${f?.code ?? 'INTERNAL'}: ${f?.message ?? done.message ?? ''} (${f?.rolledBack ? 'rolled back: the cluster is as it was' : 'NOT rolled back'})\n`);
      process.exitCode = 1;
    } else if (opts.output === 'table') process.stdout.write(`${done.message ?? 'restore finished'}\n`);
  });
}
