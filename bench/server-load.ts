/**
 * Benchmark of issue 4: the server with 1,000 clusters and 3,000 long-polling agents on
 * loopback. API latency of list clusters / list snapshots under that load against the same
 * requests with no agent connected, the server's RSS and CPU.
 *
 *   npx tsc -p tsconfig.json && npm run bench:server             # ~5 min
 *   npm run bench:server -- --quick                              # 100 clusters, short phases
 *   npm run bench:server -- --cpu-prof                           # + where the server's CPU goes
 *   npm run bench:server -- --https --agent-procs 2              # see --help
 *
 * What runs:
 * - the REAL server, `node bin/etcdsnap.js server --data-dir <tmp> --listen 127.0.0.1:0
 *   --insecure-http` (or HTTPS with its own CA), a separate process: its RSS (VmRSS, VmHWM) and
 *   CPU come from /proc/<pid>, and nothing else runs on its event loop;
 * - setup through the API (bounded concurrency): create the clusters (version, a ~1 KB cluster
 *   config, default policy or `@every 6h`), read their join info, register 3 agents per cluster,
 *   and have every agent fetch its plan and report its share of `--snapshots-per-cluster`
 *   snapshot records (with metadata documents as a real agent writes them);
 * - baseline: the latency probes with no agent connected;
 * - load: `--agent-procs` child processes (bench/server-load-agents.ts) play the agents — one
 *   long-poll each (`after=<planId>&wait=30`, re-polled at once) and a heartbeat report every
 *   10 s, spread over time — first alone (`--agents-only-sec`: their own cost), then with the
 *   probes running again for `--steady-sec`;
 * - baseline again after the agents disconnected (drift of a machine shared with others);
 * - the probes, in this (otherwise idle) process, open-loop with Poisson arrivals at fixed mean
 *   rates and a bounded number in flight: GET /api/v1/clusters, GET /api/v1/clusters/<random>/
 *   snapshots, GET /healthz (a trivial request: the server's queueing delay), and PATCH of a
 *   random cluster's retention (1/s: under load it wakes that cluster's 3 long-polls);
 * - resources: VmRSS/VmHWM/CPU/fds of the server from /proc every second, its V8 heap and
 *   event-loop delay from its own /metrics (prom-client's defaults) at each phase's end, and
 *   the live heap after one forced full GC (through the server's inspector, `--inspect=
 *   127.0.0.1:0`) after each phase;
 * - contention (the machine is shared): machine busy/iowait/steal from /proc/stat, PSI, the
 *   server main thread's time on CPU and waiting for a CPU (schedstat) and its state sampled at
 *   20 Hz (R/S/D, and where it sleeps in D), the SQLite WAL size.
 * Everything it started (server, generators, temp dir) is stopped on exit, error and SIGINT.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, WebSocket, request } from 'undici';
import type { Cluster, JoinInfo } from '../src/core/api.js';
import type { SnapshotMetadata } from '../src/core/metadata.js';
import { formatName } from '../src/core/names.js';
import type { AgentReport, NodePlan, PROTOCOL_VERSION, RegistrationRequest, RegistrationResponse, SnapshotReport } from '../src/core/plans.js';
import { summarizeProfile, type ProfileSummary } from './cpuprofile.js';
import { beyondPeriod, dist, type ChildMessage, type Dist, type ParentMessage, type Progress, type SimNode, type StartMessage, type WindowStats } from './server-load-common.js';

const PROTOCOL: typeof PROTOCOL_VERSION = 'etcdsnap.io/v1';
const REPO_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CLI = path.join(REPO_ROOT, 'bin', 'etcdsnap.js');
const GENERATOR = fileURLToPath(new URL('./server-load-agents.js', import.meta.url));
const CLK_TCK = 100;

// --- options --------------------------------------------------------------------------------

interface Options {
  clusters: number;
  nodesPerCluster: number;
  snapshotsPerCluster: number;
  agentProcs: number;
  waitSec: number;
  heartbeatSec: number;
  rampSec: number;
  baselineSec: number;
  warmupSec: number;
  steadySec: number;
  agentsOnlySec: number;
  rateClusters: number;
  rateSnapshots: number;
  rateHealthz: number;
  ratePatch: number;
  setupConcurrency: number;
  https: boolean;
  sharedPool: boolean;
  gcCheck: boolean;
  cpuProf: boolean;
  profileDir: string | undefined;
  json: string | undefined;
  keepData: string | undefined;
  logLevel: string;
}

const USAGE = `node dist/bench/server-load.js [options]
  --clusters N              clusters (default 1000; --quick 100)
  --nodes-per-cluster N     agents per cluster (default 3)
  --snapshots-per-cluster N snapshot records per cluster, reported by its agents (default 10)
  --agent-procs N           load-generator processes (default 1)
  --wait S                  long-poll wait of the agents (default 30, as the agent's default)
  --heartbeat S             agents' report interval (default 10, as the agent's default)
  --ramp S                  agents start evenly over this many seconds (default 10)
  --baseline-sec S          probe time without agents, before and after the load (default 30)
  --warmup-sec S            load time before the probes start (default 20)
  --agents-only-sec S       after the warm-up, load without probes: the agents' own cost (default 30; 0: none)
  --steady-sec S            probe time under load (default 60)
  --rate-clusters R         GET /api/v1/clusters per second (default 5)
  --rate-snapshots R        GET /api/v1/clusters/<id>/snapshots per second (default 20)
  --rate-healthz R          GET /healthz per second (default 10)
  --rate-patch R            PATCH /api/v1/clusters/<id> per second: wakes that cluster's long-polls (default 1)
  --setup-concurrency N     requests in flight during setup (default 16)
  --https                   HTTPS with the server's own CA instead of --insecure-http
  --shared-pool             the generators use one undici pool each (default: 2 sockets per agent, as real agents)
  --no-gc-check             do not start the server with --inspect=127.0.0.1:0 (used after each phase for one
                            full GC through the inspector, to tell the live heap from uncollected garbage)
  --cpu-prof                run the server under node --cpu-prof and summarize the profile
  --profile-dir DIR         keep the .cpuprofile there (default: a temp dir, removed)
  --json FILE               also write all results as JSON
  --keep-data DIR           copy the server's data dir (SQLite database) there at the end, for analysis
  --log-level L             server log level (default info, as in production)
  --quick                   100 clusters, 10 s baselines, 10 s warm-up and agents only, 20 s under load`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    clusters: 1000,
    nodesPerCluster: 3,
    snapshotsPerCluster: 10,
    agentProcs: 1,
    waitSec: 30,
    heartbeatSec: 10,
    rampSec: 10,
    baselineSec: 30,
    warmupSec: 20,
    steadySec: 60,
    agentsOnlySec: 30,
    rateClusters: 5,
    rateSnapshots: 20,
    rateHealthz: 10,
    ratePatch: 1,
    setupConcurrency: 16,
    https: false,
    sharedPool: false,
    gcCheck: true,
    cpuProf: false,
    profileDir: undefined,
    json: undefined,
    keepData: undefined,
    logLevel: 'info',
  };
  const numeric: Record<string, keyof Options> = {
    clusters: 'clusters',
    'nodes-per-cluster': 'nodesPerCluster',
    'snapshots-per-cluster': 'snapshotsPerCluster',
    'agent-procs': 'agentProcs',
    wait: 'waitSec',
    heartbeat: 'heartbeatSec',
    ramp: 'rampSec',
    'baseline-sec': 'baselineSec',
    'warmup-sec': 'warmupSec',
    'steady-sec': 'steadySec',
    'agents-only-sec': 'agentsOnlySec',
    'rate-clusters': 'rateClusters',
    'rate-snapshots': 'rateSnapshots',
    'rate-healthz': 'rateHealthz',
    'rate-patch': 'ratePatch',
    'setup-concurrency': 'setupConcurrency',
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (a === '--quick') {
      o.clusters = 100;
      o.baselineSec = 10;
      o.warmupSec = 10;
      o.steadySec = 20;
      o.agentsOnlySec = 10;
      continue;
    }
    if (a === '--https') {
      o.https = true;
      continue;
    }
    if (a === '--shared-pool') {
      o.sharedPool = true;
      continue;
    }
    if (a === '--no-gc-check') {
      o.gcCheck = false;
      continue;
    }
    if (a === '--cpu-prof') {
      o.cpuProf = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument "${a}" (see --help)`);
    const flag = m[1] as string;
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${flag} needs a value`);
    given.add(flag);
    if (flag === 'json') o.json = value;
    else if (flag === 'profile-dir') o.profileDir = path.resolve(value);
    else if (flag === 'keep-data') o.keepData = path.resolve(value);
    else if (flag === 'log-level') o.logLevel = value;
    else if (numeric[flag]) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a number ≥ 0, got "${value}"`);
      (o as unknown as Record<string, number>)[numeric[flag] as string] = n;
    } else throw new Error(`unknown option --${flag} (see --help)`);
  }
  for (const k of ['clusters', 'nodesPerCluster', 'agentProcs', 'setupConcurrency', 'waitSec', 'heartbeatSec'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
  }
  return o;
}

// --- cleanup: everything started is stopped, also on error and Ctrl-C -------------------------

const children = new Set<ChildProcess>();
const tempPaths = new Set<string>();

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  children.clear();
  for (const p of tempPaths) rmSync(p, { recursive: true, force: true });
  tempPaths.clear();
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the server and the load generators, removing the temp dir\n`);
    killAll();
    process.exit(130);
  });
}

// --- /proc ----------------------------------------------------------------------------------

function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return Infinity;
  }
}

interface ProcSample {
  rssKiB: number;
  hwmKiB: number;
  threads: number;
  cpuSec: number;
  fds: number;
}

function procSample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let fds = NaN;
    try {
      fds = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // not ours to read
    }
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), threads: kib('Threads'), cpuSec: (Number(f[11]) + Number(f[12])) / CLK_TCK, fds };
  } catch {
    return undefined;
  }
}

/** Cumulative counters of the machine and of the server's main thread, read together. */
interface Counters {
  /** /proc/stat "cpu" line, ticks: user, nice, system, idle, iowait, irq, softirq, steal. */
  machine: number[];
  /** /proc/pressure/{cpu,io} "some" totals (µs): time some task waited for a CPU / for I/O. */
  psiCpuUs: number;
  psiIoUs: number;
  /** /proc/<pid>/task/<pid>/schedstat of the server's main thread: ns on CPU, ns runnable but waiting for a CPU. */
  mainRunNs: number;
  mainWaitNs: number;
  /** Size of the SQLite WAL file (bytes). */
  walBytes: number;
}

