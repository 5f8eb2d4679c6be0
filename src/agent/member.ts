import { spawn } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { EtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { MemberStatus } from '../core/plans.js';
import { EtcdClient } from '../etcd/client.js';
import { startMember, type MemberProcess } from '../etcd/member.js';
import { Backoff, sleep } from './backoff.js';
import type { AgentConfig } from './config.js';
import { writeFileAtomic } from './state.js';

/** Who the local member is, as the agent registers it. */
export interface MemberIdentity {
  name: string;
  clientUrl: string;
  peerUrl: string;
}

/**
 * The etcd member on this node. Managed: the agent runs it (and restarts it with backoff when
 * it dies). External: someone else runs it; stop/start go through configured commands (used
 * by restores).
 */
export interface LocalMember {
  readonly mode: 'managed' | 'external';
  /** Client URLs for etcd calls; the first is this member, snapshots stream from it. */
  readonly endpoints: readonly string[];
  identity(): Promise<MemberIdentity>;
  /** Managed: whether the process runs. External: null (unknown). */
  running(): boolean | null;
  /** Managed: start and supervise. External: run the start command. */
  start(): Promise<void>;
  /** Managed: stop, no restart until start(). External: run the stop command. */
  stop(): Promise<void>;
  /** On agent shutdown: managed stops the member; external leaves etcd alone. */
  close(): Promise<void>;
  /** healthy / unhealthy / stopped, with version, DB size and revision when it answers. */
  status(timeoutMs?: number): Promise<MemberStatus>;
}

const MAX_ERROR = 4000;
/** A member that stayed up this long has its restart backoff reset. */
const STABLE_MS = 60_000;

/** Status probe of one endpoint, keeping a client while it answers. */
class Probe {
  private client: EtcdClient | undefined;

  async status(endpoint: string, base: MemberIdentity, timeoutMs: number): Promise<MemberStatus> {
    try {
      this.client ??= await EtcdClient.connect({ endpoints: [endpoint], dialTimeoutMs: timeoutMs, requestTimeoutMs: timeoutMs });
      const s = await this.client.status(endpoint, timeoutMs);
      const problems = [...(s.leaderId === '0' ? ['knows no leader'] : []), ...s.errors];
      return {
        ...base,
        state: problems.length > 0 ? 'unhealthy' : 'healthy',
        etcdVersion: s.version.slice(0, 32),
        dbSize: s.dbSize,
        revision: s.revision,
        ...(problems.length > 0 ? { error: `member ${base.name} ${problems.join(', ')}`.slice(0, MAX_ERROR) } : {}),
      };
    } catch (err) {
      // A fresh client next time: gRPC's reconnect backoff could hide a member that came back.
      this.close();
      return { ...base, state: 'unhealthy', error: toEtcdsnapError(err).message.slice(0, MAX_ERROR) };
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

export class ManagedMember implements LocalMember {
  readonly mode = 'managed' as const;
  readonly endpoints: readonly string[];
  private proc: MemberProcess | undefined;
  private wanted = false;
  private startedAt = 0;
  private lastError: string | undefined;
  private readonly backoff: Backoff;
  private ac = new AbortController();
  private readonly probe = new Probe();

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.endpoints = [config.etcdClientUrl];
    this.backoff = new Backoff(Math.max(100, config.retryInitialMs), Math.max(1000, config.retryMaxMs));
  }

  /** etcd's log: `<dataDir>/etcd.log`. */
  get logFile(): string {
    return path.join(this.config.dataDir, 'etcd.log');
  }

  /** Pid of the member this agent started, so a restarted agent finds one it left behind. */
  get pidFile(): string {
    return path.join(this.config.dataDir, 'etcd.pid');
  }

  /** The running process (tests kill it to check supervision). */
  get process(): MemberProcess | undefined {
    return this.proc;
  }

  identity(): Promise<MemberIdentity> {
    return Promise.resolve({ name: this.config.etcdName, clientUrl: this.config.etcdClientUrl, peerUrl: this.config.etcdPeerUrl });
  }

  running(): boolean {
    return this.proc !== undefined;
  }

  async start(): Promise<void> {
    if (this.wanted && this.proc) return;
    this.wanted = true;
    this.ac = new AbortController();
    this.backoff.reset();
    await this.reapOrphan();
    await this.spawn();
  }

  async stop(): Promise<void> {
    this.wanted = false;
    this.ac.abort();
    const proc = this.proc;
    this.proc = undefined;
    await proc?.stop();
    await unlink(this.pidFile).catch(() => undefined);
    this.probe.close();
  }

  close(): Promise<void> {
    return this.stop();
  }

  async status(timeoutMs = 2000): Promise<MemberStatus> {
    const base = await this.identity();
    if (!this.proc) return { ...base, state: 'stopped', ...(this.lastError ? { error: this.lastError.slice(0, MAX_ERROR) } : {}) };
    return this.probe.status(this.config.etcdClientUrl, base, timeoutMs);
  }

  private async spawn(): Promise<void> {
    const c = this.config;
    const proc = await startMember({
      name: c.etcdName,
      dataDir: c.etcdDataDir,
      clientUrl: c.etcdClientUrl,
      peerUrl: c.etcdPeerUrl,
      initialCluster: c.etcdInitialCluster,
      initialClusterState: c.etcdInitialClusterState,
      initialClusterToken: c.etcdInitialClusterToken,
      etcdBinary: c.etcdBinary,
      logFile: this.logFile,
    });
    this.proc = proc;
    await writeFileAtomic(this.pidFile, `${proc.pid}\n`, 0o644);
    this.startedAt = Date.now();
    this.lastError = undefined;
    this.logger.info({ pid: proc.pid, member: c.etcdName, clientUrl: c.etcdClientUrl }, 'etcd member started');
    proc.failed.catch((err: unknown) => void this.onFailed(proc, err));
  }

  /**
   * An agent killed without a chance to stop its member (SIGKILL, OOM) leaves etcd running,
   * holding the ports and the data dir: stop that process first. Only a process whose command
   * line names this member's data dir is touched (Linux /proc; elsewhere nothing is done).
   */
  private async reapOrphan(): Promise<void> {
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 1) return;
    const cmdline = async (): Promise<string> => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (!(await cmdline()).includes(`--data-dir=${this.config.etcdDataDir}`)) return;
    this.logger.warn({ pid }, 'an etcd member of a previous agent run is still running; stopping it');
    const gone = async (ms: number): Promise<boolean> => {
      for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (!(await cmdline())) return true;
      return !(await cmdline());
    };
    try {
      process.kill(pid, 'SIGTERM');
      if (!(await gone(10_000))) {
        process.kill(pid, 'SIGKILL');
        await gone(5000);
      }
    } catch {
      // already gone
    }
  }

  /** The member exited without stop(): restart it after a backoff, until it stays up. */
  private async onFailed(proc: MemberProcess, err: unknown): Promise<void> {
    if (this.proc !== proc) return;
    this.proc = undefined;
    this.probe.close();
    this.lastError = toEtcdsnapError(err).message;
    if (Date.now() - this.startedAt > STABLE_MS) this.backoff.reset();
    for (;;) {
      if (!this.wanted) return;
      const delay = this.backoff.next();
      this.logger.error({ err, retryInMs: delay }, 'etcd member exited; restarting it');
      await sleep(delay, this.ac.signal);
      if (!this.wanted || this.proc) return;
      try {
        await this.spawn();
        return;
      } catch (e) {
        this.lastError = toEtcdsnapError(e).message;
        err = e;
      }
    }
  }
}

/** Runs a configured shell command; fails with ETCD_MEMBER_FAILED and its output tail. */
export function runCommand(command: string, what: string, timeoutMs = 300_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new EtcdsnapError('ETCD_MEMBER_FAILED', `The ${what} could not run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new EtcdsnapError('ETCD_MEMBER_FAILED', `The ${what} (${command}) ${code === null ? `was killed by ${signal}` : `exited with code ${code}`}:\n${out.trim()}`, { details: { code, signal } }));
    });
  });
}

export class ExternalMember implements LocalMember {
  readonly mode = 'external' as const;
  readonly endpoints: readonly string[];
  private known: MemberIdentity | undefined;
  private readonly probe = new Probe();

  constructor(private readonly config: AgentConfig) {
    this.endpoints = config.etcdEndpoints;
  }

  /** Name and peer URL from etcd's member list (the member serving the first endpoint); the flags otherwise. */
  async identity(): Promise<MemberIdentity> {
    if (this.known) return this.known;
    const endpoint = this.endpoints[0] as string;
    const fallback = { name: this.config.etcdName, clientUrl: endpoint, peerUrl: this.config.etcdPeerUrl };
    let client: EtcdClient | undefined;
    try {
      client = await EtcdClient.connect({ endpoints: [endpoint], dialTimeoutMs: 3000, requestTimeoutMs: 3000 });
      const self = (await client.status(endpoint)).memberId;
      const m = (await client.members()).find((x) => x.id === self);
      if (m?.name && m.peerURLs[0]) this.known = { name: m.name, clientUrl: endpoint, peerUrl: m.peerURLs[0] };
    } catch {
      // not reachable now: the flags describe it
    } finally {
      client?.close();
    }
    return this.known ?? fallback;
  }

  running(): null {
    return null;
  }

  start(): Promise<void> {
    if (!this.config.etcdStartCommand) return Promise.reject(new EtcdsnapError('INVALID_CONFIG', 'No --etcd-start-command is configured: the agent cannot start an external etcd.'));
    return runCommand(this.config.etcdStartCommand, 'etcd start command');
  }

  stop(): Promise<void> {
    if (!this.config.etcdStopCommand) return Promise.reject(new EtcdsnapError('INVALID_CONFIG', 'No --etcd-stop-command is configured: the agent cannot stop an external etcd.'));
    return runCommand(this.config.etcdStopCommand, 'etcd stop command');
  }

  close(): Promise<void> {
    this.probe.close();
    return Promise.resolve();
  }

  async status(timeoutMs = 2000): Promise<MemberStatus> {
    const id = await this.identity();
    return this.probe.status(id.clientUrl, id, timeoutMs);
  }
}

export function createMember(config: AgentConfig, logger: Logger): LocalMember {
  return config.mode === 'managed' ? new ManagedMember(config, logger) : new ExternalMember(config);
}
