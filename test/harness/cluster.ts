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
 *
 * With `tls: true` the cluster runs like Kubernetes' etcd: https client and peer URLs,
 * certificates from a CA made for the cluster, and client-cert-auth on both ports. Connect
 * with `EtcdClient.connect({ endpoints: cluster.endpoints, tls: cluster.tls.clientTls })`.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdsnapError, isEtcdsnapError, toEtcdsnapError } from '../../src/core/errors.js';
import { EtcdClient } from '../../src/etcd/client.js';
import type { EtcdTls } from '../../src/etcd/endpoint.js';
import { type MemberProcess, type MemberTlsOptions, startMember as spawnMember, waitMembersHealthy } from '../../src/etcd/member.js';
import { restoreSnapshotFile } from '../../src/etcd/restore.js';
import type { ClusterHealth } from '../../src/etcd/types.js';
import { freePort, tempDir } from './net.js';
import { type EtcdTlsMaterial, makeEtcdTls } from './tls.js';

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
  /** With `tls: true`: the cluster's CA and certificates; `tls.clientTls` connects a client. */
  tls: EtcdTlsMaterial | undefined;
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
  /** https client and peer URLs with client-cert-auth on both (certificates made for the cluster). */
  tls?: boolean;
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
  tls: EtcdTlsMaterial | undefined;
}

async function layout(root: string, n: number, token: string, dataDirOf: (name: string) => string, tls: EtcdTlsMaterial | undefined): Promise<Layout> {
  const scheme = tls ? 'https' : 'http';
  const members: TestMember[] = [];
  for (let i = 0; i < n; i++) {
    const name = `m${i + 1}`;
    members.push({
      name,
      clientUrl: `${scheme}://127.0.0.1:${await freePort()}`,
      peerUrl: `${scheme}://127.0.0.1:${await freePort()}`,
      dataDir: dataDirOf(name),
      logFile: path.join(root, `${name}.log`),
      process: undefined,
    });
  }
  return { root, token, members, initialCluster: members.map((m) => `${m.name}=${m.peerUrl}`).join(','), tls };
}

/** Member flags of a TLS cluster: client-cert-auth on the client and the peer port. */
function memberTls(tls: EtcdTlsMaterial): { clientTls: MemberTlsOptions; peerTls: MemberTlsOptions } {
  return {
    clientTls: { certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, trustedCaFile: tls.caFile, clientCertAuth: true },
    peerTls: { certFile: tls.peerCertFile, keyFile: tls.peerKeyFile, trustedCaFile: tls.caFile, clientCertAuth: true },
  };
}

/**
 * waitMembersHealthy for TLS members: the same polling (health of every member, a leader)
 * with a client certificate, failing fast when a member exits.
 */
async function waitHealthyTls(members: MemberProcess[], endpoints: string[], tls: EtcdTls, timeoutMs: number): Promise<ClusterHealth> {
  const ac = new AbortController();
  const poll = async (): Promise<ClusterHealth> => {
    const until = Date.now() + timeoutMs;
    let last = 'no endpoint answered yet';
    while (!ac.signal.aborted) {
      const budget = Math.max(100, Math.min(2000, until - Date.now()));
      let client: EtcdClient | undefined;
      try {
        client = await EtcdClient.connect({ endpoints, tls, dialTimeoutMs: budget, requestTimeoutMs: budget });
        const health = await client.health({ timeoutMs: budget });
        if (health.healthy) return health;
        last = health.reasons.join('; ');
      } catch (err) {
        const e = toEtcdsnapError(err);
        if (e.code === 'INVALID_ARGUMENT') throw e;
        last = e.message;
      } finally {
        client?.close();
      }
      if (Date.now() >= until) throw new EtcdsnapError('CLUSTER_UNHEALTHY', `etcd at ${endpoints.join(', ')} did not become healthy within ${timeoutMs} ms: ${last}`);
      await delay(100, undefined, { signal: ac.signal }).catch(() => undefined);
    }
    throw new EtcdsnapError('OPERATION_ABORTED', `Stopped waiting for etcd at ${endpoints.join(', ')} to become healthy.`);
  };
  try {
    return await Promise.race([poll(), ...members.map((m) => m.failed)]);
  } finally {
    ac.abort();
  }
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
        ...(l.tls ? memberTls(l.tls) : {}),
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
    tls: l.tls,
    async stopMember(i, options = {}) {
      const m = member(i);
      await (options.kill ? m.process?.kill() : m.process?.stop());
      m.process = undefined;
    },
    startMember: (i) => start(member(i), 'existing'),
    waitHealthy(timeoutMs = opts.healthyTimeoutMs ?? DEFAULT_HEALTHY_TIMEOUT_MS) {
      const running = l.members.flatMap((m) => (m.process ? [m.process] : []));
      if (l.tls) return waitHealthyTls(running, cluster.endpoints, l.tls.clientTls, timeoutMs);
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
    let tls: EtcdTlsMaterial | undefined;
    if (opts.tls) {
      await mkdir(path.join(root, 'tls'));
      tls = await makeEtcdTls(path.join(root, 'tls')).catch(async (err: unknown) => {
        await rm(root, { recursive: true, force: true });
        throw err;
      });
    }
    const l = await layout(root, opts.members, token, (name) => path.join(root, `${name}.etcd`), tls);
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