function readCounters(pid: number, dataDir: string): Counters {
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const machine = (read('/proc/stat').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const psi = (what: string): number => Number(/^some .*total=(\d+)/m.exec(read(`/proc/pressure/${what}`))?.[1] ?? NaN);
  const sched = read(`/proc/${pid}/task/${pid}/schedstat`).trim().split(' ').map(Number);
  let walBytes = NaN;
  try {
    walBytes = statSync(path.join(dataDir, 'etcdsnap.db-wal')).size;
  } catch {
    // no WAL (yet)
  }
  return { machine, psiCpuUs: psi('cpu'), psiIoUs: psi('io'), mainRunNs: sched[0] ?? NaN, mainWaitNs: sched[1] ?? NaN, walBytes };
}

interface Sample {
  at: number;
  server: ProcSample | undefined;
  generators: (ProcSample | undefined)[];
  counters: Counters;
  /** Cumulative 20 Hz samples of the server main thread's state (R running/runnable, S sleeping, D uninterruptible: disk) and, in D, its wchan. */
  states: Record<string, number>;
  wchan: Record<string, number>;
}

class Monitor {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private fast: NodeJS.Timeout | undefined;
  private readonly states: Record<string, number> = {};
  private readonly wchan: Record<string, number> = {};
  generatorPids: number[] = [];

  constructor(
    private readonly serverPid: number,
    private readonly dataDir: string,
  ) {}

  sample(): Sample {
    const s = {
      at: Date.now(),
      server: procSample(this.serverPid),
      generators: this.generatorPids.map((p) => procSample(p)),
      counters: readCounters(this.serverPid, this.dataDir),
      states: { ...this.states },
      wchan: { ...this.wchan },
    };
    this.samples.push(s);
    return s;
  }

  private sampleState(): void {
    try {
      const stat = readFileSync(`/proc/${this.serverPid}/task/${this.serverPid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      this.states[state] = (this.states[state] ?? 0) + 1;
      if (state === 'D') {
        const w = readFileSync(`/proc/${this.serverPid}/task/${this.serverPid}/wchan`, 'utf8').trim() || '?';
        this.wchan[w] = (this.wchan[w] ?? 0) + 1;
      }
    } catch {
      // the server is gone
    }
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.fast = setInterval(() => this.sampleState(), 50);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.fast) clearInterval(this.fast);
  }

  /** Server (and generator) resources between two sample times. */
  between(from: Sample, to: Sample): Resources {
    const inside = this.samples.filter((s) => s.at >= from.at && s.at <= to.at && s.server);
    const rss = inside.map((s) => (s.server as ProcSample).rssKiB);
    const wall = (to.at - from.at) / 1000;
    const cpu = from.server && to.server ? to.server.cpuSec - from.server.cpuSec : NaN;
    const genCpu = from.generators.reduce((sum, g, i) => sum + ((to.generators[i]?.cpuSec ?? NaN) - (g?.cpuSec ?? NaN)), 0);
    const genRss = to.generators.reduce((sum, g) => sum + (g?.rssKiB ?? 0), 0);
    const a = from.counters;
    const b = to.counters;
    const ticks = b.machine.map((v, i) => v - (a.machine[i] ?? NaN));
    const totalTicks = ticks.reduce((x, y) => x + y, 0);
    const share = (i: number): number => (100 * (ticks[i] ?? NaN)) / totalTicks;
    const diff = (x: Record<string, number>, y: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(y).map(([k, v]) => [k, v - (x[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
    const states = diff(from.states, to.states);
    const nStates = Object.values(states).reduce((x, y) => x + y, 0);
    return {
      wallSec: wall,
      serverCpuPct: (100 * cpu) / wall,
      rssMB: { min: mb(Math.min(...rss)), median: mb(dist(rss).p50), max: mb(Math.max(...rss)) },
      hwmMB: mb(to.server?.hwmKiB ?? NaN),
      fds: to.server?.fds ?? NaN,
      threads: to.server?.threads ?? NaN,
      generatorCpuPct: from.generators.length ? (100 * genCpu) / wall : undefined,
      generatorRssMB: from.generators.length ? mb(genRss) : undefined,
      machine: {
        busyPct: 100 - share(3) - share(4),
        iowaitPct: share(4),
        stealPct: share(7),
        psiCpuPct: (b.psiCpuUs - a.psiCpuUs) / (wall * 1e4),
        psiIoPct: (b.psiIoUs - a.psiIoUs) / (wall * 1e4),
      },
      mainThread: {
        onCpuPct: (b.mainRunNs - a.mainRunNs) / (wall * 1e7),
        runqueueWaitPct: (b.mainWaitNs - a.mainWaitNs) / (wall * 1e7),
        statePct: Object.fromEntries(Object.entries(states).map(([k, v]) => [k, (100 * v) / Math.max(1, nStates)])),
        wchan: diff(from.wchan, to.wchan),
      },
      walMaxMB: Math.max(...inside.map((s) => s.counters.walBytes / 1e6).filter(Number.isFinite), 0),
    };
  }
}

interface Resources {
  wallSec: number;
  /** % of one core. */
  serverCpuPct: number;
  rssMB: { min: number; median: number; max: number };
  hwmMB: number;
  fds: number;
  threads: number;
  generatorCpuPct: number | undefined;
  generatorRssMB: number | undefined;
  /** The whole machine (all CPUs, every process, other sessions' too): % of the time. */
  machine: { busyPct: number; iowaitPct: number; stealPct: number; psiCpuPct: number; psiIoPct: number };
  /** The server's main thread (the event loop): on CPU, runnable but waiting for a CPU, and sampled states. */
  mainThread: { onCpuPct: number; runqueueWaitPct: number; statePct: Record<string, number>; wchan: Record<string, number> };
  walMaxMB: number;
}

const mb = (kib: number): number => (kib * 1024) / 1e6;

function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

// --- the server -----------------------------------------------------------------------------

interface ServerProc {
  child: ChildProcess;
  pid: number;
  url: string;
  adminToken: string;
  ca: string | undefined;
  /** The server's inspector WebSocket (with gcCheck). */
  inspector: string | undefined;
  startSec: number;
  stderrTail: () => string;
  /** Resolves when the process ended, with the time (ms) it did. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

async function startServer(dataDir: string, o: Options, profileDir: string | undefined): Promise<ServerProc> {
  const args = [
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...(o.gcCheck ? ['--inspect=127.0.0.1:0'] : []),
    CLI,
    'server',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    ...(o.https ? ['--hostname', '127.0.0.1'] : ['--insecure-http']),
    '--log-level',
    o.logLevel,
  ];
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-32768);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  let stdout = '';
  const ready = new Promise<{ url: string; adminToken: string }>((resolve, reject) => {
    let token: string | undefined;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      token ??= /^admin token: (\S+)/m.exec(stdout)?.[1];
      const url = /^etcdsnap server: (\S+)/m.exec(stdout)?.[1];
      if (token && url) resolve({ url, adminToken: token });
    });
    child.once('error', reject);
    void exited.then(({ code, signal }) => reject(new Error(`the server exited (${code ?? signal}) before it listened:\n${stderr.trim().split('\n').slice(-10).join('\n')}`)));
    setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${stderr.slice(-2000)}`)), 60_000).unref();
  });
  const { url, adminToken } = await ready;
  const ca = o.https ? readFileSync(path.join(dataDir, 'tls', 'ca.pem'), 'utf8') : undefined;
  const inspector = /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  return { child, pid: child.pid as number, url, adminToken, ca, inspector, startSec: (Date.now() - started) / 1000, stderrTail: () => stderr, exited };
}

