import { Command, Option } from 'commander';
import type { Operation } from '../core/api.js';
import { withApi, findCluster } from './cluster-command.js';
import { humanAge, OUTPUT_FORMATS, render, table, type OutputFormat } from './output.js';
import { addServerOptions, type ServerOptions } from './server-config.js';
import { describeOperation, watchOperation } from './watch.js';

export function operationCommand(): Command {
  const cmd = new Command('operation').alias('op').description('One-time snapshots and restores, with their phases.');

  addServerOptions(cmd.command('ls').alias('list').description('List operations, newest first.'))
    .argument('[cluster]', 'only this cluster (name or id); same as --cluster')
    .option('--cluster <cluster>', 'only this cluster (name or id)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .action(async (positional: string | undefined, opts: ServerOptions & { cluster?: string; output: OutputFormat }) =>
      withApi(opts, async (api) => {
        const ref = positional ?? opts.cluster;
        const query = ref ? `?clusterId=${encodeURIComponent((await findCluster(api, ref)).id)}` : '';
        const list = await api.get<Operation[]>(`/operations${query}`);
        process.stdout.write(
          render(opts.output, list, () =>
            table(
              ['ID', 'KIND', 'PHASE', 'AGE', 'MESSAGE'],
              list.map((o) => [o.id, o.kind, o.phase, humanAge(new Date(o.createdAt)), o.failure ? `${o.failure.node ?? ''} ${o.failure.code}: ${o.failure.message}`.trim() : (o.message ?? '')]),
            ),
          ),
        );
      }),
    );

  addServerOptions(cmd.command('show').description('Show an operation: phase, per-node steps, history.').argument('<id>', 'operation id'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('yaml'))
    .action(async (id: string, opts: ServerOptions & { output: OutputFormat }) =>
      withApi(opts, async (api) => {
        const op = await api.get<Operation>(`/operations/${encodeURIComponent(id)}`);
        process.stdout.write(
          render(opts.output, op, () =>
            [`${op.kind} ${op.id}: ${describeOperation(op)}\n`, table(['AT', 'PHASE', 'MESSAGE'], op.history.map((h) => [h.at, h.phase, h.message]))].join('\n'),
          ),
        );
      }),
    );

  addServerOptions(cmd.command('watch').description('Follow an operation until it is Finished or Failed (exit 0 / 1).').argument('<id>', 'operation id')).action(
    async (id: string, opts: ServerOptions) =>
      withApi(opts, async (api) => {
        const op = await watchOperation(api, id, (line) => process.stdout.write(`${line}\n`));
        if (op.phase === 'Failed') process.exitCode = 1;
      }),
  );
  return cmd;
}
