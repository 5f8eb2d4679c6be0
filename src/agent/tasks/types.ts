import type { Logger } from '../../core/log.js';
import type { NodePlan, SnapshotReport, Task } from '../../core/plans.js';
import type { LocalTarget } from '../../storage/local.js';
import type { AgentConfig } from '../config.js';
import type { LocalMember } from '../member.js';
import type { SnapshotWorker } from '../snapshots.js';
import type { StateStore } from '../state.js';
import type { TransferService } from '../transfer.js';

/** What a task handler gets: the plan it runs under, this node's pieces, and a way to report. */
export interface TaskContext {
  /** The plan current when the task started (policy, cluster, version, config). */
  plan: NodePlan;
  node: string;
  local: LocalTarget;
  member: LocalMember;
  snapshots: SnapshotWorker;
  logger: Logger;
  /** Aborted when the agent stops; the task is then run again after the restart. */
  signal: AbortSignal;
  /** Queues snapshot reports and deleted locations for the server (on disk before it returns). */
  record(out: { snapshots?: SnapshotReport[]; deleted?: string[] }): Promise<void>;
  /** The agent's settings (data dirs, hooks, transfer endpoint). */
  config: AgentConfig;
  /** The agent's persisted state (restore holds, staged files). */
  state: StateStore;
  /** The restore transfer endpoint. */
  transfer: TransferService;
  /**
   * Shows how far the task got ("downloading 412 / 1024 MiB from node-1") as the running
   * task's status message, reported to the server; throttled (call it as often as you like).
   */
  progress(message: string): void;
}

/** A finished task's one-line result; failures are thrown (EtcdsnapError: code and message). */
export interface TaskResult {
  message?: string;
  /** Structured output for the server (reported in the task's status). */
  result?: Record<string, string | number | boolean>;
}

export type TaskHandler<T extends Task = Task> = (task: T, ctx: TaskContext) => Promise<TaskResult>;

/** One handler per task kind: restore tasks add their rows here. */
export type TaskHandlers = { [K in Task['kind']]: TaskHandler<Extract<Task, { kind: K }>> };
