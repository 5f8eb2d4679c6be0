/**
 * A supervised etcd member process: the agent's managed mode and the test harness both start
 * members through here.
 *
 * Starting does not wait for health (a member of a new cluster cannot be healthy alone);
 * `waitMembersHealthy` waits for the cluster and fails fast, with the member's last log
 * lines, when a member exits instead (port in use, bad data dir, …).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdsnapError } from '../core/errors.js';
import type { ClusterHealth } from './types.js';
import { waitHealthy } from './wait.js';

export interface StartMemberOptions {
  name: string;
  dataDir: string;
  /** Listened on and advertised, e.g. `http://127.0.0.1:2379`. */
  clientUrl: string;
  /** Listened on and advertised to peers, e.g. `http://127.0.0.1:2380`. */
  peerUrl: string;
  /** `m1=http://…:2380,m2=…` */
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  /** `--quota-backend-bytes`; etcd's default (2 GiB) when omitted. */
  quotaBackendBytes?: number;
  /** Append etcd's log (zap JSON) here; when omitted it is discarded, except a tail kept in memory. */
  logFile?: string;
  /** Default `etcd` on PATH. */
  etcdBinary?: string;
  /** TLS of the client port (clientUrl must then be https). */
  clientTls?: MemberTlsOptions;
  /** TLS between peers (peerUrl must then be https). */
  peerTls?: MemberTlsOptions;
  /** Appended after our flags, so a repeated flag here wins. */
  extraArgs?: string[];
}

/**
 * TLS of one of a member's ports, as Kubernetes distributions run etcd. For the client port:
 * `--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`; for the peer port
 * the same flags with `--peer-`. PEM file paths.
 */
export interface MemberTlsOptions {
  /** The certificate the port serves (peer certificates also need clientAuth: peers dial with them). */
  certFile: string;
  keyFile: string;
  /** CA that client (or peer) certificates must chain to. */
  trustedCaFile?: string;
  /** Require and verify a certificate from every client (or peer). Needs `trustedCaFile`. */
  clientCertAuth?: boolean;
}

export interface MemberProcess {
  readonly name: string;
  readonly pid: number;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** Exit code, or null when a signal ended it. Never rejects. */
  readonly exited: Promise<number | null>;
  /**
   * Rejects with ETCD_MEMBER_FAILED (carrying the log tail) if the process exits without
   * stop()/kill() having been called; never settles otherwise. Safe to leave unobserved.
   */
  readonly failed: Promise<never>;
  /** The last `lines` lines of the member's log. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 10000). Resolves once it has exited. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL. Resolves once it has exited. */
  kill(): Promise<void>;
}

const TAIL_LINES = 15;
const MEMORY_TAIL_BYTES = 64 * 1024;

/** Builds etcd's command line; exported so callers can show what will run. */
export function memberArgs(o: StartMemberOptions): string[] {
  const args = [
    `--name=${o.name}`,
    `--data-dir=${o.dataDir}`,
    `--listen-client-urls=${o.clientUrl}`,
    `--advertise-client-urls=${o.clientUrl}`,
    `--listen-peer-urls=${o.peerUrl}`,
    `--initial-advertise-peer-urls=${o.peerUrl}`,
    `--initial-cluster=${o.initialCluster}`,
    `--initial-cluster-state=${o.initialClusterState}`,
    `--initial-cluster-token=${o.initialClusterToken}`,
    '--logger=zap',
    '--log-outputs=stderr',
  ];
  if (o.quotaBackendBytes !== undefined) args.push(`--quota-backend-bytes=${Math.floor(o.quotaBackendBytes)}`);
  if (o.clientTls) args.push(...tlsArgs('', 'clientTls', o.clientTls));
  if (o.peerTls) args.push(...tlsArgs('peer-', 'peerTls', o.peerTls));
  return [...args, ...(o.extraArgs ?? [])];
}

function tlsArgs(prefix: '' | 'peer-', option: string, t: MemberTlsOptions): string[] {
  if (t.clientCertAuth && !t.trustedCaFile) {
    throw new EtcdsnapError('INVALID_ARGUMENT', `${option}.clientCertAuth needs ${option}.trustedCaFile: etcd cannot verify certificates without the CA that signed them.`);
  }
  return [
    `--${prefix}cert-file=${t.certFile}`,
    `--${prefix}key-file=${t.keyFile}`,
    ...(t.trustedCaFile ? [`--${prefix}trusted-ca-file=${t.trustedCaFile}`] : []),
    ...(t.clientCertAuth ? [`--${prefix}client-cert-auth`] : []),
  ];
}

