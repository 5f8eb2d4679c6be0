/**
 * A whole etcdsnap installation from the real CLI, as an operator runs it: `etcdsnap server`
 * and one `etcdsnap agent` per node, each agent supervising its own etcd member (managed mode),
 * all on 127.0.0.1. Used by the end-to-end tests and by the demo of `scripts/run.sh`.
 * Data dirs persist under `dir`, so a stack can be stopped and started again on the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, etcdsnap, type CliResult } from './cli.js';
import { freePort } from './net.js';

export type { CliResult };


export interface StackNode {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  snapshotDir: string;
  process: ChildProcess | undefined;
  /** Extra `etcdsnap agent` flags for this node's next agent start. */
  extraArgs: string[];
}

export interface StackOptions {
  /** Root of every data dir (server, agents); reused when it exists. */
  dir: string;
  nodes?: number;
  /** Fixed ports (demo) instead of free ones: server, then client/peer per node. */
  basePort?: number;
  /** Agent report interval; short in tests. */
  reportInterval?: string;
  /** Environment for every child (e.g. a short server timeout). */
  env?: NodeJS.ProcessEnv;
  /** Echo children's output to this stream (demo); default: log files under `dir`. */
  echo?: NodeJS.WritableStream;
  /** Extra `etcdsnap agent` flags per node index (e.g. hooks); read at every agent start. */
  agentArgs?: (i: number) => string[];
}


