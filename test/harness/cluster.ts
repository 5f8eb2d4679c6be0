/**
 * Real etcd clusters for tests and benchmarks: members on free 127.0.0.1 ports in a temp dir.
 *
 * Tests stop what they start:
 *
 *   const cluster = await startEtcdCluster({ members: 3 });
 *   after(() => cluster.stop());
 *
 * As a safety net, members still running when the process exits (a failed test, an
 * uncaught error, SIGINT/SIGTERM) are killed with SIGKILL and their temp dirs removed.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isEtcdsnapError } from '../../src/core/errors.js';
import { type MemberProcess, startMember as spawnMember, waitMembersHealthy } from '../../src/etcd/member.js';
import { restoreSnapshotFile } from '../../src/etcd/restore.js';
import type { ClusterHealth } from '../../src/etcd/types.js';
import { freePort, tempDir } from './net.js';

export interface TestMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  /** Undefined while stopped. */
  process: MemberProcess | undefined;
}

export interface TestCluster {
  /** Temp dir holding data dirs and logs. */
  root: string;
  token: string;
  endpoints: string[];
  members: TestMember[];
  initialCluster: string;
  /**
   * Stops member i: SIGTERM (then SIGKILL after 10 s), or SIGKILL at once with `kill`.
   * A graceful stop of a leader whose peers are gone takes ~7 s (it tries to hand over).
   */
  stopMember(i: number, options?: { kill?: boolean }): Promise<void>;
  /** Restarts member i with its data dir and state 'existing'; does not wait for health. */
  startMember(i: number): Promise<void>;
  /** Waits until every member is healthy with a leader; fails fast if a member exits. */
  waitHealthy(timeoutMs?: number): Promise<ClusterHealth>;
  /** Kills every member and removes the temp dir (unless keepDirs). Idempotent. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  members: 1 | 3;
  token?: string;
  quotaBackendBytes?: number;
  /** Keep the temp dir after stop() (to look at logs). */
  keepDirs?: boolean;
  /** Default 30 s. */
  healthyTimeoutMs?: number;
}

const DEFAULT_HEALTHY_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 3;

// --- the process-exit safety net -------------------------------------------------------
const live = new Set<MemberProcess>();
const rootsToRemove = new Set<string>();
let netInstalled = false;

