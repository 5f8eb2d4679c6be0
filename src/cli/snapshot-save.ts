import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { CODECS, type Codec } from '../core/codec.js';
import { EtcdsnapError } from '../core/errors.js';
import { ON_DEMAND_BASE } from '../core/names.js';
import { EtcdClient } from '../etcd/client.js';
import { saveSnapshot } from '../snapshot/save.js';
import { addEtcdTlsOptions, etcdTlsFromOptions } from './etcd-tls-options.js';
import { humanBytes, OUTPUT_FORMATS, render, type OutputFormat } from './output.js';
import { saveOnServer } from './snapshot-server.js';
import { targetsFromOptions, type TargetOptions } from './targets.js';

interface SaveCliOptions extends TargetOptions {
  endpoints?: string;
  wait?: boolean;
  server?: string;
  token?: string;
  endpoint?: string;
  name: string;
  node?: string;
  compress?: boolean | string;
  level?: number;
  kubernetesVersion?: string;
  clusterConfig?: string;
  clusterName?: string;
  summary: boolean;
  output: OutputFormat;
}

/** The node name from the host name, made into a valid label. */
export function defaultNodeName(host = hostname()): string {
  const label = host
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 63);
  return label || 'node';
}

function parseEndpoints(value: string): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of list) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new EtcdsnapError('INVALID_ARGUMENT', `Invalid etcd endpoint "${e}": use a URL like http://127.0.0.1:2379.`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EtcdsnapError('INVALID_ARGUMENT', `Invalid etcd endpoint "${e}": use http:// or https://.`);
  }
  if (list.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'No etcd endpoint given: pass --endpoints http://127.0.0.1:2379.');
  return list;
}

function codecOf(compress: boolean | string | undefined): Codec {
  if (compress === undefined || compress === false) return 'none';
  if (compress === true) return 'zstd';
  if ((CODECS as readonly string[]).includes(compress)) return compress as Codec;
  throw new EtcdsnapError('INVALID_ARGUMENT', `Unknown compression "${compress}": use zstd or gzip.`);
}

export function saveAction(cmd: Command): Command {
  return addEtcdTlsOptions(cmd)
    .description(
      'Take a snapshot. With CLUSTER: a one-time snapshot of every etcd node through the etcdsnap server. Without: a standalone snapshot of the etcd at --endpoints (health checked first; etcd’s checksum verified while streaming).',
    )
    .argument('[cluster]', 'cluster on the etcdsnap server (name or id); omit for a standalone save')
    .option('--endpoints <urls>', 'standalone: etcd client URLs, comma separated (default: $ETCDCTL_ENDPOINTS)', process.env.ETCDCTL_ENDPOINTS)
    .option('--wait', 'with CLUSTER: follow the operation’s phases until it ends')
    .option('--server <url>', 'with CLUSTER: etcdsnap server URL (default: $ETCDSNAP_SERVER, else the login config)')
    .option('--token <token>', 'with CLUSTER: API token (default: $ETCDSNAP_TOKEN, else the login config)')
    .option('--endpoint <url>', 'member to stream the snapshot from (default: the first of --endpoints)')
    .option('--name <base>', 'base name of the snapshot', ON_DEMAND_BASE)
    .option('--node <node>', 'node name in the snapshot name (default: this host’s name)')
    .option('--compress [codec]', 'compress the snapshot: zstd (default) or gzip')
    .option('--level <n>', 'compression level (zstd 1-19, gzip 1-9; default 1)', (v: string) => Number(v))
    .option('--kubernetes-version <v>', 'Kubernetes version stored with the snapshot (enables restore modes beyond etcd)')
    .option('--cluster-config <file>', 'cluster config document (YAML) stored with the snapshot')
    .option('--cluster-name <name>', 'cluster name stored in the metadata')
    .option('--no-summary', 'skip the content summary (keys per resource)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .action(async (cluster: string | undefined, opts: SaveCliOptions) => {
      if (cluster !== undefined) {
        await saveOnServer(cluster, opts);
        return;
      }
      if (!opts.endpoints) throw new EtcdsnapError('INVALID_ARGUMENT', 'Name a CLUSTER of the etcdsnap server, or pass --endpoints for a standalone snapshot.');
      const endpoints = parseEndpoints(opts.endpoints);
      const endpoint = opts.endpoint ? (parseEndpoints(opts.endpoint)[0] as string) : (endpoints[0] as string);
      const targets = targetsFromOptions(opts);
      const clusterConfig = opts.clusterConfig === undefined ? null : await readFile(opts.clusterConfig, 'utf8').catch((err: Error) => {
        throw new EtcdsnapError('INVALID_ARGUMENT', `Cannot read --cluster-config ${opts.clusterConfig}: ${err.message}`);
      });
      const client = await EtcdClient.connect({ endpoints, tls: etcdTlsFromOptions(opts) });
      const ac = new AbortController();
      const onSignal = (): void => ac.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await saveSnapshot({
          source: client,
          endpoint,
          targets,
          node: opts.node ?? defaultNodeName(),
          base: opts.name,
          codec: codecOf(opts.compress),
          ...(opts.level !== undefined ? { level: opts.level } : {}),
          kubernetesVersion: opts.kubernetesVersion ?? null,
          clusterConfig,
          cluster: opts.clusterId ? { id: opts.clusterId, name: opts.clusterName ?? opts.clusterId } : null,
          summary: opts.summary,
          signal: ac.signal,
        });
        const m = result.metadata;
        const out = {
          name: result.name,
          stored: result.stored.map((s) => s.location),
          failures: result.failures.map((f) => ({ target: f.target, code: f.error.code, message: f.error.message })),
          metadata: m,
        };
        process.stdout.write(
          render(opts.output, out, () =>
            [
              ...result.stored.map((s) => `saved ${s.location}\n`),
              `  revision ${m.etcd.revision}${m.etcd.revisionExact ? '' : ` (between ${m.etcd.revisionMin} and ${m.etcd.revision})`}, ${m.summary ? `${m.summary.keys} keys, ` : ''}${humanBytes(m.rawSize)} raw, ${humanBytes(m.storedSize)} stored (${m.codec}), sha256 ${m.sha256}\n`,
              ...result.failures.map((f) => `failed ${f.target}: ${f.error.toLine()}\n`),
            ].join(''),
          ),
        );
        if (result.failures.length > 0) process.exitCode = 3;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        client.close();
      }
    });
}
