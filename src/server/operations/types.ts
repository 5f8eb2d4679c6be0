import type { Phase } from '../../core/api.js';
import type { Task } from '../../core/plans.js';
import type { ServerContext } from '../context.js';
import type { ClusterRow, NodeRow } from '../db/clusters.js';
import type { OperationRow, StepRow } from '../db/operations.js';
import type { TaskRow } from '../db/tasks.js';

/**
 * The operations engine runs every kind of operation the same way: a persisted record with a
 * phase, a table of phase functions per kind, a tick loop that calls the current phase's
 * function until it says to move on, and an AbortSignal for shutdown. Phase functions are
 * idempotent: they may run again after a crash or restart at any point, so they read their
 * progress from the database (tasks, steps, `data`), never from memory.
 */

export interface Failure {
  /** The node at fault, if one is. */
  node: string | null;
  code: string;
  message: string;
  /** Restores: whether the cluster was put back as it was. */
  rolledBack: boolean;
}

export type PhaseOutcome =
  /** Nothing to do until something changes (a report, a timer). */
  | { kind: 'wait' }
  | { kind: 'next'; phase: Exclude<Phase, 'Failed'>; message: string }
  | { kind: 'fail'; failure: Omit<Failure, 'rolledBack'> & { rolledBack?: boolean } };

export type StepState = StepRow['state'];

/** What a phase function sees and may do. Changes go to the database at once. */
export interface PhaseContext {
  readonly ctx: ServerContext;
  readonly op: OperationRow;
  readonly params: Record<string, unknown>;
  /** The kind's own progress notes (persisted JSON). */
  readonly data: Record<string, unknown>;
  readonly cluster: ClusterRow;
  /** The cluster's nodes now. */
  readonly nodes: NodeRow[];
  readonly now: number;
  readonly signal: AbortSignal;
  setData(patch: Record<string, unknown>): Promise<void>;
  /** Per-node progress shown to the user (written only when it changed). */
  setStep(node: string, state: StepState, message: string | null): Promise<void>;
  /** Adds a task to a node's plan (once per task id) and wakes its long-poll. */
  dispatch(node: NodeRow, task: Task): Promise<void>;
  /** This operation's tasks with the status agents reported. */
  tasks(): Promise<TaskRow[]>;
  /** Removes this operation's tasks: the nodes go back to their normal plan. */
  clearTasks(): Promise<void>;
  /** A history line without a phase change. */
  note(message: string): Promise<void>;
  /** Milliseconds since the node was last seen, not counting time this server was down. */
  silentFor(node: NodeRow): number;
}

export type PhaseFn = (pc: PhaseContext) => Promise<PhaseOutcome>;

export interface OperationKind {
  readonly kind: 'snapshot' | 'restore';
  /** A phase function for every non-terminal phase the kind uses. */
  readonly phases: Partial<Record<Phase, PhaseFn>>;
  /**
   * Runs when the operation fails, from any phase, before it is marked Failed: remove tasks,
   * roll back. Idempotent (a crash may repeat it). Returns the final failure (it may refine
   * it: rolledBack, message), or `'wait'` while the clean-up needs agents: the engine then
   * keeps the operation running in its phase ("rolling back: …"), remembers the failure in
   * `data.failing`, and calls onFail again with it at every evaluation until it returns the
   * final failure. Phase functions are not called any more once an operation is failing.
   */
  onFail?(pc: PhaseContext, failure: Failure): Promise<Failure | 'wait'>;
  /** A short title for logs and history, e.g. "one-time snapshot". */
  describe(params: Record<string, unknown>): string;
}
