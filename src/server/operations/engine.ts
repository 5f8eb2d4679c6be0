import type { Phase } from '../../core/api.js';
import { EtcdsnapError, isAbortError, toEtcdsnapError } from '../../core/errors.js';
import { operationRunning } from '../clusters.js';
import type { ServerContext } from '../context.js';
import { newId } from '../crypto.js';
import { getCluster, listNodes } from '../db/clusters.js';
import * as ops from '../db/operations.js';
import type { OperationRow, StepRow } from '../db/operations.js';
import { deleteOperationTasks, insertTaskOnce, listOperationTasks } from '../db/tasks.js';
import { sealTaskSpec } from '../plans.js';
import { operationViews } from '../views.js';
import type { Failure, OperationKind, PhaseContext, PhaseOutcome } from './types.js';

const TERMINAL: ReadonlySet<string> = new Set<Phase>(['Finished', 'Failed']);
/** Transitions one evaluation may make before it yields (a phase function that never waits is a bug). */
const MAX_STEPS_PER_EVAL = 8;
/** Consecutive unexpected errors of one operation before it is failed as INTERNAL. */
const MAX_ERRORS = 10;

/**
 * Runs operations: at most one per cluster (a unique index on `running_cluster_id` says so
 * even to a second server), each advanced by its kind's phase functions on every tick and
 * whenever something relevant happens (`kick`). State lives in the database, so a restarted
 * server resumes every operation that had not ended.
 */
export class OperationEngine {
  private readonly kinds = new Map<string, OperationKind>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly errors = new Map<string, number>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private kickScheduled = false;

  constructor(private readonly ctx: () => ServerContext) {}

  register(kind: OperationKind): this {
    this.kinds.set(kind.kind, kind);
    return this;
  }

  /** Creates an operation in `Started`; OPERATION_RUNNING (409) while another one runs on the cluster. */
  async start(kind: OperationKind['kind'], clusterId: string, params: Record<string, unknown>): Promise<OperationRow> {
    const ctx = this.ctx();
    const spec = this.kinds.get(kind);
    if (!spec) throw new EtcdsnapError('INTERNAL', `No operation kind "${kind}" is registered.`);
    const now = ctx.now();
    const row: OperationRow = {
      id: newId('op'),
      cluster_id: clusterId,
      running_cluster_id: clusterId,
      kind,
      phase: 'Started',
      params: JSON.stringify(params),
      data: '{}',
      message: `${spec.describe(params)} requested`,
      failure: null,
      created_at: now,
      updated_at: now,
      finished_at: null,
    };
    await ctx.db.transaction().execute(async (tx) => {
      if (!(await getCluster(tx, clusterId))) throw new EtcdsnapError('NOT_FOUND', `Cluster ${clusterId} not found.`, { details: { clusterId } });
      const running = await ops.getRunningOperation(tx, clusterId);
      if (running) throw operationRunning(running.id, clusterId);
      await ops.insertOperation(tx, row);
      await ops.appendHistory(tx, row.id, now, 'Started', row.message as string);
    });
    ctx.log.info({ operationId: row.id, clusterId, kind }, 'operation started');
    await this.publish(row.id);
    return row;
  }

