import { toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { NodePlan, Task, TaskStatus } from '../core/plans.js';
import type { Mutex } from './mutex.js';
import { rememberFinished, type StateStore } from './state.js';
import type { TaskContext, TaskHandler, TaskHandlers } from './tasks/index.js';

export interface TaskRunnerOptions {
  state: StateStore;
  /** Shared with the recurring schedule: tasks and scheduled snapshots never overlap. */
  mutex: Mutex;
  handlers: TaskHandlers;
  context: (plan: NodePlan, signal: AbortSignal, task: Task) => TaskContext;
  /** A status changed (report soon). */
  onChange: () => void;
  /** After every task, finished or failed (housekeeping such as the sweep of old data dirs). */
  afterTask?: () => Promise<void>;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Runs the plan's tasks one at a time, in plan order, each at most once: a finished task id
 * is remembered in the state, so a restarted agent (or a plan listing it again) does not run
 * it twice; its status is reported until the plan no longer lists it. A task interrupted by
 * the agent stopping stays `running` in the state and runs again after the restart.
 */
export class TaskRunner {
  private loop: Promise<void> | null = null;
  private again = false;

  constructor(private readonly o: TaskRunnerOptions) {}

  /** Looks at the current plan for tasks to run (call after every plan change). */
  kick(): void {
    if (this.o.signal.aborted) return;
    if (this.loop) {
      this.again = true;
      return;
    }
    this.loop = this.drain()
      .catch((err: unknown) => this.o.logger.error({ err }, 'task runner failed'))
      .finally(() => {
        this.loop = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves when no task runs. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** The statuses to report: every task of the current plan that started. */
  statuses(): TaskStatus[] {
    const s = this.o.state.state;
    return (s.plan?.tasks ?? []).flatMap((t) => (s.tasks[t.id] ? [s.tasks[t.id] as TaskStatus] : []));
  }

  private next(): Task | undefined {
    const s = this.o.state.state;
    return s.plan?.tasks.find((t) => !s.finished.includes(t.id));
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.o.signal.aborted) return;
      const task = this.next();
      if (!task) return;
      await this.o.mutex.run(() => this.runOne(task));
    }
  }

  private async runOne(task: Task): Promise<void> {
    const { state, signal, logger } = this.o;
    const plan = state.state.plan;
    // The plan may have changed while this task waited for the lock.
    if (signal.aborted || !plan || !plan.tasks.some((t) => t.id === task.id) || state.state.finished.includes(task.id)) return;
    const startedAt = new Date().toISOString();
    await state.update((s) => {
      s.tasks[task.id] = { id: task.id, state: 'running', startedAt };
    });
    this.o.onChange();
    logger.info({ task: task.id, kind: task.kind }, 'task started');
    const began = Date.now();
    let status: TaskStatus;
    try {
      const handler = this.o.handlers[task.kind] as TaskHandler;
      const result = await handler(task, this.o.context(plan, signal, task));
      status = { id: task.id, state: 'succeeded', startedAt, finishedAt: new Date().toISOString(), ...(result.message ? { message: result.message.slice(0, 4000) } : {}), ...(result.result ? { result: result.result } : {}) };
    } catch (err) {
      if (signal.aborted) return; // stopped: stays running, runs again after the restart
      const e = toEtcdsnapError(err);
      status = { id: task.id, state: 'failed', startedAt, finishedAt: new Date().toISOString(), code: e.code, message: e.message.slice(0, 4000) };
    }
    await state.update((s) => {
      rememberFinished(s, task.id);
      if (s.plan?.tasks.some((t) => t.id === task.id)) s.tasks[task.id] = status;
      else delete s.tasks[task.id];
    });
    logger.info({ task: task.id, kind: task.kind, state: status.state, code: status.code, ms: Date.now() - began }, 'task finished');
    this.o.onChange();
    await this.o.afterTask?.().catch((err: unknown) => logger.warn({ err }, 'housekeeping after a task failed'));
  }
}
