/**
 * Cluster health the way `etcdctl endpoint health --cluster` sees it: every member in the
 * member list, reached by its own client URLs, must answer Status and a linearizable read
 * within the timeout, and there must be a leader.
 */
import { EtcdsnapError, isEtcdsnapError } from '../core/errors.js';
import { describeError } from './errors.js';
import type { ClusterHealth, EndpointStatus, MemberHealth, MemberInfo } from './types.js';

/** The calls a health check needs; EtcdClient provides them. */
export interface HealthProbe {
  readonly endpoints: readonly string[];
  members(): Promise<MemberInfo[]>;
  status(endpoint: string, timeoutMs: number): Promise<EndpointStatus>;
  /** A linearizable read (needs the leader and a quorum) on that one member. */
  linearizableRead(endpoint: string, timeoutMs: number): Promise<void>;
}

function detailOf(err: unknown): string {
  if (isEtcdsnapError(err) && typeof err.details?.detail === 'string') return err.details.detail;
  return describeError(err);
}

async function checkMember(probe: HealthProbe, member: MemberInfo, timeoutMs: number): Promise<MemberHealth> {
  const label = `member ${member.name || member.id}`;
  const base = { name: member.name, id: member.id };
  if (member.clientURLs.length === 0) {
    const peer = member.peerURLs.join(', ');
    return { ...base, endpoint: '', healthy: false, error: `${label} (peer ${peer}) has not started yet: it has no client URLs` };
  }
  let firstFailure: { endpoint: string; error: string; status?: EndpointStatus } | undefined;
  for (const endpoint of member.clientURLs) {
    let status: EndpointStatus | undefined;
    try {
      status = await probe.status(endpoint, timeoutMs);
      const problems: string[] = [];
      if (status.leaderId === '0') problems.push('knows no leader');
      if (status.errors.length > 0) problems.push(`reports ${status.errors.join(', ')}`);
      // A learner does not serve linearizable reads; its status answering is its health.
      if (problems.length === 0 && !member.isLearner) await probe.linearizableRead(endpoint, timeoutMs);
      if (problems.length > 0) return { ...base, endpoint, healthy: false, error: `${label} (${endpoint}) ${problems.join(' and ')}`, status };
      return { ...base, endpoint, healthy: true, status };
    } catch (err) {
      const what = isEtcdsnapError(err, 'ETCD_UNREACHABLE')
        ? status
          ? 'did not answer a linearizable read in time (no quorum?)'
          : 'is unreachable'
        : status
          ? 'failed a linearizable read'
          : 'is unhealthy';
      firstFailure ??= { endpoint, error: `${label} (${endpoint}) ${what}: ${detailOf(err)}`, ...(status ? { status } : {}) };
    }
  }
  // The loop ran at least once (clientURLs is not empty) and every pass failed.
  return { ...base, healthy: false, ...firstFailure! };
}

/** The leader most members agree on ('0' and unknown ids ignored). */
function pickLeader(members: MemberHealth[]): string | undefined {
  const votes = new Map<string, number>();
  for (const m of members) {
    const leader = m.status?.leaderId;
    if (leader && leader !== '0') votes.set(leader, (votes.get(leader) ?? 0) + 1);
  }
  let best: string | undefined;
  for (const [id, n] of votes) if (best === undefined || n > votes.get(best)!) best = id;
  return best;
}

/**
 * Checks every member. Throws ETCD_UNREACHABLE only when nothing answers at all; a partly
 * down cluster is a result with `healthy: false` and one reason per problem.
 */
export async function checkClusterHealth(probe: HealthProbe, timeoutMs: number): Promise<ClusterHealth> {
  let list: MemberInfo[];
  try {
    list = await probe.members();
  } catch (err) {
    if (!isEtcdsnapError(err, 'ETCD_UNREACHABLE')) throw err;
    throw unreachable(probe.endpoints, detailOf(err), err);
  }
  const members = await Promise.all(list.map((m) => checkMember(probe, m, timeoutMs)));
  if (members.length > 0 && members.every((m) => !m.status)) {
    throw unreachable(
      members.map((m) => m.endpoint),
      members.map((m) => m.error).join('; '),
    );
  }
  const leaderId = pickLeader(members);
  const reasons = members.filter((m) => !m.healthy).map((m) => m.error ?? `member ${m.name || m.id} is unhealthy`);
  if (!leaderId) reasons.push('no member knows a leader: the cluster has lost quorum or is electing one');
  else if (!members.some((m) => m.id === leaderId)) reasons.push(`the leader ${leaderId} is not in the member list`);
  return {
    healthy: reasons.length === 0,
    ...(leaderId ? { leaderId } : {}),
    memberCount: members.length,
    members,
    reasons,
  };
}

function unreachable(endpoints: readonly string[], detail: string, cause?: unknown): EtcdsnapError {
  return new EtcdsnapError(
    'ETCD_UNREACHABLE',
    `No etcd endpoint answered (${endpoints.join(', ')}): ${detail}. Check that the endpoints are right and that etcd is running.`,
    { cause, details: { endpoints: [...endpoints], detail } },
  );
}