/** SIGINT (a clean shutdown, which also writes the CPU profile), SIGKILL after 30 s. */
async function stopServer(s: ServerProc): Promise<{ sec: number; clean: boolean; at: number }> {
  const t0 = Date.now();
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGINT');
  const timeout = sleep(30_000).then(() => undefined);
  const result = await Promise.race([s.exited, timeout]);
  if (!result) {
    s.child.kill('SIGKILL');
    const r = await s.exited;
    children.delete(s.child);
    return { sec: (Date.now() - t0) / 1000, clean: false, at: r.at };
  }
  children.delete(s.child);
  return { sec: (Date.now() - t0) / 1000, clean: result.code === 0 || result.code === 130, at: result.at };
}

// --- live heap: one full GC through the inspector -------------------------------------------

interface GcCheck {
  /** How long the forced full GC (and the round trip) took, ms: the server's loop is blocked meanwhile. */
  ms: number;
  /** V8 heap after the full GC: what is really alive (MB). */
  usedMB: number;
  totalMB: number;
  /** VmRSS right after (MB). */
  rssMB: number;
}

async function forceGc(inspector: string, pid: number): Promise<GcCheck> {
  const ws = new WebSocket(inspector);
  const pending = new Map<number, (result: unknown) => void>();
  let seq = 0;
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot reach the server's inspector at ${inspector}`)), { once: true });
  });
  const send = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method }));
      setTimeout(() => reject(new Error(`inspector: ${method} timed out`)), 60_000).unref();
    });
  try {
    const t0 = performance.now();
    await send('HeapProfiler.collectGarbage');
    const ms = performance.now() - t0;
    const usage = (await send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { ms, usedMB: usage.usedSize / 1e6, totalMB: usage.totalSize / 1e6, rssMB: mb(procSample(pid)?.rssKiB ?? NaN) };
  } finally {
    ws.close();
  }
}

// --- HTTP -----------------------------------------------------------------------------------

interface Api {
  base: string;
  token: string;
  dispatcher: Agent;
}

