import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { Cluster, ClusterNode, JoinInfo } from '../core/api.js';
import { EtcdsnapError } from '../core/errors.js';
import { CODECS } from '../core/codec.js';
import type { ApiClient } from './api-client.js';
import { humanAge, OUTPUT_FORMATS, render, table, type OutputFormat } from './output.js';
import { addS3Options, s3ConfigFromOptions, type S3CliOptions } from './s3-options.js';
import { addServerOptions, connect, type ServerOptions } from './server-config.js';

/** A cluster by id or name. */
export async function findCluster(api: ApiClient, ref: string): Promise<Cluster> {
  const all = await api.get<Cluster[]>('/clusters');
  const found = all.find((c) => c.id === ref) ?? all.find((c) => c.name === ref);
  if (!found) throw new EtcdsnapError('INVALID_ARGUMENT', `No cluster "${ref}": list them with "etcdsnap cluster ls".`);
  return found;
}

interface ClusterFlags extends S3CliOptions, ServerOptions {
  kubernetesVersion?: string;
  clusterConfig?: string;
  schedule?: string;
  retention?: string;
  compression?: string;
  enabled?: boolean;
  removeS3?: boolean;
  output: OutputFormat;
}

function addClusterFlags(cmd: Command): Command {
  addServerOptions(cmd)
    .option('--kubernetes-version <v>', 'Kubernetes version the cluster runs')
    .option('--cluster-config <file>', 'cluster config document (YAML), stored as given')
    .option('--schedule <expr>', 'recurring snapshot schedule: cron (UTC) or @every 12h (default 0 */5 * * *)')
    .option('--retention <n>', 'local snapshots kept per node (default 5)')
    .addOption(new Option('--compression <codec>', 'codec of stored snapshots (default zstd)').choices(CODECS))
    .option('--enabled', 'turn recurring snapshots on (the default for a new cluster)')
    .option('--no-enabled', 'turn recurring snapshots off')
    .option('--remove-s3', 'remove the S3 target (local snapshots only)');
  addS3Options(cmd);
  return cmd.addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'));
}

async function bodyFrom(opts: ClusterFlags): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  if (opts.kubernetesVersion !== undefined) body.kubernetesVersion = opts.kubernetesVersion;
  if (opts.clusterConfig !== undefined) body.clusterConfig = await readFile(opts.clusterConfig, 'utf8');
  const policy: Record<string, unknown> = {};
  if (opts.schedule !== undefined) policy.schedule = opts.schedule;
  if (opts.retention !== undefined) policy.retention = Number(opts.retention);
  if (opts.compression !== undefined) policy.compression = opts.compression;
  if (opts.enabled !== undefined) policy.enabled = opts.enabled;
  if (opts.removeS3) policy.s3 = null;
  else {
    const s3 = s3ConfigFromOptions(opts);
    // A parsed config serialises redacted (toJSON): send its plain fields, secrets included.
    if (s3) policy.s3 = { ...s3 };
  }
  if (Object.keys(policy).length > 0) body.policy = policy;
  return body;
}

function clusterTable(list: Cluster[]): string {
  return table(
    ['NAME', 'KUBERNETES', 'NODES', 'LAST SNAPSHOT', 'SCHEDULE', 'TARGET', 'OPERATION'],
    list.map((c) => [
      c.name,
      c.kubernetesVersion ?? '-',
      `${c.nodes.healthy}/${c.nodes.total}`,
      c.lastSuccessfulSnapshot ? `${humanAge(new Date(c.lastSuccessfulSnapshot.createdAt))} ago` : 'never',
      c.policy.enabled ? c.policy.schedule : 'off',
      c.policy.s3 ? `local+s3://${c.policy.s3.bucket}/${c.policy.s3.folder}` : 'local',
      c.runningOperationId ?? '-',
    ]),
  );
}

async function withApi<T>(opts: ServerOptions, fn: (api: ApiClient) => Promise<T>): Promise<T> {
  const api = await connect(opts);
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

export function clusterCommand(): Command {
  const cmd = new Command('cluster').description('Manage clusters on the etcdsnap server.');

  addClusterFlags(cmd.command('create').description('Create a cluster with its snapshot policy.').argument('<name>', 'cluster name')).action(async (name: string, opts: ClusterFlags) =>
    withApi(opts, async (api) => {
      const created = await api.request<Cluster>('POST', '/clusters', { name, ...(await bodyFrom(opts)) });
      process.stdout.write(render(opts.output, created, () => `created cluster ${created.name} (${created.id})\nnext: etcdsnap cluster join-command ${created.name}\n`));
    }),
  );

  addServerOptions(cmd.command('ls').alias('list').description('List clusters.'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .action(async (opts: ServerOptions & { output: OutputFormat }) =>
      withApi(opts, async (api) => {
        const list = await api.get<Cluster[]>('/clusters');
        process.stdout.write(render(opts.output, list, () => clusterTable(list)));
      }),
    );

  addServerOptions(cmd.command('show').description('Show a cluster and its nodes.').argument('<cluster>', 'name or id'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('yaml'))
    .action(async (ref: string, opts: ServerOptions & { output: OutputFormat }) =>
      withApi(opts, async (api) => {
        const c = await findCluster(api, ref);
        const nodes = await api.get<ClusterNode[]>(`/clusters/${c.id}/nodes`);
        const data = { ...c, nodeList: nodes };
        process.stdout.write(
          render(opts.output, data, () =>
            clusterTable([c]) +
              '\n' +
              table(
                ['NODE', 'MEMBER', 'STATE', 'ETCD', 'LAST SEEN'],
                nodes.map((n) => [n.name, n.member.name, n.state, n.etcdVersion ?? '-', n.lastSeenAt ? `${humanAge(new Date(n.lastSeenAt))} ago` : 'never']),
              ),
          ),
        );
      }),
    );

  addClusterFlags(cmd.command('edit').description('Change a cluster’s version, config or snapshot policy.').argument('<cluster>', 'name or id')).action(async (ref: string, opts: ClusterFlags) =>
    withApi(opts, async (api) => {
      const c = await findCluster(api, ref);
      const body = await bodyFrom(opts);
      if (Object.keys(body).length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'Nothing to change: pass at least one setting (see --help).');
      const updated = await api.request<Cluster>('PATCH', `/clusters/${c.id}`, body);
      process.stdout.write(render(opts.output, updated, () => `updated cluster ${updated.name}\n`));
    }),
  );

  addServerOptions(cmd.command('delete').alias('rm').description('Delete a cluster from the server (snapshots on nodes and in S3 are kept).').argument('<cluster>', 'name or id'))
    .option('--yes', 'do not ask (required when not on a terminal)')
    .action(async (ref: string, opts: ServerOptions & { yes?: boolean }) =>
      withApi(opts, async (api) => {
        const c = await findCluster(api, ref);
        if (!opts.yes) throw new EtcdsnapError('INVALID_ARGUMENT', `Deleting cluster ${c.name} removes its records and agents' registrations: run again with --yes to confirm.`);
        await api.request('DELETE', `/clusters/${c.id}`);
        process.stdout.write(`deleted cluster ${c.name}\n`);
      }),
    );

  addServerOptions(cmd.command('join-command').description('Print the command that starts an agent on a node of this cluster.').argument('<cluster>', 'name or id')).action(
    async (ref: string, opts: ServerOptions) =>
      withApi(opts, async (api) => {
        const c = await findCluster(api, ref);
        const join = await api.get<JoinInfo>(`/clusters/${c.id}/join`);
        process.stdout.write(`${join.command}\n`);
      }),
  );
  return cmd;
}

export { withApi };