function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  const cleanup = (): void => {
    for (const m of live) {
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    live.clear();
    for (const root of rootsToRemove) rmSync(root, { recursive: true, force: true });
    rootsToRemove.clear();
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      // Nobody else handles it: re-raise so the default action ends the process as it would have.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function track(m: MemberProcess): MemberProcess {
  live.add(m);
  void m.exited.then(() => live.delete(m));
  return m;
}

// --- clusters --------------------------------------------------------------------------

interface Layout {
  root: string;
  token: string;
  members: TestMember[];
  initialCluster: string;
}

async function layout(root: string, n: number, token: string, dataDirOf: (name: string) => string): Promise<Layout> {
  const members: TestMember[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${i + 1}`;
    members.push({
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: dataDirOf(name),
      logFile: path.join(root, `${name}.log`),
      process: undefined,
    });
  }
  return { root, token, members, initialCluster: members.map((m) => `${m.name}=${m.peerUrl}`).join(',') };
}

interface ClusterControl {
  cluster: TestCluster;
  startAll(state: 'new' | 'existing'): Promise<void>;
}

function clusterOf(l: Layout, opts: { quotaBackendBytes?: number; keepDirs?: boolean; healthyTimeoutMs?: number }): ClusterControl {
  const start = async (m: TestMember, state: 'new' | 'existing'): Promise<void> => {
    if (m.process) throw new Error(`member ${m.name} is already running`);
    m.process = track(
      await spawnMember({
        name: m.name,
        dataDir: m.dataDir,
        clientUrl: m.clientUrl,
        peerUrl: m.peerUrl,
        initialCluster: l.initialCluster,
        initialClusterState: state,
        initialClusterToken: l.token,
        logFile: m.logFile,
        ...(opts.quotaBackendBytes !== undefined ? { quotaBackendBytes: opts.quotaBackendBytes } : {}),
      }),
    );
  };
  let stopping: Promise<void> | undefined;
  const member = (i: number): TestMember => {
    const m = l.members[i];
    if (!m) throw new Error(`no member ${i} (cluster has ${l.members.length})`);
    return m;
  };
  const cluster: TestCluster = {
    root: l.root,
    token: l.token,
    endpoints: l.members.map((m) => m.clientUrl),
    members: l.members,
    initialCluster: l.initialCluster,
    async stopMember(i, options = {}) {
      const m = member(i);
      await (options.kill ? m.process?.kill() : m.process?.stop());
      m.process = undefined;
    },
    startMember: (i) => start(member(i), 'existing'),
    waitHealthy(timeoutMs = opts.healthyTimeoutMs ?? DEFAULT_HEALTHY_TIMEOUT_MS) {
      const running = l.members.flatMap((m) => (m.process ? [m.process] : []));
      return waitMembersHealthy(running, timeoutMs, cluster.endpoints);
    },
    stop() {
      stopping ??= (async () => {
        await Promise.all(l.members.map(async (m) => m.process?.kill()));
        for (const m of l.members) m.process = undefined;
        if (!opts.keepDirs) {
          await rm(l.root, { recursive: true, force: true });
          rootsToRemove.delete(l.root);
        }
      })();
      return stopping;
    },
  };
  return {
    cluster,
    async startAll(state) {
      await Promise.all(l.members.map((m) => start(m, state)));
    },
  };
}

type BringUpOptions = Omit<StartClusterOptions, 'members'> & { members: number };

/**
 * Lays out a cluster in a new temp dir, runs `prepare` (e.g. restores), starts all members and
 * waits for health; on "address already in use" it starts over with fresh ports.
 */
async function bringUp(prefix: string, opts: BringUpOptions, token: string, prepare: (l: Layout) => Promise<void>): Promise<TestCluster> {
  installSafetyNet();
  for (let attempt = 1; ; attempt++) {
    const root = await tempDir(prefix);
    if (!opts.keepDirs) rootsToRemove.add(root);
    const l = await layout(root, opts.members, token, (name) => path.join(root, `${name}.etcd`));
    const { cluster, startAll } = clusterOf(l, opts);
    try {
      await prepare(l);
      await startAll('new');
      await cluster.waitHealthy();
      return cluster;
    } catch (err) {
      await cluster.stop();
      const portTaken = isEtcdsnapError(err, 'ETCD_MEMBER_FAILED') && /address already in use/.test(err.message);
      if (!portTaken || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

/** A new cluster of 1 or 3 members, healthy. */
export async function startEtcdCluster(opts: StartClusterOptions): Promise<TestCluster> {
  const token = opts.token ?? `etcdsnap-test-${randomBytes(4).toString('hex')}`;
  return bringUp('etcdsnap-cluster-', opts, token, async () => undefined);
}

/**
 * Restores `file` into fresh data dirs for n members under a new token and starts them,
 * healthy. The backend quota grows with the snapshot (FACTS.md: a smaller quota than the
 * data makes the first write fail) unless given.
 */
export async function startClusterFromSnapshot(file: string, opts: Omit<StartClusterOptions, 'token'>): Promise<TestCluster> {
  const size = (await stat(file)).size;
  const defaultQuota = 2 * 1024 ** 3;
  const quotaBackendBytes = opts.quotaBackendBytes ?? (size * 1.5 > defaultQuota ? Math.ceil(size * 1.5) : undefined);
  const token = `etcdsnap-restored-${randomBytes(4).toString('hex')}`;
  const bringUpOpts = { ...opts, ...(quotaBackendBytes !== undefined ? { quotaBackendBytes } : {}), healthyTimeoutMs: opts.healthyTimeoutMs ?? 120_000 };
  return bringUp('etcdsnap-restored-', bringUpOpts, token, async (l) => {
    await Promise.all(
      l.members.map((m) =>
        restoreSnapshotFile({ file, dataDir: m.dataDir, memberName: m.name, initialCluster: l.initialCluster, initialAdvertisePeerUrls: m.peerUrl, initialClusterToken: token }),
      ),
    );
  });
}
