import { ERROR_CODES, EtcdsnapError, type ErrorCode } from '../../core/errors.js';
import { ON_DEMAND_BASE } from '../../core/names.js';
import type { SnapshotTask } from '../../core/plans.js';
import type { TaskContext, TaskResult } from './types.js';

function knownCode(code: string | undefined): ErrorCode {
  return code !== undefined && code in ERROR_CODES ? (code as ErrorCode) : 'INTERNAL';
}

/**
 * A one-time snapshot (`on-demand-<node>-<unix>` or the task's base): local, and S3 when the
 * policy has it. Never pruned. Every location is reported, stored or failed; the task fails
 * when any target failed (the stored copies stay, and are reported).
 */
export async function snapshotTask(task: SnapshotTask, ctx: TaskContext): Promise<TaskResult> {
  const out = await ctx.snapshots.take(ctx.plan, { base: task.base ?? ON_DEMAND_BASE, kind: 'on-demand', retention: false, taskId: task.id, signal: ctx.signal });
  await ctx.record({ snapshots: out.reports });
  if (out.error) throw out.error;
  const stored = out.reports.filter((r) => r.state === 'successful').map((r) => r.location);
  const failed = out.reports.filter((r) => r.state === 'failed');
  const first = failed[0];
  if (first) {
    throw new EtcdsnapError(
      knownCode(first.code),
      `Snapshot ${out.name} was stored at ${stored.join(', ')} but failed at ${failed.map((f) => `${f.location} (${f.code ?? 'error'}: ${f.message ?? ''})`).join('; ')}`,
    );
  }
  return { message: `Snapshot ${out.name} stored at ${stored.join(', ')}.` };
}