export interface Stack {
  url: string;
  adminToken: string;
  caChecksum: string;
  nodes: StackNode[];
  initialCluster: string;
  /** Runs `etcdsnap …` logged in to this server (ETCDSNAP_SERVER/TOKEN, pinned CA via login). */
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  startServer(): Promise<void>;
  /** Pid of the running server process (tests kill -9 it). */
  readonly serverPid: number | undefined;
  stopServer(signal?: NodeJS.Signals): Promise<void>;
  /** Starts node i's agent (needs a cluster's registration token once, via `join`). */
  startAgent(i: number): Promise<void>;
  stopAgent(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Creates the cluster (if missing) and starts every agent with its join command. */
  join(cluster: string, createArgs?: string[]): Promise<void>;
  stop(): Promise<void>;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return etcdsnap(args, env);
}

function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startStack(o: StackOptions): Promise<Stack> {
  const count = o.nodes ?? 3;
  await mkdir(o.dir, { recursive: true });
  const portsFile = join(o.dir, 'ports.json');
  // Ports are part of the data (etcd members advertise them): reuse them on a restart.
  let ports: number[];
  try {
    ports = JSON.parse(await readFile(portsFile, 'utf8')) as number[];
  } catch {
    ports = o.basePort !== undefined ? Array.from({ length: 1 + 2 * count }, (_, i) => (o.basePort as number) + i) : await Promise.all(Array.from({ length: 1 + 2 * count }, () => freePort()));
    await writeFile(portsFile, JSON.stringify(ports));
  }
  const url = `https://127.0.0.1:${ports[0]}`;
  const nodes: StackNode[] = Array.from({ length: count }, (_, i) => ({
    name: `node-${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[1 + 2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 + 2 * i]}`,
    dataDir: join(o.dir, `agent-${i + 1}`),
    snapshotDir: join(o.dir, `agent-${i + 1}`, 'snapshots'),
    process: undefined,
    extraArgs: o.agentArgs?.(i) ?? [],
  }));
  const initialCluster = nodes.map((n) => `${n.name}=${n.peerUrl}`).join(',');
  const cliEnv = { ETCDSNAP_CONFIG: join(o.dir, 'cli-config.json'), ...o.env };
  let server: ChildProcess | undefined;
  const state = { adminToken: '', caChecksum: '', registrationToken: '' };
  const secretsFile = join(o.dir, 'demo-secrets.json');
  try {
    Object.assign(state, JSON.parse(await readFile(secretsFile, 'utf8')));
  } catch {
    // first start
  }

  const output = (name: string): NodeJS.WritableStream => o.echo ?? createWriteStream(join(o.dir, `${name}.log`), { flags: 'a' });

  const startServer = async (): Promise<void> => {
    const child = spawn(process.execPath, [BIN, 'server', '--data-dir', join(o.dir, 'server'), '--listen', `127.0.0.1:${ports[0]}`, '--hostname', '127.0.0.1', '--log-level', 'warn'], {
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    server = child;
    child.stderr?.pipe(output('server'), { end: false });
    let text = '';
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`etcdsnap server exited (${code}) before it was ready; see ${join(o.dir, 'server.log')}`));
      child.once('exit', onExit);
      child.stdout?.on('data', (d: Buffer) => {
        text += d.toString();
        const token = /admin token: (\S+)/.exec(text);
        if (token) state.adminToken = token[1] as string;
        const ready = /etcdsnap server: \S+ \(CA sha256 ([0-9a-f]+)\)/.exec(text);
        if (ready) {
          state.caChecksum = ready[1] as string;
          child.off('exit', onExit);
          resolve();
        }
      });
    });
    await writeFile(secretsFile, JSON.stringify(state), { mode: 0o600 });
    const login = await run(['login', '--server', url, '--token', state.adminToken, '--ca-checksum', state.caChecksum], cliEnv);
    if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
  };

  const startAgent = async (i: number): Promise<void> => {
    const n = nodes[i] as StackNode;
    const args = [
      'agent', '--server', url, '--ca-checksum', state.caChecksum, '--registration-token', state.registrationToken, '--node-name', n.name, '--data-dir', n.dataDir,
      '--etcd-client-url', n.clientUrl, '--etcd-peer-url', n.peerUrl, '--etcd-initial-cluster', initialCluster, '--etcd-initial-cluster-token', 'etcdsnap-stack',
      '--jitter', '0', '--report-interval', o.reportInterval ?? '2s', '--retry-max', '2s', '--log-level', 'warn',
      // Restores: the init node serves the snapshot to the others on any free loopback port.
      '--transfer-listen', '127.0.0.1:0',
      ...n.extraArgs,
    ];
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.stdout?.pipe(output(n.name), { end: false });
    child.stderr?.pipe(output(n.name), { end: false });
    n.process = child;
  };

  const stack: Stack = {
    url,
    get adminToken() {
      return state.adminToken;
    },
    get caChecksum() {
      return state.caChecksum;
    },
    nodes,
    initialCluster,
    cli: (args, env = {}) => run(args, { ...cliEnv, ...env }),
    startServer,
    get serverPid() {
      return server?.exitCode === null && server.signalCode === null ? server.pid : undefined;
    },
    stopServer: (signal) => stopChild(server, signal),
    startAgent,
    stopAgent: (i, signal) => stopChild(nodes[i]?.process, signal),
    async join(cluster, createArgs = []) {
      const ls = await stack.cli(['cluster', 'ls', '-o', 'json']);
      if (!(JSON.parse(ls.stdout) as Array<{ name: string }>).some((c) => c.name === cluster)) {
        const created = await stack.cli(['cluster', 'create', cluster, ...createArgs]);
        if (created.code !== 0) throw new Error(`cluster create failed: ${created.stderr}`);
      }
      const join = await stack.cli(['cluster', 'join-command', cluster]);
      const token = /--registration-token (\S+)/.exec(join.stdout);
      if (!token) throw new Error(`no registration token in: ${join.stdout}${join.stderr}`);
      state.registrationToken = token[1] as string;
      await writeFile(secretsFile, JSON.stringify(state), { mode: 0o600 });
      for (let i = 0; i < nodes.length; i++) await startAgent(i);
    },
    async stop() {
      await Promise.all(nodes.map((n) => stopChild(n.process)));
      await stopChild(server);
    },
  };
  await startServer();
  return stack;
}
