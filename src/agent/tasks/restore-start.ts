/**
 * restore-start: every node at once (members need quorum) starts its member on the restored
 * data, waits for a leader, and reads what the server compares across members.
 */
import type { RestoreStartResult, RestoreStartTask } from '../../core/plans.js';
import { agentEtcdError } from '../etcd-access.js';
import { requireHold, startMember, updateHold, waitMemberHealthy } from './restore-common.js';
import type { TaskContext, TaskResult } from './types.js';

const ALL_KEYS = { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) };

export async function restoreStartTask(task: RestoreStartTask, ctx: TaskContext): Promise<TaskResult> {
  requireHold(ctx, task.operationId, 'restore-start');
  // A restarted agent starts the member itself from now on (and this task runs again).
  await updateHold(ctx, (h) => void (h.memberStarted = true));
  ctx.progress('starting the etcd member on the restored data');
  await startMember(ctx);
  ctx.progress('waiting for the restored cluster to elect a leader');
  await waitMemberHealthy(ctx, task.timeoutMs);
  const endpoint = ctx.member.endpoints[0] as string;
  const client = await ctx.member.etcd.connect({ endpoints: [endpoint] });
  try {
    const hash = await client.hashKv(endpoint, task.revision);
    const keys = await client.countRange({ ...ALL_KEYS, revision: task.revision, endpoint });
    const status = await client.status(endpoint);
    const result: RestoreStartResult = { revision: status.revision, hashKv: hash.hash, keys };
    return { message: `The restored member is healthy at revision ${status.revision}: ${keys} keys and HashKV ${hash.hash} at revision ${task.revision}.`, result };
  } catch (err) {
    throw agentEtcdError(err);
  } finally {
    client.close();
  }
}