  /** Advances one operation as far as it goes now; concurrent calls for the same operation share one run. */
  evaluate(id: string): Promise<void> {
    const running = this.inflight.get(id);
    if (running) return running;
    const p = this.run(id).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  /** Re-evaluates every operation soon (coalesced): after a report, a plan change, a node removal. */
  kick(): void {
    if (this.kickScheduled || this.abort.signal.aborted) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.tick();
    });
  }

  async tick(): Promise<void> {
    if (this.abort.signal.aborted) return;
    try {
      const active = await ops.listActiveOperations(this.ctx().db);
      await Promise.all(active.map((o) => this.evaluate(o.id)));
    } catch (err) {
      if (!this.abort.signal.aborted) this.ctx().log.error({ err }, 'operation tick failed');
    }
  }

  /** Starts the tick loop (and resumes operations a previous server left running). */
  startLoop(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.ctx().config.tickMs);
    this.timer.unref();
    this.kick();
  }

  /** Stops ticking, aborts phase functions, waits for running evaluations. Operations stay as they are in the database. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await Promise.allSettled([...this.inflight.values()]);
  }

  private async run(id: string): Promise<void> {
    for (let i = 0; i < MAX_STEPS_PER_EVAL && !this.abort.signal.aborted; i++) {
      const ctx = this.ctx();
      const op = await ops.getOperation(ctx.db, id);
      if (!op || TERMINAL.has(op.phase)) return;
      const spec = this.kinds.get(op.kind);
      const pc = await this.phaseContext(op);
      let outcome: PhaseOutcome;
      const failing = pc?.data.failing as Failure | undefined;
      try {
        // A failing operation (rolling back) runs its kind's clean-up, never its phases again.
        if (failing) outcome = { kind: 'fail', failure: failing };
        else if (!pc) outcome = { kind: 'fail', failure: { node: null, code: 'NOT_FOUND', message: `Cluster ${op.cluster_id} is gone.` } };
        else if (!spec) outcome = { kind: 'fail', failure: { node: null, code: 'INTERNAL', message: `This server does not know operations of kind "${op.kind}".` } };
        else {
          const fn = spec.phases[op.phase as Phase];
          outcome = fn ? await fn(pc) : { kind: 'fail', failure: { node: null, code: 'INTERNAL', message: `Kind ${op.kind} has no phase ${op.phase}.` } };
        }
        this.errors.delete(id);
      } catch (err) {
        if (this.abort.signal.aborted || isAbortError(err)) return;
        const n = (this.errors.get(id) ?? 0) + 1;
        this.errors.set(id, n);
        ctx.log.warn({ err, operationId: id, phase: op.phase, attempt: n }, 'phase function failed; retrying at the next tick');
        if (n < MAX_ERRORS) return;
        const e = toEtcdsnapError(err);
        outcome = { kind: 'fail', failure: { node: null, code: e.code, message: `${op.phase} failed ${n} times in a row: ${e.message}` } };
        this.errors.delete(id);
      }
      if (outcome.kind === 'wait') {
        if (pc?.dirty) await this.publish(id);
        return;
      }
      if (outcome.kind === 'next') await this.transition(op, outcome.phase, outcome.message);
      else if (!(await this.fail(op, spec, pc, { ...outcome.failure, rolledBack: outcome.failure.rolledBack ?? false }))) {
        if (pc?.dirty) await this.publish(id);
        return;
      }
      await this.publish(id);
    }
  }

  private async transition(op: OperationRow, phase: Exclude<Phase, 'Failed'>, message: string): Promise<void> {
    const ctx = this.ctx();
    const now = ctx.now();
    const done = phase === 'Finished';
    await ctx.db.transaction().execute(async (tx) => {
      await ops.updateOperation(tx, op.id, { phase, message, updated_at: now, ...(done ? { finished_at: now, running_cluster_id: null } : {}) });
      await ops.appendHistory(tx, op.id, now, phase, message);
    });
    ctx.log.info({ operationId: op.id, clusterId: op.cluster_id, from: op.phase, to: phase }, message);
    if (done) ctx.metrics.operations.inc({ kind: op.kind, result: 'Finished' });
  }

  /**
   * Runs the kind's clean-up and marks the operation Failed once it returns the final failure.
   * Returns false while the clean-up waits (the operation stays running, "rolling back") or
   * threw (retried at the next tick).
   */
  private async fail(op: OperationRow, spec: OperationKind | undefined, pc: (PhaseContext & { dirty: boolean }) | undefined, failure: Failure): Promise<boolean> {
    const ctx = this.ctx();
    let final = failure;
    if (spec?.onFail && pc) {
      const first = pc.data.failing === undefined;
      // Remembered before the clean-up starts: a restarted server goes on rolling back.
      if (first) await pc.setData({ failing: failure });
      let result: Failure | 'wait';
      try {
        result = await spec.onFail(pc, failure);
      } catch (err) {
        if (this.abort.signal.aborted || isAbortError(err)) return false;
        ctx.log.error({ err, operationId: op.id }, 'clean-up of a failed operation failed; retrying at the next tick');
        return false;
      }
      if (result === 'wait') {
        if (first) {
          const now = ctx.now();
          const message = `${op.phase}: rolling back: ${failure.message}`;
          await ctx.db.transaction().execute(async (tx) => {
            await ops.updateOperation(tx, op.id, { message, updated_at: now });
            await ops.appendHistory(tx, op.id, now, op.phase, message);
          });
          ctx.log.warn({ operationId: op.id, clusterId: op.cluster_id, phase: op.phase, node: failure.node, code: failure.code }, `operation failing, rolling back: ${failure.message}`);
          pc.dirty = true;
        }
        return false;
      }
      final = result;
    }
    const now = ctx.now();
    const message = `${op.phase}: ${final.message}`;
    await ctx.db.transaction().execute(async (tx) => {
      await ops.updateOperation(tx, op.id, { phase: 'Failed', message, failure: JSON.stringify(final), updated_at: now, finished_at: now, running_cluster_id: null });
      await ops.appendHistory(tx, op.id, now, 'Failed', message);
    });
    ctx.log.warn({ operationId: op.id, clusterId: op.cluster_id, phase: op.phase, node: final.node, code: final.code }, `operation failed: ${final.message}`);
    ctx.metrics.operations.inc({ kind: op.kind, result: 'Failed' });
    return true;
  }

  private async publish(id: string): Promise<void> {
    const ctx = this.ctx();
    const row = await ops.getOperation(ctx.db, id);
    if (!row) return;
    const [operation] = await operationViews(ctx, [row]);
    if (operation) ctx.events.publish({ type: 'operation', operation });
  }

  private async phaseContext(op: OperationRow): Promise<(PhaseContext & { dirty: boolean }) | undefined> {
    const ctx = this.ctx();
    const cluster = await getCluster(ctx.db, op.cluster_id);
    if (!cluster) return undefined;
    const nodes = await listNodes(ctx.db, op.cluster_id);
    const steps = new Map<string, StepRow>((await ops.listSteps(ctx.db, [op.id])).map((s) => [s.node, s]));
    const data = JSON.parse(op.data) as Record<string, unknown>;
    const now = ctx.now();
    const pc: PhaseContext & { dirty: boolean } = {
      ctx,
      op,
      params: JSON.parse(op.params) as Record<string, unknown>,
      data,
      cluster,
      nodes,
      now,
      signal: this.abort.signal,
      dirty: false,
      async setData(patch) {
        Object.assign(data, patch);
        await ops.updateOperation(ctx.db, op.id, { data: JSON.stringify(data), updated_at: ctx.now() });
      },
      async setStep(node, state, message) {
        const old = steps.get(node);
        if (old && old.state === state && old.message === message) return;
        const row: StepRow = { operation_id: op.id, node, state, message, updated_at: ctx.now() };
        await ops.upsertStep(ctx.db, row);
        steps.set(node, row);
        pc.dirty = true;
      },
      async dispatch(node, task) {
        await insertTaskOnce(ctx.db, {
          id: task.id,
          cluster_id: op.cluster_id,
          node_id: node.id,
          operation_id: op.id,
          kind: task.kind,
          spec: sealTaskSpec(ctx.keyring, task),
          state: 'pending',
          message: null,
          code: null,
          started_at: null,
          finished_at: null,
          created_at: ctx.now(),
          result: null,
        });
        ctx.plans.notify(op.cluster_id);
      },
      tasks: () => listOperationTasks(ctx.db, op.id),
      async clearTasks() {
        if ((await deleteOperationTasks(ctx.db, op.id)).length > 0) ctx.plans.notify(op.cluster_id);
      },
      async note(message) {
        await ops.appendHistory(ctx.db, op.id, ctx.now(), op.phase, message);
        pc.dirty = true;
      },
      silentFor(node) {
        return now - Math.max(node.last_seen_at ?? node.registered_at, ctx.startedAt);
      },
    };
    return pc;
  }
}