async function call<T>(api: Api, method: string, p: string, body?: unknown, token: string | null = api.token): Promise<{ status: number; body: T; text: string }> {
  const res = await request(`${api.base}${p}`, {
    method: method as 'GET',
    headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: api.dispatcher,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  let parsed: unknown = undefined;
  if (text && String(res.headers['content-type'] ?? '').includes('json')) parsed = JSON.parse(text);
  return { status: res.statusCode, body: parsed as T, text };
}

function expect<T>(what: string, r: { status: number; body: T; text: string }, status: number): T {
  if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} (expected ${status}): ${r.text.slice(0, 300)}`);
  return r.body;
}

/** Runs `fn` over `items` with at most `concurrency` at once; the first error stops it. */
async function bounded<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<number> {
  const t0 = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return (Date.now() - t0) / 1000;
}

// --- setup ----------------------------------------------------------------------------------

function clusterConfig(name: string, i: number): string {
  return [
    'apiVersion: provisioning.cattle.io/v1',
    'kind: Cluster',
    'metadata:',
    `  name: ${name}`,
    '  namespace: fleet-default',
    'spec:',
    `  kubernetesVersion: v1.30.${4 + (i % 3)}+rke2r1`,
    '  rkeConfig:',
    '    machineGlobalConfig:',
    '      cni: calico',
    '      disable-kube-proxy: false',
    '      etcd-expose-metrics: false',
    '    etcd:',
    '      snapshotScheduleCron: "0 */5 * * *"',
    '      snapshotRetention: 5',
    '    machinePools:',
    ...['cp', 'worker'].flatMap((pool) => [
      `      - name: ${pool}`,
      `        quantity: ${pool === 'cp' ? 3 : 5}`,
      `        etcdRole: ${pool === 'cp'}`,
      `        controlPlaneRole: ${pool === 'cp'}`,
      `        workerRole: ${pool !== 'cp'}`,
      '        machineConfigRef:',
      '          kind: VmwarevsphereConfig',
      `          name: nc-${name}-${pool}-${createHash('sha256').update(`${name}${pool}`).digest('hex').slice(0, 5)}`,
    ]),
    '    upgradeStrategy:',
    '      controlPlaneConcurrency: "1"',
    '      workerConcurrency: "1"',
    '',
  ].join('\n');
}

const RESOURCES = ['pods', 'services', 'configmaps', 'secrets', 'deployments', 'replicasets', 'events', 'leases', 'serviceaccounts', 'endpointslices', 'namespaces', 'clusterroles', 'roles', 'rolebindings', 'nodes', 'customresourcedefinitions'];

/** A metadata document like the one a real agent writes (zstd, with a content summary). */
function metadataFor(p: { name: string; node: string; clusterId: string; clusterName: string; createdAt: string; config: string; size: number }): SnapshotMetadata {
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  const byResource: Record<string, number> = {};
  let keys = 0;
  for (const [i, r] of RESOURCES.entries()) {
    const n = 20 + ((i * 37 + p.size) % 400);
    byResource[`/registry/${r}`] = n;
    keys += n;
  }
  return {
    formatVersion: 1,
    name: p.name,
    base: 'etcd-snapshot',
    node: p.node,
    cluster: { id: p.clusterId, name: p.clusterName },
    createdAt: p.createdAt,
    kind: 'recurring',
    kubernetesVersion: 'v1.30.4+rke2r1',
    clusterConfig: p.config,
    etcd: { version: '3.5.16', clusterId: sha(p.clusterId).slice(0, 16), member: p.node, memberCount: 3, revision: 1_234_567, revisionMin: 1_234_567, revisionExact: true, trailerSha256: sha(`${p.name}t`) },
    rawSize: p.size * 5,
    storedSize: p.size,
    codec: 'zstd',
    sha256: sha(p.name),
    rawSha256: sha(`${p.name}r`),
    summary: { revision: 1_234_567, keys, byResource },
  };
}

interface SetupResult {
  clusterIds: string[];
  nodes: SimNode[];
  createSec: number;
  joinSec: number;
  registerSec: number;
  syncSec: number;
  records: number;
  listClustersBytes: number;
  listSnapshotsBytes: number;
}

async function setup(api: Api, o: Options, log: (s: string) => void): Promise<SetupResult> {
  const names = Array.from({ length: o.clusters }, (_, i) => `bench-${String(i + 1).padStart(4, '0')}`);
  const clusters: { id: string; name: string; config: string; registrationToken: string }[] = [];
  const createSec = await bounded(names, o.setupConcurrency, async (name, i) => {
    const config = clusterConfig(name, i);
    const body = { name, kubernetesVersion: `v1.30.${4 + (i % 3)}+rke2r1`, clusterConfig: config, policy: { schedule: i % 4 === 0 ? '@every 6h' : '0 */5 * * *', retention: 5 } };
    const c = expect<Cluster>(`create ${name}`, await call<Cluster>(api, 'POST', '/api/v1/clusters', body), 201);
    clusters[i] = { id: c.id, name, config, registrationToken: '' };
  });
  log(`  created ${o.clusters} clusters in ${createSec.toFixed(1)} s (${(o.clusters / createSec).toFixed(0)}/s)`);
  const joinSec = await bounded(clusters, o.setupConcurrency, async (c) => {
    c.registrationToken = expect<JoinInfo>(`join ${c.name}`, await call<JoinInfo>(api, 'GET', `/api/v1/clusters/${c.id}/join`), 200).registrationToken;
  });

  const work = clusters.flatMap((c) => Array.from({ length: o.nodesPerCluster }, (_, k) => ({ c, k, node: `${c.name}-cp-${k + 1}`, token: '', planId: '' })));
  const registerSec = await bounded(work, o.setupConcurrency, async (w) => {
    const req: RegistrationRequest = {
      apiVersion: PROTOCOL,
      registrationToken: w.c.registrationToken,
      node: w.node,
      agentVersion: '0.1.0',
      mode: 'managed',
      member: { name: w.node, clientUrl: `https://${w.node}:2379`, peerUrl: `https://${w.node}:2380` },
    };
    w.token = expect<RegistrationResponse>(`register ${w.node}`, await call<RegistrationResponse>(api, 'POST', '/api/v1/agent/register', req, null), 200).nodeToken;
  });
  log(`  registered ${work.length} agents in ${registerSec.toFixed(1)} s (${(work.length / registerSec).toFixed(0)}/s)`);

  // Each agent fetches its plan and reports its share of the cluster's snapshots (round robin).
  const now = Date.now();
  let records = 0;
  const syncSec = await bounded(work, o.setupConcurrency, async (w) => {
    const plan = expect<NodePlan>(`plan ${w.node}`, await call<NodePlan>(api, 'GET', '/api/v1/agent/plan?wait=0', undefined, w.token), 200);
    w.planId = plan.planId;
    const snapshots: SnapshotReport[] = [];
    for (let j = w.k; j < o.snapshotsPerCluster; j += o.nodesPerCluster) {
      const created = new Date(now - (j + 1) * 5 * 3600_000 + w.k * 1000);
      const name = formatName({ base: 'etcd-snapshot', node: w.node, unix: Math.floor(created.getTime() / 1000), codec: 'zstd' });
      const size = 8_000_000 + ((j * 7919 + w.k * 104_729) % 4_000_000);
      const createdAt = created.toISOString();
      snapshots.push({
        name,
        node: w.node,
        state: 'successful',
        location: `file:///var/lib/etcdsnap-agent/snapshots/${name}`,
        size,
        createdAt,
        durationMs: 4000 + (j % 7) * 300,
        metadata: metadataFor({ name, node: w.node, clusterId: w.c.id, clusterName: w.c.name, createdAt, config: w.c.config, size }),
      });
    }
    const report: AgentReport = {
      apiVersion: PROTOCOL,
      node: w.node,
      agentVersion: '0.1.0',
      planId: w.planId,
      member: { name: w.node, clientUrl: `https://${w.node}:2379`, peerUrl: `https://${w.node}:2380`, state: 'healthy', etcdVersion: '3.5.16', dbSize: 52_428_800, revision: 1_234_567 },
      tasks: [],
      snapshots,
      deleted: [],
      nextScheduledAt: null,
    };
    expect(`report ${w.node}`, await call(api, 'POST', '/api/v1/agent/report', report, w.token), 200);
    records += snapshots.length;
  });
  log(`  ${work.length} agents fetched their plan and reported ${records} snapshot records in ${syncSec.toFixed(1)} s`);

  const list = await call<Cluster[]>(api, 'GET', '/api/v1/clusters');
  if (expect('list clusters', list, 200).length !== o.clusters) throw new Error(`list clusters returned ${list.body.length} clusters, expected ${o.clusters}`);
  const snaps = await call<unknown[]>(api, 'GET', `/api/v1/clusters/${clusters[0]?.id}/snapshots`);
  expect('list snapshots', snaps, 200);
  return {
    clusterIds: clusters.map((c) => c.id),
    nodes: work.map((w) => ({ node: w.node, token: w.token, planId: w.planId })),
    createSec,
    joinSec,
    registerSec,
    syncSec,
    records,
    listClustersBytes: Buffer.byteLength(list.text),
    listSnapshotsBytes: Buffer.byteLength(snaps.text),
  };
}

// --- latency probes -------------------------------------------------------------------------

interface ProbeSpec {
  name: string;
  rate: number;
  path: () => string;
  auth: boolean;
  method?: string;
  body?: () => unknown;
}

interface ProbeStats {
  name: string;
  rate: number;
  sent: number;
  ok: number;
  /** Not sent because `maxInFlight` were still open (would be coordinated omission otherwise). */
  skipped: number;
  errors: Record<string, number>;
  latency: Dist;
  bytes: number;
}

const MAX_IN_FLIGHT = 32;
const PROBES = ['GET /api/v1/clusters', 'GET /api/v1/clusters/{id}/snapshots', 'GET /healthz', 'PATCH /api/v1/clusters/{id}'];
const PATCH = PROBES[3] as string;

