import { spawn } from 'node:child_process';
import { EtcdsnapError } from '../core/errors.js';
import type { MemberStatus } from '../core/plans.js';
import type { EtcdClient } from '../etcd/client.js';
import type { AgentConfig } from './config.js';
import { EtcdAccess } from './etcd-access.js';
import type { LocalMember, MemberIdentity } from './member.js';
import { Probe } from './member-probe.js';

/**
 * Runs a configured shell command; fails with ETCD_MEMBER_FAILED and its output tail.
 * `env` is added to the agent's environment (a value of undefined removes the variable).
 */
export function runCommand(command: string, what: string, timeoutMs = 300_000, env?: Record<string, string | undefined>): Promise<void> {
  return new Promise((resolve, reject) => {
    const childEnv = env ? { ...process.env, ...env } : process.env;
    if (env) for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
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

/**
 * External mode: etcd is run by someone else; the agent connects to it, and stops/starts it
 * only through the configured commands (restores).
 */
export class ExternalMember implements LocalMember {
  readonly mode = 'external' as const;
  readonly endpoints: readonly string[];
  private known: MemberIdentity | undefined;
  private readonly probe: Probe;

  constructor(
    private readonly config: AgentConfig,
    /** How to reach etcd (TLS material); default: from the config's --etcd-cacert/--etcd-cert/--etcd-key. */
    readonly etcd: EtcdAccess = new EtcdAccess(config),
  ) {
    this.endpoints = config.etcdEndpoints;
    this.probe = new Probe(etcd);
  }

  /** Name and peer URL from etcd's member list (the member serving the first endpoint); the flags otherwise. */
  async identity(): Promise<MemberIdentity> {
    if (this.known) return this.known;
    const endpoint = this.endpoints[0] as string;
    const fallback = { name: this.config.etcdName, clientUrl: endpoint, peerUrl: this.config.etcdPeerUrl };
    let client: EtcdClient | undefined;
    try {
      client = await this.etcd.connect({ endpoints: [endpoint], dialTimeoutMs: 3000, requestTimeoutMs: 3000 });
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
