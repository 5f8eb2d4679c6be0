import { Command, Option } from 'commander';
import { parseAgentConfig, type AgentConfigInput } from '../agent/config.js';
import { EtcdsnapError } from '../core/errors.js';
import { LOG_LEVELS } from '../core/log.js';
import { parseDuration } from '../core/schedule.js';

interface AgentCliOptions {
  server?: string;
  registrationToken?: string;
  caChecksum?: string;
  nodeName?: string;
  dataDir?: string;
  snapshotDir?: string;
  mode: 'managed' | 'external';
  etcdName?: string;
  etcdDataDir?: string;
  etcdClientUrl?: string;
  etcdPeerUrl?: string;
  etcdInitialCluster?: string;
  etcdInitialClusterState?: 'new' | 'existing';
  etcdInitialClusterToken?: string;
  etcdBinary?: string;
  etcdEndpoint?: string;
  etcdStopCommand?: string;
  etcdStartCommand?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  transferListen?: string;
  transferUrl?: string;
  stopHook?: string;
  startHook?: string;
  reportInterval: string;
  jitter: string;
  retryMax?: string;
  logLevel: string;
}

/** `10s`, `1m30s`, `500ms`, or `0`. */
function durationMs(flag: string, value: string): number {
  if (value.trim() === '0') return 0;
  try {
    return parseDuration(value.trim());
  } catch {
    throw new EtcdsnapError('INVALID_CONFIG', `Invalid agent setting ${flag}: "${value}" is not a duration; use e.g. 10s, 500ms or 1m.`, { details: { flag } });
  }
}

function required(flag: string, value: string | undefined, env?: string): string {
  if (value === undefined || value === '') {
    throw new EtcdsnapError('INVALID_CONFIG', `Missing agent setting ${flag}${env ? ` (or ${env})` : ''}.`, { details: { flag } });
  }
  return value;
}

