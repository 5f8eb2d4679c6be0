/**
 * Nodes for restore tests without a control plane: each has what an agent gives a task (its
 * config, state file, managed etcd member of one shared cluster, snapshot dir, transfer
 * endpoint on 127.0.0.1:0) and runs restore tasks through the real handlers with a real
 * TaskContext. Members still running when the process exits are killed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAgentConfig, type AgentConfig, type AgentConfigInput } from '../../src/agent/config.js';
import { ExternalMember, ManagedMember, type LocalMember } from '../../src/agent/member.js';
import { SnapshotWorker } from '../../src/agent/snapshots.js';
import { StateStore } from '../../src/agent/state.js';
import { RESTORE_HANDLERS } from '../../src/agent/tasks/restore.js';
import type { TaskContext, TaskHandler, TaskResult } from '../../src/agent/tasks/types.js';
import { TransferService } from '../../src/agent/transfer.js';
import { createLogger, type Logger } from '../../src/core/log.js';
import type { Codec } from '../../src/core/codec.js';
import { PROTOCOL_VERSION, type NodePlan, type RestorePrepareResult, type Task } from '../../src/core/plans.js';
import { waitHealthy } from '../../src/etcd/wait.js';
import { LocalTarget } from '../../src/storage/local.js';
import { Etcd3 } from 'etcd3';
import { dumpAll } from './dump.js';
import { freePort, tempDir } from './net.js';

const live = new Set<ManagedMember>();
/** Pid files of external members (started by a shell command, in the background). */
const externalPids = new Set<string>();
let netInstalled = false;
function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  process.on('exit', () => {
    for (const m of live) {
      try {
        if (m.process) process.kill(m.process.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const f of externalPids) {
      try {
        process.kill(Number(readFileSync(f, 'utf8').trim()), 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

/**
 * External mode as on a distribution that runs etcd itself: shell commands the agent calls to
 * start etcd in the background (pid in a file) and to stop it (and wait until it is gone).
 */
function externalCommands(o: { dir: string; name: string; dataDir: string; client: string; peer: string; initialCluster: string; token: string }): { start: string; stop: string; pidFile: string } {
  const pidFile = join(o.dir, 'etcd.pid');
  const flags = [
    `--name=${o.name}`,
    `--data-dir=${o.dataDir}`,
    `--listen-client-urls=${o.client}`,
    `--advertise-client-urls=${o.client}`,
    `--listen-peer-urls=${o.peer}`,
    `--initial-advertise-peer-urls=${o.peer}`,
    `--initial-cluster=${o.initialCluster}`,
    `--initial-cluster-token=${o.token}`,
    '--initial-cluster-state=new',
  ].join(' ');
  return {
    pidFile,
    start: `mkdir -p ${o.dir} && (nohup etcd ${flags} >> ${join(o.dir, 'etcd-external.log')} 2>&1 & echo $! > ${pidFile})`,
    stop: `pid=$(cat ${pidFile} 2>/dev/null); if [ -n "$pid" ]; then kill $pid 2>/dev/null; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; fi; true`,
  };
}

export interface RestoreNode {
  name: string;
  config: AgentConfig;
  state: StateStore;
  member: LocalMember;
  local: LocalTarget;
  snapshots: SnapshotWorker;
  transfer: TransferService;
  /** Progress messages of the tasks run, in order. */
  progress: string[];
  context(plan?: NodePlan): TaskContext;
  /** Runs a restore task with the real handler. */
  run(task: Task): Promise<TaskResult>;
  /** Stops the member and the endpoint and flushes the state (as an agent that stopped). */
  release(): Promise<void>;
}

export interface RestoreNodes {
  root: string;
  nodes: RestoreNode[];
  endpoints: string[];
  /** `name=peerUrl,…` of every node. */
  initialCluster: string;
  plan: NodePlan;
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Runs etcd requests against the cluster. */
  kv(ops: (etcd: Etcd3) => Promise<unknown>): Promise<void>;
  /** Every member's keys and values, asserted equal on all of them. */
  dumps(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export const restoreTestLogger = (): Logger => createLogger(process.env.AGENT_TEST_LOG ?? 'silent', 'restore-test');

/**
 * n nodes with members of one new cluster, started and healthy: managed by default; with
 * `external`, etcd is started and stopped by shell commands (--etcd-start/stop-command).
 */
export async function restoreNodes(
  n: number,
  extra: Partial<AgentConfigInput> | ((name: string) => Partial<AgentConfigInput>) = {},
  server = 'http://127.0.0.1:9',
  options: { external?: boolean } = {},
): Promise<RestoreNodes> {
  installSafetyNet();
  const root = await tempDir('etcdsnap-restore-');
  const names = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  const ports: Array<{ client: number; peer: number }> = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initialCluster = names.map((name, i) => `${name}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const logger = restoreTestLogger();
  const plan: NodePlan = {
    apiVersion: PROTOCOL_VERSION,
    planId: 'p1',
    node: names[0]!,
    cluster: { id: 'c-restore', name: 'restore-test' },
    kubernetesVersion: 'v1.30.4+rke2r1',
    clusterConfig: 'cni: canal\n',
    policy: { enabled: false, schedule: '0 */5 * * *', retention: 5, compression: 'zstd', s3: null },
    tasks: [],
  };
  const signal = new AbortController().signal;
  const nodes: RestoreNode[] = [];
  for (const [i, name] of names.entries()) {
    const client = `http://127.0.0.1:${ports[i]!.client}`;
    const peer = `http://127.0.0.1:${ports[i]!.peer}`;
    const token = `restore-test-${root.slice(-6).toLowerCase()}`;
    const ext = options.external ? externalCommands({ dir: join(root, `${name}-etcd-run`), name, dataDir: join(root, `${name}-etcd`), client, peer, initialCluster, token }) : undefined;
    if (ext) externalPids.add(ext.pidFile);
    const config = parseAgentConfig({
      server,
      registrationToken: 'r'.repeat(32),
      nodeName: name,
      dataDir: join(root, name),
      etcdClientUrl: client,
      etcdPeerUrl: peer,
      ...(ext
        ? { mode: 'external' as const, etcdDataDir: join(root, `${name}-etcd`), etcdStartCommand: ext.start, etcdStopCommand: ext.stop }
        : { etcdInitialCluster: initialCluster, etcdInitialClusterToken: token }),
      transferListen: '127.0.0.1:0',
      retryInitialMs: 100,
      retryMaxMs: 1000,
      jitterMs: 0,
      ...(typeof extra === 'function' ? extra(name) : extra),
    });
    const state = await StateStore.open(config.dataDir, { server: config.server, node: name });
    const member: LocalMember = ext ? new ExternalMember(config) : new ManagedMember(config, logger);
    if (member instanceof ManagedMember) live.add(member);
    const local = new LocalTarget({ dir: config.snapshotDir });
    const snapshots = new SnapshotWorker({ node: name, local, member, logger });
    const transfer = new TransferService(config, state, logger);
    const progress: string[] = [];
    const node: RestoreNode = {
      name,
      config,
      state,
      member,
      local,
      snapshots,
      transfer,
      progress,
      context: (p = plan) => ({
        plan: { ...p, node: name },
        node: name,
        local,
        member,
        snapshots,
        logger,
        signal,
        record: () => Promise.resolve(),
        config,
        state,
        transfer,
        progress: (m) => progress.push(m),
      }),
      run: (task) => (RESTORE_HANDLERS[task.kind as keyof typeof RESTORE_HANDLERS] as TaskHandler)(task, node.context()),
      async release() {
        await member.stop();
        await transfer.close();
        snapshots.close();
        await state.flush();
      },
    };
    nodes.push(node);
  }
  await Promise.all(nodes.map((x) => mkdir(x.config.snapshotDir, { recursive: true })));
  await Promise.all(nodes.map((x) => x.member.start()));
  const endpoints = nodes.map((x) => x.config.etcdClientUrl);
  const out: RestoreNodes = {
    root,
    nodes,
    endpoints,
    initialCluster,
    plan,
    async waitHealthy(timeoutMs = 30_000) {
      await waitHealthy(endpoints, timeoutMs);
    },
    async kv(ops) {
      const etcd = new Etcd3({ hosts: endpoints });
      try {
        await ops(etcd);
      } finally {
        etcd.close();
      }
    },
    async dumps() {
      const ds = await Promise.all(endpoints.map((e) => dumpAll(e)));
      for (const d of ds.slice(1)) assert.deepEqual(d.kv, ds[0]?.kv, 'every member has the same keys and values');
      return ds[0]?.kv as Map<string, string>;
    },
    async close() {
      await Promise.all(nodes.map((x) => x.release()));
      for (const x of nodes) if (x.member instanceof ManagedMember) live.delete(x.member);
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await out.waitHealthy();
  } catch (err) {
    await out.close();
    throw err;
  }
  return out;
}

export interface RestoreTaskOptions {
  /** The restore's transfer token. */
  token: string;
  /** The snapshot restored (read when a prepare task is built). */
  snapshot: () => { name: string; sha256: string };
  /** Version and config restore-finish carries (the restored ones). */
  finish?: { kubernetesVersion: string | null; clusterConfig: string | null };
  /** Version and config restore-rollback carries (the cluster's before the restore). */
  rollback?: { kubernetesVersion: string | null; clusterConfig: string | null };
  /** Let peers take the stored bytes when the init node serves them (default true). */
  stored?: boolean;
}

/** The restore tasks of operation `op` as the server would send them to these nodes. */
export function restoreTasks(nodes: () => RestoreNodes, o: RestoreTaskOptions) {
  const none = { kubernetesVersion: null, clusterConfig: null };
  return (op: string) => ({
    prepare: (): Task => ({ id: `${op}-prepare`, kind: 'restore-prepare', operationId: op, source: { storage: 'local', name: o.snapshot().name, sha256: o.snapshot().sha256 }, transferToken: o.token }),
    fetch: (p: RestorePrepareResult): Task => ({
      id: `${op}-fetch`,
      kind: 'restore-fetch',
      operationId: op,
      source: { url: p.transferUrl, certSha256: p.transferCertSha256, token: o.token, node: nodes().nodes[0]?.name as string },
      rawSha256: p.rawSha256,
      rawSize: p.rawSize,
      // The init node serves the zstd bytes of a local snapshot too: peers take those.
      ...(o.stored !== false && p.storedSha256 ? { stored: { codec: p.storedCodec as Codec, sha256: p.storedSha256, size: p.storedSize as number } } : {}),
    }),
    stop: (): Task => ({ id: `${op}-stop`, kind: 'restore-stop', operationId: op }),
    apply: (n: RestoreNode, p: RestorePrepareResult): Task => ({
      id: `${op}-apply`,
      kind: 'restore-apply',
      operationId: op,
      memberName: n.name,
      peerUrl: n.config.etcdPeerUrl,
      initialCluster: nodes().initialCluster,
      initialClusterToken: `restored-${op}`,
      rawSha256: p.rawSha256,
    }),
    start: (p: RestorePrepareResult): Task => ({ id: `${op}-start`, kind: 'restore-start', operationId: op, revision: p.revision, timeoutMs: 30_000 }),
    finish: (): Task => ({ id: `${op}-finish`, kind: 'restore-finish', operationId: op, ...(o.finish ?? none) }),
    cleanup: (keepOldDataDays = 0): Task => ({ id: `${op}-cleanup`, kind: 'restore-cleanup', operationId: op, keepOldDataDays }),
    rollback: (): Task => ({ id: `${op}-rollback`, kind: 'restore-rollback', operationId: op, ...(o.rollback ?? none), timeoutMs: 30_000 }),
  });
}
