/**
 * Shared pieces of the benchmarks (bench/save.ts, bench/s3.ts): options, a seeded etcd of a
 * given DB size, timed child processes with their CPU time and peak RSS, medians, the machine
 * description and Markdown tables. Not a test: numbers are printed, never asserted.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { EtcdClient } from '../src/etcd/client.js';
import { fillKubernetesLike, startEtcdCluster, type TestCluster } from '../test/harness/index.js';

const run = promisify(execFile);

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Repository root (this file runs from dist/bench/). */
export const REPO_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = path.join(REPO_ROOT, 'bin', 'etcdsnap.js');
const PRELOAD = fileURLToPath(new URL('./rss-preload.js', import.meta.url));
const GNU_TIME = '/usr/bin/time';

// --- options ----------------------------------------------------------------------------

export interface BenchOptions {
  /** Target size of the etcd DB (the snapshot), MiB. */
  dbMiB: number;
  /** Timed runs per variant. */
  runs: number;
  quick: boolean;
  /** Also write the results as JSON here. */
  json: string | undefined;
  /** Remaining `--name value` flags, for the script's own options. */
  extra: Map<string, string>;
}

const USAGE = `options (flags win over environment variables):
  --quick            ~128 MiB DB and 2 runs: a smoke run
  --db-mb N          target etcd DB size in MiB (BENCH_DB_MB, default 1024)
  --runs N           timed runs per variant (BENCH_RUNS, default 3)
  --json FILE        also write the results as JSON (BENCH_JSON)`;

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got "${value}"`);
  return n;
}

/** Parses `--quick`, `--db-mb`, `--runs`, `--json` and any other `--flag value` pairs. */
export function parseOptions(argv: string[], extraUsage = ''): BenchOptions {
  const flags = new Map<string, string>();
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}${extraUsage ? `\n${extraUsage}` : ''}\n`);
      process.exit(0);
    }
    if (a === '--quick') {
      quick = true;
      continue;
    }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument "${a}" (see --help)`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    flags.set(m[1] as string, value);
  }
  const take = (flag: string, env: string): string | undefined => {
    const v = flags.get(flag) ?? process.env[env];
    flags.delete(flag);
    return v;
  };
  const db = take('db-mb', 'BENCH_DB_MB');
  const runs = take('runs', 'BENCH_RUNS');
  const json = take('json', 'BENCH_JSON');
  return {
    dbMiB: db !== undefined ? positiveInt(db, '--db-mb') : quick ? 128 : 1024,
    runs: runs !== undefined ? positiveInt(runs, '--runs') : quick ? 2 : 3,
    quick,
    json,
    extra: flags,
  };
}

// --- cleanup ----------------------------------------------------------------------------

const children = new Set<ChildProcess>();
const paths = new Set<string>();
let installed = false;

/**
 * Kills children still running and removes registered paths when the process ends, even on
 * an uncaught error or SIGINT/SIGTERM. (etcd members are killed by the harness's own net.)
 */
function installCleanup(): void {
  if (installed) return;
  installed = true;
  const cleanup = (): void => {
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    children.clear();
    for (const p of paths) rmSync(p, { recursive: true, force: true });
    paths.clear();
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      // The harness re-raises the signal after its own cleanup; make sure we end either way.
      setTimeout(() => process.exit(130), 2000).unref();
    });
  }
}

/** Removes `p` at exit unless {@link forget} was called (or it was removed already). */
export function removeAtExit(p: string): void {
  installCleanup();
  paths.add(p);
}

export async function removeNow(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
  paths.delete(p);
}

// --- timed children ----------------------------------------------------------------------

export interface Usage {
  /** Peak resident set size, KiB. */
  maxRssKiB: number;
  /** CPU seconds in user and kernel mode. */
  userSec: number;
  systemSec: number;
}

export interface ChildRun {
  wallSec: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** From the preload (Node children) or GNU time (others); undefined when unavailable. */
  usage: Usage | undefined;
}

export interface TimedOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * How to learn the child's CPU time and peak RSS: `preload` for a Node child (the command
   * must be node: `--import rss-preload.js` is inserted), `gnu-time` wraps the command in
   * /usr/bin/time when that exists, `none` skips it.
   */
  usage?: 'preload' | 'gnu-time' | 'none';
  /** Scratch dir for the usage file. */
  scratch: string;
}

let usageSeq = 0;

/**
 * Runs a command to completion and times it from spawn to exit (process start-up included,
 * as a user would see it). Rejects only if it cannot be spawned; check `code`.
 */
export async function runTimed(command: string, args: string[], o: TimedOptions): Promise<ChildRun> {
  installCleanup();
  const usageFile = path.join(o.scratch, `usage-${process.pid}-${++usageSeq}`);
  let cmd = command;
  let argv = args;
  let env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  const mode = o.usage ?? 'none';
  if (mode === 'preload') {
    argv = ['--import', pathToFileURL(PRELOAD).href, ...args];
    env = { ...env, BENCH_RSS_FILE: usageFile };
  } else if (mode === 'gnu-time' && existsSync(GNU_TIME)) {
    cmd = GNU_TIME;
    argv = ['-f', '%e %U %S %M', '-o', usageFile, command, ...args];
  }
  const started = process.hrtime.bigint();
  const child = spawn(cmd, argv, { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout = (stdout + d).slice(-1 << 20);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-16384);
  });
  const { code, ended } = await new Promise<{ code: number | null; ended: bigint }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve({ code: c, ended: process.hrtime.bigint() }));
  });
  // stdio may still be flushing after 'exit'.
  if (child.stdout.readable || child.stderr.readable) await new Promise<void>((resolve) => child.once('close', () => resolve()));
  children.delete(child);
  const wallSec = Number(ended - started) / 1e9;
  let usage: Usage | undefined;
  try {
    const text = readFileSync(usageFile, 'utf8');
    if (mode === 'preload') {
      const u = JSON.parse(text) as { maxRssKiB: number; userCpuUs: number; systemCpuUs: number };
      usage = { maxRssKiB: u.maxRssKiB, userSec: u.userCpuUs / 1e6, systemSec: u.systemCpuUs / 1e6 };
    } else {
      // GNU time may prepend "Command exited with non-zero status N".
      const last = text.trim().split('\n').pop() ?? '';
      const [, user, sys, rss] = last.split(' ').map(Number);
      if (user !== undefined && sys !== undefined && rss !== undefined && [user, sys, rss].every(Number.isFinite)) usage = { maxRssKiB: rss, userSec: user, systemSec: sys };
    }
  } catch {
    usage = undefined;
  }
  await rm(usageFile, { force: true });
  return { wallSec, code, stdout, stderr, usage };
}

/** Throws with the child's stderr tail when it failed. */
export function assertOk(what: string, r: ChildRun): ChildRun {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
  return r;
}

// --- etcd with data ----------------------------------------------------------------------

export interface SeededEtcd {
  cluster: TestCluster;
  endpoint: string;
  /** The etcd member's process id (for its CPU time). */
  pid: number | undefined;
  /** DB size etcd reports after the fill (= snapshot size minus the 32-byte trailer, about). */
  dbSize: number;
  keys: number;
  valueBytes: number;
  revision: number;
  fillSec: number;
}

/**
 * A 1-member etcd (backend quota 4 GiB or 2× the target, whichever is larger) filled with
 * Kubernetes-like data until its DB is about `dbBytes`: a first fill of most of it, then
 * top-ups with new seeds (new keys) until the DB is within 3 % of the target.
 */
export async function seededEtcd(dbBytes: number, log: (line: string) => void): Promise<SeededEtcd> {
  const cluster = await startEtcdCluster({ members: 1, quotaBackendBytes: Math.max(4 * GiB, 2 * dbBytes), healthyTimeoutMs: 60_000 });
  try {
    const endpoint = cluster.endpoints[0] as string;
    const client = await EtcdClient.connect({ endpoints: [endpoint] });
    const started = Date.now();
    let keys = 0;
    let valueBytes = 0;
    let revision = 0;
    let dbSize = 0;
    try {
      // Values are ~80 % of the DB (keys, revisions and bbolt pages are the rest).
      let chunk = Math.round(dbBytes * 0.75);
      for (let seed = 1; seed <= 20; seed++) {
        const r = await fillKubernetesLike([endpoint], { totalBytes: chunk, seed });
        keys += r.keys;
        valueBytes += r.bytes;
        revision = Math.max(revision, r.revision);
        dbSize = (await client.status(endpoint)).dbSize;
        log(`  fill seed ${seed}: +${r.keys} keys, +${(r.bytes / MiB).toFixed(0)} MiB of values in ${(r.durationMs / 1000).toFixed(1)} s → DB ${(dbSize / MiB).toFixed(0)} MiB`);
        if (dbSize >= dbBytes * 0.97) break;
        chunk = Math.max(4 * MiB, Math.round((dbBytes - dbSize) * 0.75));
      }
    } finally {
      client.close();
    }
    return { cluster, endpoint, pid: cluster.members[0]?.process?.pid, dbSize, keys, valueBytes, revision, fillSec: (Date.now() - started) / 1000 };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * CPU seconds (user + system) a running process has used so far, from /proc/<pid>/stat
 * (Linux; clock ticks of 1/100 s); undefined elsewhere. For etcd's share of a save.
 */
export function processCpuSec(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

// --- statistics and output ---------------------------------------------------------------

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Run order for round `r`: the variants rotated by r, so none always goes first or last. */
export function rotation<T>(variants: readonly T[], round: number): T[] {
  const k = round % variants.length;
  return [...variants.slice(k), ...variants.slice(0, k)];
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

export const fmt = {
  sec: (s: number): string => s.toFixed(2),
  ratio: (r: number): string => `${r.toFixed(2)}×`,
  mibps: (bytes: number, s: number): string => (bytes / MiB / s).toFixed(0),
  /** Decimal megabytes, as the goals are stated ("150 MB"). */
  mbFromKiB: (kib: number): string => ((kib * 1024) / 1e6).toFixed(0),
  mib: (bytes: number): string => (bytes / MiB).toFixed(0),
};

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memGiB: string;
  kernel: string;
  os: string;
  node: string;
  etcd: string;
  etcdctl: string;
  zstd: string;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, { env: { ...process.env, ETCDCTL_API: '3' } });
    return (stdout || stderr).trim().split('\n')[0] ?? '?';
  } catch {
    return '(not found)';
  }
}

export async function machine(): Promise<Machine> {
  let osName = os.type();
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    osName = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(rel)?.[1] ?? osName;
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? '?',
    memGiB: (os.totalmem() / GiB).toFixed(1),
    kernel: os.release(),
    os: osName,
    node: process.version,
    etcd: await firstLine('etcd', ['--version']),
    etcdctl: await firstLine('etcdctl', ['version']),
    zstd: await firstLine('zstd', ['--version']),
  };
}

export function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

export function describeMachine(m: Machine): string {
  return [
    `date ${m.date}; ${m.cpus} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM; ${m.os}, kernel ${m.kernel}`,
    `node ${m.node}; ${m.etcd}; ${m.etcdctl}; ${m.zstd}`,
  ].join('\n');
}

export async function writeJson(file: string | undefined, value: unknown): Promise<void> {
  if (file) await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