/** An empty value (e.g. `ETCDCTL_CERT=` in the environment) counts as not given, as with etcdctl. */
function file(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Flags → the agent's config input (validated by parseAgentConfig). Exported for tests. */
export function agentConfigFromOptions(o: AgentCliOptions): AgentConfigInput {
  return {
    server: required('--server', o.server, 'ETCDSNAP_SERVER'),
    registrationToken: required('--registration-token', o.registrationToken, 'ETCDSNAP_REGISTRATION_TOKEN'),
    nodeName: required('--node-name', o.nodeName),
    dataDir: required('--data-dir', o.dataDir),
    mode: o.mode,
    caChecksum: o.caChecksum,
    snapshotDir: o.snapshotDir,
    etcdName: o.etcdName,
    etcdDataDir: o.etcdDataDir,
    etcdClientUrl: o.etcdClientUrl,
    etcdPeerUrl: o.etcdPeerUrl,
    etcdInitialCluster: o.etcdInitialCluster,
    etcdInitialClusterState: o.etcdInitialClusterState,
    etcdInitialClusterToken: o.etcdInitialClusterToken,
    etcdBinary: o.etcdBinary,
    etcdEndpoints: o.etcdEndpoint
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    etcdStopCommand: o.etcdStopCommand,
    etcdStartCommand: o.etcdStartCommand,
    etcdCacert: file(o.etcdCacert),
    etcdCert: file(o.etcdCert),
    etcdKey: file(o.etcdKey),
    transferListen: o.transferListen,
    transferUrl: o.transferUrl,
    stopHook: o.stopHook,
    startHook: o.startHook,
    reportIntervalMs: durationMs('--report-interval', o.reportInterval),
    jitterMs: durationMs('--jitter', o.jitter),
    ...(o.retryMax !== undefined ? { retryMaxMs: durationMs('--retry-max', o.retryMax) } : {}),
    logLevel: o.logLevel as AgentConfigInput['logLevel'],
  };
}

/** Runs the agent until SIGINT/SIGTERM (exit 0) or until it gives up (exit 1). */
async function runAgent(o: AgentCliOptions): Promise<void> {
  // Loaded here: the agent's modules are not for every CLI command.
  const { Agent } = await import('../agent/agent.js');
  const agent = new Agent(parseAgentConfig(agentConfigFromOptions(o)));
  let onSignal: () => void = () => undefined;
  const signalled = new Promise<string>((resolve) => {
    onSignal = () => resolve('signal');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  try {
    await agent.start();
    await Promise.race([signalled, agent.fatal]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await agent.stop();
  }
}

/** `etcdsnap agent`: the node agent (see docs/agent.md). */
export function agentCommand(): Command {
  return new Command('agent')
    .description('Run the node agent: supervise the local etcd member, take scheduled and requested snapshots, report to the etcdsnap server.')
    .option('--server <url>', 'etcdsnap server URL', process.env.ETCDSNAP_SERVER)
    .option('--registration-token <token>', 'the cluster’s registration token (env ETCDSNAP_REGISTRATION_TOKEN)', process.env.ETCDSNAP_REGISTRATION_TOKEN)
    .option('--ca-checksum <sha256>', 'sha256 of the server CA certificate (DER): trust only that CA')
    .option('--node-name <name>', 'this node’s name (in snapshot names and reports)')
    .option('--data-dir <dir>', 'agent state: node token, last plan, queued reports')
    .option('--snapshot-dir <dir>', 'local snapshot directory (default <data-dir>/snapshots)')
    .addOption(new Option('--mode <mode>', 'managed: the agent runs etcd; external: it connects to a running etcd').choices(['managed', 'external']).default('managed'))
    .option('--etcd-name <name>', 'etcd member name (default: the node name)')
    .option('--etcd-data-dir <dir>', 'member data dir (managed: default <data-dir>/etcd; external: needed by restores)')
    .option('--etcd-client-url <url>', 'client URL the member listens on (default http://127.0.0.1:2379)')
    .option('--etcd-peer-url <url>', 'peer URL of the member (default http://127.0.0.1:2380)')
    .option('--etcd-initial-cluster <list>', 'managed: name=peerURL,… of every member (default: this member alone)')
    .addOption(new Option('--etcd-initial-cluster-state <state>', 'managed: new or existing (default new)').choices(['new', 'existing']))
    .option('--etcd-initial-cluster-token <token>', 'managed: initial cluster token (default etcd-cluster)')
    .option('--etcd-binary <path>', 'managed: etcd binary (default etcd on PATH)')
    .option('--etcd-endpoint <urls>', 'external: client URL(s) of the local member, comma separated (default --etcd-client-url)')
    .option('--etcd-stop-command <cmd>', 'external: shell command that stops etcd (restores)')
    .option('--etcd-start-command <cmd>', 'external: shell command that starts etcd (restores)')
    .addOption(new Option('--etcd-cacert <file>', "etcd TLS: PEM file of the CA that signed etcd's server certificate (default: the system CAs)").env('ETCDCTL_CACERT'))
    .addOption(new Option('--etcd-cert <file>', 'etcd TLS: PEM client certificate, for etcd with --client-cert-auth (with --etcd-key)').env('ETCDCTL_CERT'))
    .addOption(new Option('--etcd-key <file>', 'etcd TLS: PEM private key of --etcd-cert').env('ETCDCTL_KEY'))
    .option('--transfer-listen <host:port>', 'restores: where this node serves a staged snapshot to the other nodes, HTTPS, only during a restore (default 0.0.0.0:9280; port 0: any)')
    .option('--transfer-url <url>', 'restores: URL the other nodes download from (default https://<host of --etcd-peer-url>:<port>)')
    .option('--stop-hook <cmd>', 'restores: shell command run before the etcd member is stopped (e.g. stop kube-apiserver)')
    .option('--start-hook <cmd>', 'restores: shell command run once the etcd member is back (restored or rolled back)')
    .option('--report-interval <duration>', 'heartbeat report period', '10s')
    .option('--jitter <duration>', 'random delay added to each recurring snapshot (0 for none)', '5s')
    .option('--retry-max <duration>', 'longest wait between retries while the server is unreachable (default 30s)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .action(async (opts: AgentCliOptions) => runAgent(opts));
}
