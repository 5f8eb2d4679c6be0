import type { Logger } from '../core/log.js';
import type { MemberStatus } from '../core/plans.js';
import type { AgentConfig } from './config.js';
import { EtcdAccess } from './etcd-access.js';
import { ExternalMember } from './member-external.js';
import { ManagedMember } from './member-managed.js';

export { ExternalMember, runCommand } from './member-external.js';
export { ManagedMember } from './member-managed.js';

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
  /** How to connect to etcd (TLS material included): every agent connection goes through it. */
  readonly etcd: EtcdAccess;
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

export function createMember(config: AgentConfig, logger: Logger, etcd = new EtcdAccess(config, logger)): LocalMember {
  return config.mode === 'managed' ? new ManagedMember(config, logger, etcd) : new ExternalMember(config, etcd);
}
