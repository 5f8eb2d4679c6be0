import type { MemberStatus } from '../core/plans.js';
import type { EtcdClient } from '../etcd/client.js';
import { agentEtcdError, type EtcdAccess } from './etcd-access.js';
import type { MemberIdentity } from './member.js';

/** Longest error text in a report (the protocol allows 4096). */
export const MAX_ERROR = 4000;

/** Status probe of one endpoint, keeping a client while it answers. */
export class Probe {
  private client: EtcdClient | undefined;

  constructor(private readonly etcd: EtcdAccess) {}

  async status(endpoint: string, base: MemberIdentity, timeoutMs: number): Promise<MemberStatus> {
    try {
      this.client ??= await this.etcd.connect({ endpoints: [endpoint], dialTimeoutMs: timeoutMs, requestTimeoutMs: timeoutMs });
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
      return { ...base, state: 'unhealthy', error: agentEtcdError(err).message.slice(0, MAX_ERROR) };
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}