async function fileTail(file: string, lines: number): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const length = Math.min(size, 32 * 1024);
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, size - length);
      return lastLines(buf.toString('utf8'), lines);
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `(could not read ${file}: ${(err as Error).message})`;
  }
}

function lastLines(text: string, lines: number): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

/** Spawns etcd with the given flags. Resolves once the process runs (not once it is healthy). */
export async function startMember(opts: StartMemberOptions): Promise<MemberProcess> {
  const binary = opts.etcdBinary ?? 'etcd';
  await mkdir(path.dirname(path.resolve(opts.dataDir)), { recursive: true });
  let memoryTail = '';
  let child: ChildProcess;
  if (opts.logFile) {
    await mkdir(path.dirname(path.resolve(opts.logFile)), { recursive: true });
    // etcd writes straight to the file, so it keeps logging even if this process goes away.
    const log = await open(opts.logFile, 'a');
    try {
      child = spawn(binary, memberArgs(opts), { stdio: ['ignore', log.fd, log.fd] });
      await spawned(child, binary, opts.name);
    } finally {
      await log.close();
    }
  } else {
    child = spawn(binary, memberArgs(opts), { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      memoryTail = (memoryTail + chunk).slice(-MEMORY_TAIL_BYTES);
    });
    await spawned(child, binary, opts.name);
  }

  child.on('error', () => undefined); // e.g. a failed kill(); the exit is what we report
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const logTail = (lines = TAIL_LINES): Promise<string> => (opts.logFile ? fileTail(opts.logFile, lines) : Promise.resolve(lastLines(memoryTail, lines)));
  const failed = new Promise<never>((_resolve, reject) => {
    void exited.then(async (code) => {
      if (stopping) return;
      const how = code === null ? `was killed by ${child.signalCode ?? 'a signal'}` : `exited with code ${code}`;
      const tail = await logTail();
      reject(
        new EtcdsnapError('ETCD_MEMBER_FAILED', `etcd member ${opts.name} ${how}. Last lines of its log${opts.logFile ? ` (${opts.logFile})` : ''}:\n${tail}`, {
          details: { member: opts.name, code, signal: child.signalCode, dataDir: opts.dataDir, logFile: opts.logFile, tail },
        }),
      );
    });
  });
  failed.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection

  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    name: opts.name,
    pid: child.pid!,
    clientUrl: opts.clientUrl,
    peerUrl: opts.peerUrl,
    dataDir: opts.dataDir,
    exited,
    failed,
    logTail,
    async stop(timeoutMs = 10000) {
      stopping = true;
      if (running()) {
        child.kill('SIGTERM');
        const ac = new AbortController();
        const timedOut = await Promise.race([exited.then(() => false), delay(timeoutMs, true, { signal: ac.signal }).catch(() => false)]);
        ac.abort();
        if (timedOut && running()) child.kill('SIGKILL');
      }
      await exited;
    },
    async kill() {
      stopping = true;
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves on 'spawn'; a missing binary becomes ETCD_MEMBER_FAILED with what to install. */
function spawned(child: ChildProcess, binary: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? `"${binary}" was not found: install Debian's etcd-server or set the etcd binary path.` : err.message;
      reject(new EtcdsnapError('ETCD_MEMBER_FAILED', `Could not start etcd member ${name}: ${hint}`, { cause: err, details: { binary, member: name } }));
    });
  });
}

/**
 * Waits until the cluster these members form is healthy (see waitHealthy); fails at once
 * with ETCD_MEMBER_FAILED and the log tail if any of them exits meanwhile.
 */
export async function waitMembersHealthy(members: MemberProcess[], timeoutMs: number, endpoints = members.map((m) => m.clientUrl)): Promise<ClusterHealth> {
  const ac = new AbortController();
  try {
    return await Promise.race([waitHealthy(endpoints, timeoutMs, { signal: ac.signal }), ...members.map((m) => m.failed)]);
  } finally {
    ac.abort();
  }
}