/** Each probe open-loop at its rate for `seconds` (at most rate×seconds requests, ≤ 32 in flight each). Latency: request sent → body read. */
async function runProbes(api: Api, specs: ProbeSpec[], seconds: number): Promise<Record<string, ProbeStats>> {
  const out: Record<string, ProbeStats> = {};
  await Promise.all(
    specs
      .filter((s) => s.rate > 0)
      .map(async (spec) => {
        // Poisson arrivals (exponential gaps) at the rate, not a fixed period: a fixed period
        // locks into phase with the other probes' periodic work and measures one phase only.
        const total = Math.max(1, Math.round(spec.rate * seconds));
        const end = performance.now() + seconds * 1000;
        const lat: number[] = [];
        const errors: Record<string, number> = {};
        let inFlight = 0;
        let skipped = 0;
        let bytes = 0;
        let sent = 0;
        const pending: Promise<void>[] = [];
        let due = performance.now();
        for (let k = 0; k < total; k++) {
          due += (-Math.log(1 - Math.random()) * 1000) / spec.rate;
          if (due > end) break;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (inFlight >= MAX_IN_FLIGHT) {
            skipped++;
            continue;
          }
          inFlight++;
          sent++;
          pending.push(
            (async () => {
              const start = performance.now();
              try {
                const body = spec.body?.();
                const res = await request(`${api.base}${spec.path()}`, {
                  method: (spec.method ?? 'GET') as 'GET',
                  headers: { ...(spec.auth ? { authorization: `Bearer ${api.token}`, accept: 'application/json' } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
                  body: body === undefined ? undefined : JSON.stringify(body),
                  dispatcher: api.dispatcher,
                  headersTimeout: 30_000,
                  bodyTimeout: 30_000,
                });
                let n = 0;
                for await (const chunk of res.body) n += (chunk as Buffer).length;
                if (res.statusCode === 200) {
                  lat.push(performance.now() - start);
                  bytes = n;
                } else errors[`HTTP ${res.statusCode}`] = (errors[`HTTP ${res.statusCode}`] ?? 0) + 1;
              } catch (err) {
                const key = (err as { code?: string }).code ?? String(err).slice(0, 60);
                errors[key] = (errors[key] ?? 0) + 1;
              } finally {
                inFlight--;
              }
            })(),
          );
        }
        await Promise.all(pending);
        out[spec.name] = { name: spec.name, rate: spec.rate, sent, ok: lat.length, skipped, errors, latency: dist(lat), bytes };
      }),
  );
  return out;
}

interface MetricsScrape {
  ms: number;
  longPolls: number;
  bytes: number;
  /** The server's V8 heap and external memory (MB), from prom-client's default metrics. */
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  /** The server's event-loop delay since the previous scrape (prom-client resets it per scrape; 10 ms period subtracted), ms. */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

async function scrapeMetrics(api: Api): Promise<MetricsScrape> {
  const t0 = performance.now();
  const r = await call(api, 'GET', '/metrics');
  const ms = performance.now() - t0;
  const num = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(r.text)?.[1] ?? NaN);
  return {
    ms,
    longPolls: num('etcdsnap_plan_long_polls'),
    bytes: Buffer.byteLength(r.text),
    heapUsedMB: num('etcdsnap_server_nodejs_heap_size_used_bytes') / 1e6,
    heapTotalMB: num('etcdsnap_server_nodejs_heap_size_total_bytes') / 1e6,
    externalMB: num('etcdsnap_server_nodejs_external_memory_bytes') / 1e6,
    eventLoopDelay: {
      p50: beyondPeriod(num('etcdsnap_server_nodejs_eventloop_lag_p50_seconds') * 1e9),
      p99: beyondPeriod(num('etcdsnap_server_nodejs_eventloop_lag_p99_seconds') * 1e9),
      max: beyondPeriod(num('etcdsnap_server_nodejs_eventloop_lag_max_seconds') * 1e9),
    },
  };
}

// --- load generators ------------------------------------------------------------------------

interface Generator {
  child: ChildProcess;
  progress: Progress | undefined;
  windows: WindowStats[];
  totals: WindowStats | undefined;
  error: string | undefined;
  exited: Promise<void>;
}

function startGenerators(server: ServerProc, nodes: SimNode[], o: Options): Generator[] {
  const gens: Generator[] = [];
  for (let g = 0; g < o.agentProcs; g++) {
    const mine = nodes.filter((_, i) => i % o.agentProcs === g);
    const child = fork(GENERATOR, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    const gen: Generator = { child, progress: undefined, windows: [], totals: undefined, error: undefined, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'progress') gen.progress = m;
      else if (m.type === 'window') gen.windows.push(m.stats);
      else if (m.type === 'stopped') gen.totals = m.totals;
      else if (m.type === 'error') gen.error = m.message;
    });
    const start: StartMessage = { type: 'start', url: server.url, ca: server.ca, nodes: mine, waitSec: o.waitSec, heartbeatSec: o.heartbeatSec, rampSec: o.rampSec, connections: o.sharedPool ? mine.length * 2 + 64 : 0 };
    child.send(start satisfies ParentMessage);
    gens.push(gen);
  }
  return gens;
}

function tell(gens: Generator[], m: ParentMessage): void {
  for (const g of gens) if (g.child.connected) g.child.send(m);
}

async function collectWindows(gens: Generator[]): Promise<WindowStats[]> {
  const before = gens.map((g) => g.windows.length);
  tell(gens, { type: 'window-end' });
  const deadline = Date.now() + 15_000;
  while (gens.some((g, i) => g.windows.length === before[i] && g.child.connected) && Date.now() < deadline) await sleep(50);
  return gens.map((g, i) => g.windows[before[i] as number]).filter((w): w is WindowStats => w !== undefined);
}

/** Merges the generators' window stats (distributions: the worst generator's percentiles). */
function mergeWindows(ws: WindowStats[]): WindowStats | undefined {
  if (ws.length === 0) return undefined;
  const sum = (f: (w: WindowStats) => number): number => ws.reduce((a, w) => a + f(w), 0);
  const merge = (f: (w: WindowStats) => Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const w of ws) for (const [k, v] of Object.entries(f(w))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const worst = (f: (w: WindowStats) => Dist): Dist => {
    const ds = ws.map(f);
    return { n: ds.reduce((a, d) => a + d.n, 0), p50: Math.max(...ds.map((d) => d.p50)), p95: Math.max(...ds.map((d) => d.p95)), p99: Math.max(...ds.map((d) => d.p99)), max: Math.max(...ds.map((d) => d.max)), mean: Math.max(...ds.map((d) => d.mean)) };
  };
  return {
    seconds: Math.max(...ws.map((w) => w.seconds)),
    polls200: sum((w) => w.polls200),
    polls204: sum((w) => w.polls204),
    pollErrors: merge((w) => w.pollErrors),
    lateness204: worst((w) => w.lateness204),
    reports: sum((w) => w.reports),
    reportErrors: merge((w) => w.reportErrors),
    reportMs: worst((w) => w.reportMs),
    eventLoopDelay: { p50: Math.max(...ws.map((w) => w.eventLoopDelay.p50)), p99: Math.max(...ws.map((w) => w.eventLoopDelay.p99)), max: Math.max(...ws.map((w) => w.eventLoopDelay.max)) },
  };
}

// --- output ---------------------------------------------------------------------------------

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

const ms = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
const errs = (e: Record<string, number>): string => {
  const parts = Object.entries(e).map(([k, v]) => `${v} ${k}`);
  return parts.length ? parts.join(', ') : '0';
};

interface Phase {
  name: string;
  load: { before: string; after: string };
  resources: Resources;
  probes: Record<string, ProbeStats>;
  metrics: MetricsScrape[];
  agents?: WindowStats;
  /** Live heap after a forced full GC at the phase's end. */
  gc: GcCheck | undefined;
  /** This (probing) process's event-loop delay: a busy prober would inflate the latencies. */
  probeEventLoopDelay: { p99: number; max: number };
}

function probeTable(phases: Phase[], probeNames: string[]): string {
  const rows: (string | number)[][] = [];
  const base = phases[0];
  for (const name of probeNames) {
    for (const ph of phases) {
      const s = ph.probes[name];
      if (!s) continue;
      const b = base?.probes[name]?.latency;
      rows.push([name, ph.name, s.ok, errs(s.errors) + (s.skipped ? `, ${s.skipped} skipped` : ''), ms(s.latency.p50), ms(s.latency.p95), ms(s.latency.p99), ms(s.latency.max), ph === base ? '–' : ratio(s.latency.p50, b?.p50 ?? NaN), ph === base ? '–' : ratio(s.latency.p99, b?.p99 ?? NaN)]);
    }
  }
  return table(['request', 'phase', 'n ok', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'p50 × base', 'p99 × base'], rows);
}

function resourceTable(phases: Phase[]): string {
  return table(
    ['phase', 'wall s', 'server CPU % (1 core)', 'VmRSS MB median (min–max)', 'VmHWM MB', 'V8 heap used / total MB', 'live heap after full GC MB (GC ms)', 'server event-loop delay p99 / max ms', 'fds', 'generator CPU %', 'load avg before → after'],
    phases.map((p) => [
      p.name,
      p.resources.wallSec.toFixed(0),
      p.resources.serverCpuPct.toFixed(0),
      `${p.resources.rssMB.median.toFixed(0)} (${p.resources.rssMB.min.toFixed(0)}–${p.resources.rssMB.max.toFixed(0)})`,
      p.resources.hwmMB.toFixed(0),
      `${p.metrics[1]?.heapUsedMB.toFixed(0)} / ${p.metrics[1]?.heapTotalMB.toFixed(0)}`,
      p.gc ? `${p.gc.usedMB.toFixed(0)} (${p.gc.ms.toFixed(0)})` : '–',
      `${ms(p.metrics[1]?.eventLoopDelay.p99 ?? NaN)} / ${ms(p.metrics[1]?.eventLoopDelay.max ?? NaN)}`,
      p.resources.fds,
      p.resources.generatorCpuPct === undefined ? '–' : p.resources.generatorCpuPct.toFixed(0),
      `${p.load.before.split(' ')[0]} → ${p.load.after.split(' ')[0]}`,
    ]),
  );
}

function contentionTable(phases: Phase[]): string {
  const pct = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '–');
  return table(
    ['phase', 'machine busy % (all CPUs)', 'iowait %', 'steal %', 'PSI cpu / io some %', 'server main thread on CPU %', 'waiting for a CPU %', 'state R / S / D %', 'D in (wchan)', 'WAL max MB'],
    phases.map((p) => {
      const m = p.resources.machine;
      const t = p.resources.mainThread;
      const top = Object.entries(t.wchan)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return [
        p.name,
        pct(m.busyPct),
        pct(m.iowaitPct),
        pct(m.stealPct),
        `${pct(m.psiCpuPct)} / ${pct(m.psiIoPct)}`,
        pct(t.onCpuPct),
        pct(t.runqueueWaitPct),
        `${pct(t.statePct.R ?? 0)} / ${pct(t.statePct.S ?? 0)} / ${pct(t.statePct.D ?? 0)}`,
        top || '–',
        p.resources.walMaxMB.toFixed(1),
      ];
    }),
  );
}

function profileText(title: string, s: ProfileSummary): string {
  const pct = (r: { share: number }): string => `${(100 * r.share).toFixed(1)} %`;
  const lines = [
    `${title}: window ${(s.windowMs / 1000).toFixed(1)} s, main thread busy ${(s.busyMs / 1000).toFixed(1)} s (${((100 * s.busyMs) / Math.max(1, s.busyMs + s.idleMs)).toFixed(0)} %), idle ${(s.idleMs / 1000).toFixed(1)} s`,
    '',
    table(['self time by where', 'ms', 'share'], s.selfByWhere.map((r) => [r.what, r.ms.toFixed(0), pct(r)])),
    '',
    table(['inclusive time by where', 'ms', 'share'], s.inclusiveByWhere.map((r) => [r.what, r.ms.toFixed(0), pct(r)])),
    '',
    table(['inclusive time of', 'ms', 'share'], s.inclusiveByFunction.map((r) => [r.what, r.ms.toFixed(0), pct(r)])),
    '',
    table(['self time by function', 'ms', 'share'], s.selfByFunction.map((r) => [r.what, r.ms.toFixed(0), pct(r)])),
  ];
  return lines.join('\n');
}

const FOCUS = [
  'clusterViews',
  'listClusters',
  'listSnapshots',
  'snapshotView',
  'applyReport',
  'compute',
  'next',
  'recheck',
  'principalOf',
  'callerNode',
  'touchNode',
  'hashToken',
  'lastSuccessfulByCluster',
  'policyView',
  'clusterPolicy',
  'safeNext',
  'parse',
  'stringify',
  'executeQuery',
  'compileQuery',
  'runPreParsing',
  'validate',
  'mac',
];

// --- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const agents = o.clusters * o.nodesPerCluster;
  const perGenerator = Math.ceil(agents / o.agentProcs);
  const limit = openFileLimit();
  const need = Math.max(agents * 2, perGenerator * 2) + 1024;
  if (limit < need) {
    process.stderr.write(
      `error: the open-file limit is ${limit}, too low for ${agents} agents (the server and each generator hold ~2 sockets per agent: need ≥ ${need}).\n` +
        `Raise it in the shell that runs the benchmark, e.g.: ulimit -n ${Math.max(need, 16384)} && npm run bench:server\n`,
    );
    process.exitCode = 2;
    return;
  }
  if (!existsSync(GENERATOR)) throw new Error(`${GENERATOR} is missing: build first (npx tsc -p tsconfig.json)`);

  const started = new Date();
  const work = mkdtempSync(path.join(os.tmpdir(), 'etcdsnap-bench-server-'));
  tempPaths.add(work);
  const dataDir = path.join(work, 'data');
  const profileDir = o.cpuProf ? (o.profileDir ?? path.join(work, 'profile')) : undefined;
  const loadStart = loadavg();
  log(`etcdsnap server load benchmark — ${started.toISOString()}`);
  log(`${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${os.release()}, node ${process.version}; open-file limit ${limit}; load avg ${loadStart}`);
  log(`${o.clusters} clusters × ${o.nodesPerCluster} agents = ${agents} agents in ${o.agentProcs} generator process(es); ${o.snapshotsPerCluster} records per cluster; long-poll wait ${o.waitSec} s, heartbeat ${o.heartbeatSec} s; ${o.https ? 'HTTPS' : 'plain HTTP'}${o.cpuProf ? '; server under --cpu-prof' : ''}`);

  const server = await startServer(dataDir, o, profileDir);
  log(`server pid ${server.pid} at ${server.url}, listening after ${server.startSec.toFixed(2)} s`);
  let serverDied: string | undefined;
  void server.exited.then(({ code, signal }) => {
    serverDied = `server exited unexpectedly (code ${code}, signal ${signal}); stderr tail:\n${server.stderrTail().trim().split('\n').slice(-20).join('\n')}`;
  });
  const monitor = new Monitor(server.pid, dataDir);
  monitor.start();
  const idle = monitor.sample();
  const api: Api = { base: server.url, token: server.adminToken, dispatcher: new Agent({ connections: 64, keepAliveTimeout: 30_000, connect: server.ca ? { ca: server.ca } : {} }) };
  let gens: Generator[] = [];
  const phases: Phase[] = [];
  let setupResult: SetupResult | undefined;
  let stopped: { sec: number; clean: boolean; at: number } | undefined;
  const windows: { name: string; from: number; to: number }[] = [];
  let failure: string | undefined;
  try {
    log('setup:');
    const s0 = monitor.sample();
    setupResult = await setup(api, o, log);
    const s1 = monitor.sample();
    const setupRes = monitor.between(s0, s1);
    log(`  setup: ${setupRes.wallSec.toFixed(0)} s, server CPU ${setupRes.serverCpuPct.toFixed(0)} %, RSS ${s1.server ? mb(s1.server.rssKiB).toFixed(0) : '?'} MB; list clusters ${(setupResult.listClustersBytes / 1e6).toFixed(2)} MB, list snapshots ${(setupResult.listSnapshotsBytes / 1e3).toFixed(1)} kB`);
    const ids = setupResult.clusterIds;
    const specs: ProbeSpec[] = [
      { name: 'GET /api/v1/clusters', rate: o.rateClusters, path: () => '/api/v1/clusters', auth: true },
      { name: 'GET /api/v1/clusters/{id}/snapshots', rate: o.rateSnapshots, path: () => `/api/v1/clusters/${ids[Math.floor(Math.random() * ids.length)]}/snapshots`, auth: true },
      { name: 'GET /healthz', rate: o.rateHealthz, path: () => '/healthz', auth: false },
      // An edit wakes the cluster's 3 long-polls (200 with the new plan) when agents are connected.
      { name: PATCH, rate: o.ratePatch, path: () => `/api/v1/clusters/${ids[Math.floor(Math.random() * ids.length)]}`, auth: true, method: 'PATCH', body: () => ({ policy: { retention: 5 + Math.floor(Math.random() * 3) } }) },
    ];

    const phase = async (name: string, seconds: number, withAgents: boolean, probing = true): Promise<Phase> => {
      const before = loadavg();
      const m0 = await scrapeMetrics(api);
      const a = monitor.sample();
      if (withAgents) tell(gens, { type: 'window-start' });
      log(`${name}: ${probing ? 'probing' : 'no probes'} for ${seconds} s (load avg ${before})…`);
      const eld = monitorEventLoopDelay({ resolution: 10 });
      eld.enable();
      const probes = probing ? await runProbes(api, specs, seconds) : (await sleep(seconds * 1000), {});
      eld.disable();
      const agentStats = withAgents ? mergeWindows(await collectWindows(gens)) : undefined;
      const b = monitor.sample();
      windows.push({ name, from: a.at, to: b.at });
      const m1 = await scrapeMetrics(api);
      // After the window (and the scrape): one full GC, to tell live memory from garbage.
      const gc = server.inspector ? await forceGc(server.inspector, server.pid).catch((err: unknown) => (log(`  (GC check failed: ${String(err)})`), undefined)) : undefined;
      const p: Phase = { name, load: { before, after: loadavg() }, resources: monitor.between(a, b), probes, metrics: [m0, m1], agents: agentStats, gc, probeEventLoopDelay: { p99: beyondPeriod(eld.percentile(99)), max: beyondPeriod(eld.max) } };
      const c = p.resources;
      log(
        `  machine busy ${c.machine.busyPct.toFixed(0)} % (iowait ${c.machine.iowaitPct.toFixed(0)}, steal ${c.machine.stealPct.toFixed(0)}; PSI cpu ${c.machine.psiCpuPct.toFixed(0)} %, io ${c.machine.psiIoPct.toFixed(0)} %); server main thread on CPU ${c.mainThread.onCpuPct.toFixed(0)} %, waiting for a CPU ${c.mainThread.runqueueWaitPct.toFixed(0)} %, D ${(c.mainThread.statePct.D ?? 0).toFixed(0)} % ${JSON.stringify(c.mainThread.wchan)}; WAL ≤ ${c.walMaxMB.toFixed(1)} MB`,
      );
      for (const s of Object.values(probes)) log(`  ${s.name}: n ${s.ok}, errors ${errs(s.errors)}${s.skipped ? `, skipped ${s.skipped}` : ''}, p50 ${ms(s.latency.p50)} p95 ${ms(s.latency.p95)} p99 ${ms(s.latency.p99)} max ${ms(s.latency.max)} ms`);
      if (gc) log(`  after a forced full GC (${ms(gc.ms)} ms): V8 heap used ${gc.usedMB.toFixed(0)} of ${gc.totalMB.toFixed(0)} MB, VmRSS ${gc.rssMB.toFixed(0)} MB`);
      log(`  server CPU ${p.resources.serverCpuPct.toFixed(0)} %, RSS ${p.resources.rssMB.median.toFixed(0)} MB (HWM ${p.resources.hwmMB.toFixed(0)}; V8 heap used ${m1.heapUsedMB.toFixed(0)} of ${m1.heapTotalMB.toFixed(0)}, external ${m1.externalMB.toFixed(0)}), fds ${p.resources.fds}; long-polls held ${m0.longPolls} → ${m1.longPolls}; server event-loop delay p99 ${ms(m1.eventLoopDelay.p99)} max ${ms(m1.eventLoopDelay.max)} ms; /metrics ${ms(m0.ms)}/${ms(m1.ms)} ms; probe process event-loop delay p99 ${ms(p.probeEventLoopDelay.p99)} ms`);
      if (serverDied) throw new Error(serverDied);
      return p;
    };

    phases.push(await phase('baseline (no agents)', o.baselineSec, false));

    log(`load: starting ${agents} agents over ${o.rampSec} s…`);
    const r0 = monitor.sample();
    gens = startGenerators(server, setupResult.nodes, o);
    monitor.generatorPids = gens.map((g) => g.child.pid as number);
    const rampDeadline = Date.now() + (o.rampSec + 120) * 1000;
    let last = 0;
    for (;;) {
      await sleep(1000);
      if (serverDied) throw new Error(serverDied);
      const gErr = gens.find((g) => g.error);
      if (gErr) throw new Error(`a load generator failed: ${gErr.error}`);
      const open = gens.reduce((a, g) => a + (g.progress?.open ?? 0), 0);
      const startedAgents = gens.reduce((a, g) => a + (g.progress?.started ?? 0), 0);
      if (Date.now() - last > 5000) {
        last = Date.now();
        const errors = gens.reduce((a, g) => a + (g.progress?.errors ?? 0), 0);
        log(`  ${startedAgents} started, ${open} long-polls open, ${errors} errors${errors ? ` (last: ${gens.find((g) => g.progress?.lastError)?.progress?.lastError})` : ''}`);
      }
      if (startedAgents >= agents && open >= agents * 0.99) break;
      if (Date.now() > rampDeadline) throw new Error(`only ${open} of ${agents} long-polls open after ${o.rampSec + 120} s (last error: ${gens.find((g) => g.progress?.lastError)?.progress?.lastError ?? 'none'})`);
    }
    const r1 = monitor.sample();
    const ramp = monitor.between(r0, r1);
    log(`  all long-polls open after ${ramp.wallSec.toFixed(1)} s (server CPU ${ramp.serverCpuPct.toFixed(0)} %); warm-up ${o.warmupSec} s`);
    await sleep(o.warmupSec * 1000);
    // The agents' own cost: the same load without the probes.
    if (o.agentsOnlySec > 0) phases.push(await phase(`agents only, no probes (${agents} agents)`, o.agentsOnlySec, true, false));
    const loaded = await phase(`under load (${agents} agents)`, o.steadySec, true);
    phases.push(loaded);
    const ag = loaded.agents;
    if (ag) {
      log(
        `  agents: ${ag.polls200} plans (200), ${ag.polls204} long-polls ended 204 (late by p50 ${ms(ag.lateness204.p50)} p99 ${ms(ag.lateness204.p99)} ms), poll errors ${errs(ag.pollErrors)}; ${ag.reports} reports (p50 ${ms(ag.reportMs.p50)} p99 ${ms(ag.reportMs.p99)} max ${ms(ag.reportMs.max)} ms), report errors ${errs(ag.reportErrors)}; generator event-loop delay p99 ${ms(ag.eventLoopDelay.p99)} ms`,
      );
    }

    log('stopping the agents…');
    const d0 = Date.now();
    tell(gens, { type: 'stop' });
    await Promise.race([Promise.all(gens.map((g) => g.exited)), sleep(30_000)]);
    let polls = NaN;
    for (let i = 0; i < 50; i++) {
      polls = (await scrapeMetrics(api)).longPolls;
      if (polls === 0) break;
      await sleep(200);
    }
    monitor.generatorPids = [];
    log(`  generators gone after ${((Date.now() - d0) / 1000).toFixed(1)} s; long-polls held by the server: ${polls}`);
    await sleep(5000);
    phases.push(await phase('baseline after (agents gone)', o.baselineSec, false));
  } catch (err) {
    failure = String((err as Error)?.stack ?? err);
    process.stderr.write(`\nFAILED: ${failure}\n`);
    if (serverDied) process.stderr.write(`${serverDied}\n`);
  } finally {
    tell(gens, { type: 'stop' });
    await Promise.race([Promise.all(gens.map((g) => g.exited)), sleep(10_000)]);
    for (const g of gens) children.delete(g.child);
    monitor.stop();
    const final = monitor.sample();
    stopped = await stopServer(server);
    await api.dispatcher.destroy();
    if (o.keepData) cpSync(dataDir, o.keepData, { recursive: true });
    log(`server stopped in ${stopped.sec.toFixed(1)} s (${stopped.clean ? 'clean' : 'killed'}); VmHWM over the whole run ${final.server ? mb(final.server.hwmKiB).toFixed(0) : '?'} MB; idle RSS after start ${idle.server ? mb(idle.server.rssKiB).toFixed(0) : '?'} MB`);
  }

  // --- report ---
  const loadEnd = loadavg();
  log('');
  log(`## Results (${started.toISOString()}, load avg ${loadStart} → ${loadEnd})`);
  log('');
  if (setupResult) {
    log(
      `Setup: ${o.clusters} clusters created in ${setupResult.createSec.toFixed(1)} s, join info ${setupResult.joinSec.toFixed(1)} s, ${agents} registrations in ${setupResult.registerSec.toFixed(1)} s, ${agents} plan fetches + reports of ${setupResult.records} records in ${setupResult.syncSec.toFixed(1)} s (${o.setupConcurrency} requests in flight). ` +
        `GET /api/v1/clusters returns ${(setupResult.listClustersBytes / 1e6).toFixed(2)} MB; a cluster's snapshots ${(setupResult.listSnapshotsBytes / 1e3).toFixed(1)} kB.`,
    );
    log('');
  }
  log(probeTable(phases, PROBES));
  log('');
  log(resourceTable(phases));
  log('');
  log(contentionTable(phases));
  log('');
  const loaded = phases.find((p) => p.agents && Object.keys(p.probes).length > 0) ?? phases.find((p) => p.agents);
  const alone = phases.find((p) => p.agents && Object.keys(p.probes).length === 0);
  if (alone?.agents) {
    const a = alone.agents;
    log(
      `Agents only (${alone.name}, ${a.seconds.toFixed(0)} s): server CPU ${alone.resources.serverCpuPct.toFixed(0)} %, ${((a.polls200 + a.polls204) / a.seconds).toFixed(0)} long-poll returns/s, ${(a.reports / a.seconds).toFixed(0)} reports/s (round trip p50 ${ms(a.reportMs.p50)} / p99 ${ms(a.reportMs.p99)} / max ${ms(a.reportMs.max)} ms), 204s late by p99 ${ms(a.lateness204.p99)} ms, errors ${errs({ ...a.pollErrors, ...a.reportErrors })}; server event-loop delay p99 ${ms(alone.metrics[1]?.eventLoopDelay.p99 ?? NaN)} ms.`,
    );
    log('');
  }
  if (loaded?.agents) {
    const a = loaded.agents;
    log(
      table(
        ['agents (under load window)', 'value'],
        [
          ['window s', a.seconds.toFixed(0)],
          ['long-polls held (server gauge, start → end)', `${loaded.metrics[0]?.longPolls} → ${loaded.metrics[1]?.longPolls}`],
          ['long-polls answered 200 / 204', `${a.polls200} / ${a.polls204}`],
          ['204 later than `wait` by, p50 / p99 / max ms', `${ms(a.lateness204.p50)} / ${ms(a.lateness204.p99)} / ${ms(a.lateness204.max)}`],
          ['poll errors', errs(a.pollErrors)],
          ['heartbeat reports (per s)', `${a.reports} (${(a.reports / a.seconds).toFixed(0)})`],
          ['report round trip p50 / p95 / p99 / max ms', `${ms(a.reportMs.p50)} / ${ms(a.reportMs.p95)} / ${ms(a.reportMs.p99)} / ${ms(a.reportMs.max)}`],
          ['report errors', errs(a.reportErrors)],
          ['generator event-loop delay p50 / p99 / max ms', `${ms(a.eventLoopDelay.p50)} / ${ms(a.eventLoopDelay.p99)} / ${ms(a.eventLoopDelay.max)}`],
          ['generator RSS MB', loaded.resources.generatorRssMB?.toFixed(0) ?? '–'],
          ['/metrics scrape ms (start, end)', `${ms(loaded.metrics[0]?.ms ?? NaN)}, ${ms(loaded.metrics[1]?.ms ?? NaN)}`],
        ],
      ),
    );
    log('');
  }

  let profiles: Record<string, ProfileSummary> | undefined;
  if (profileDir && stopped) {
    const files = existsSync(profileDir) ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')) : [];
    if (files.length === 0) log(`(no CPU profile written: the server ${stopped.clean ? 'wrote none' : 'was killed'})`);
    else {
      const file = path.join(profileDir, files[0] as string);
      profiles = {};
      // Windows by wall time before the server's exit, 1 s trimmed at each end (the profile's end is the exit, ± the profile write).
      for (const w of windows) {
        const from = (stopped.at - w.from) / 1000 - 1;
        const to = (stopped.at - w.to) / 1000 + 1;
        if (from <= to) continue;
        const summary = summarizeProfile(file, { beforeEndSec: [from, to] }, 18, FOCUS);
        profiles[w.name] = summary;
        log(profileText(`### Server CPU profile — ${w.name}`, summary));
        log('');
      }
      log(`(profile: ${o.profileDir ? file : 'removed with the temp dir; keep it with --profile-dir DIR'})`);
    }
  }
  if (failure) log(`\nThe run FAILED before it finished: ${failure.split('\n')[0]}`);
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({ started, options: o, loadStart, loadEnd, setup: setupResult && { ...setupResult, nodes: undefined, clusterIds: undefined }, phases, stopped, failure, profiles, samples: monitor.samples }, null, 2)}\n`);
    log(`JSON: ${o.json}`);
  }
  killAll();
  if (failure) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
  killAll();
  process.exitCode = 1;
});
