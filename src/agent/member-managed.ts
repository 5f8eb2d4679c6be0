import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { MemberStatus } from '../core/plans.js';
import { startMember, type MemberProcess } from '../etcd/member.js';
import { Backoff, sleep } from './backoff.js';
import type { AgentConfig } from './config.js';
import { EtcdAccess } from './etcd-access.js';
import type { LocalMember, MemberIdentity } from './member.js';
import { MAX_ERROR, Probe } from './member-probe.js';
import { writeFileAtomic } from './state.js';

/** A member that stayed up this long has its restart backoff reset. */
const STABLE_MS = 60_000;

/**
 * Managed mode: the agent runs etcd itself (log in `<dataDir>/etcd.log`, pid in
 * `<dataDir>/etcd.pid`) and restarts it with backoff when it dies.
 */
export class ManagedMember implements LocalMember {
  readonly mode = 'managed' as const;
  readonly endpoints: readonly string[];
  private proc: MemberProcess | undefined;
  private wanted = false;
  private startedAt = 0;
  private lastError: string | undefined;
  private readonly backoff: Backoff;
  private ac = new AbortController();
  private readonly probe: Probe;

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
    /**
     * How the agent reaches the member (TLS material of --etcd-cacert/--etcd-cert/--etcd-key;
     * client side only: the member itself is started without server certificates).
     */
    readonly etcd: EtcdAccess = new EtcdAccess(config, logger),
  ) {
    this.endpoints = [config.etcdClientUrl];
    this.probe = new Probe(etcd);
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

  /** The member's data dir (always set in managed mode). */
  get dataDir(): string {
    return this.config.etcdDataDir ?? path.join(this.config.dataDir, 'etcd');
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
      dataDir: this.dataDir,
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
    if (!(await cmdline()).includes(`--data-dir=${this.dataDir}`)) return;
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
