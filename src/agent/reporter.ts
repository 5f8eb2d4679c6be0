import { isEtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AgentReport, SnapshotReport } from '../core/plans.js';
import type { Backoff } from './backoff.js';
import type { StateStore } from './state.js';

export type ReportBase = Omit<AgentReport, 'snapshots' | 'deleted'>;

export interface ReporterOptions {
  state: StateStore;
  /** POSTs a report; throws EtcdsnapError (UNAUTHORIZED, SERVER_REJECTED, SERVER_UNREACHABLE…). */
  send: (report: AgentReport, signal: AbortSignal) => Promise<unknown>;
  /** Everything but the queued snapshots and deletions (member status, tasks, plan id…). */
  base: () => Promise<ReportBase>;
  /** Heartbeat period. */
  intervalMs: number;
  /** Delays after failures (capped at the interval). */
  backoff: Backoff;
  /** The node token was refused: register again (resolves once registered or aborted). */
  onUnauthorized: (signal: AbortSignal) => Promise<void>;
  logger?: Logger;
  /** Called after every accepted report. */
  onDelivered?: () => void;
  /** Snapshot reports per request. Default 100 (the protocol allows 1000). */
  maxBatch?: number;
  /** Approximate JSON bytes of snapshot reports per request. Default 4 MiB. */
  maxBatchBytes?: number;
}

/** Deletions per request (the protocol's limit). */
const MAX_DELETED = 1000;

/**
 * Delivers reports: after every change (`notify`) and at least every `intervalMs` as a
 * heartbeat. Snapshot reports and deleted locations go through an outbox in the state file:
 * queued on disk before anything else, removed only once the server accepted them, so they
 * survive an unreachable server and agent restarts and arrive, in order, when it is back.
 */
export class Reporter {
  private notified = false;
  private wake: (() => void) | null = null;
  private batchLimit: number;
  /** Last accepted report. */
  lastDelivered: Date | null = null;
  /** Called after every accepted report (default: the option). */
  onDelivered: (() => void) | undefined;
  /** The last attempt failed (for logging once per outage). */
  private failing = false;

  constructor(private readonly o: ReporterOptions) {
    this.batchLimit = o.maxBatch ?? 100;
    this.onDelivered = o.onDelivered;
  }

  /** Queues on disk, then asks for a report. */
  async enqueue(out: { snapshots?: SnapshotReport[]; deleted?: string[] }): Promise<void> {
    if (!out.snapshots?.length && !out.deleted?.length) return;
    await this.o.state.update((s) => {
      for (const report of out.snapshots ?? []) s.outbox.snapshots.push({ seq: ++s.outbox.seq, report });
      for (const location of out.deleted ?? []) s.outbox.deleted.push({ seq: ++s.outbox.seq, location });
    });
    this.notify();
  }

  /** Something changed: report now (coalesced). */
  notify(): void {
    this.notified = true;
    this.wake?.();
  }

  /** Snapshot reports and deletions not yet accepted by the server. */
  get queued(): number {
    const { outbox } = this.o.state.state;
    return outbox.snapshots.length + outbox.deleted.length;
  }

  /** Reports until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delay = this.o.intervalMs;
      try {
        await this.sendAll(signal);
        this.o.backoff.reset();
        this.onDelivered?.();
        if (this.failing) this.o.logger?.info({ delivered: this.lastDelivered }, 'reports delivered again');
        this.failing = false;
      } catch (err) {
        if (signal.aborted) break;
        const e = toEtcdsnapError(err);
        if (e.code === 'UNAUTHORIZED') await this.o.onUnauthorized(signal);
        delay = Math.min(this.o.backoff.next(), this.o.intervalMs);
        this.o.logger?.[this.failing ? 'debug' : 'warn']({ code: e.code, err: e.message, queued: this.queued, retryInMs: delay }, 'report not delivered; queued');
        this.failing = true;
      }
      await this.pause(delay, signal);
    }
  }

  /** Sends the outbox in batches (at least one report: the heartbeat). */
  private async sendAll(signal: AbortSignal): Promise<void> {
    for (;;) {
      const { outbox } = this.o.state.state;
      const snaps = this.batch(outbox.snapshots);
      // One entry at a time after a refusal (see below); deletions are small, otherwise all go.
      const single = this.batchLimit === 1;
      const dels = single ? (snaps.length > 0 ? [] : outbox.deleted.slice(0, 1)) : outbox.deleted.slice(0, MAX_DELETED);
      const report: AgentReport = { ...(await this.o.base()), snapshots: snaps.map((q) => q.report), deleted: dels.map((q) => q.location) };
      try {
        await this.o.send(report, signal);
      } catch (err) {
        if (!isEtcdsnapError(err, 'SERVER_REJECTED') || snaps.length + dels.length === 0) throw err;
        if (snaps.length + dels.length > 1) {
          // One bad entry must not hold back the others: retry them one by one.
          this.batchLimit = 1;
          continue;
        }
        // Alone and refused: if a report without it is accepted, the entry is what the server refuses.
        await this.o.send({ ...report, snapshots: [], deleted: [] }, signal);
        this.o.logger?.error({ err: err.message, dropped: report.snapshots.map((r) => r.location), deleted: report.deleted }, 'the server refused a report entry; dropping it');
      }
      this.lastDelivered = new Date();
      const sent = new Set([...snaps, ...dels].map((q) => q.seq));
      await this.o.state.update((s) => {
        s.outbox.snapshots = s.outbox.snapshots.filter((q) => !sent.has(q.seq));
        s.outbox.deleted = s.outbox.deleted.filter((q) => !sent.has(q.seq));
      });
      const rest = this.o.state.state.outbox;
      if (rest.snapshots.length === 0 && rest.deleted.length === 0) {
        this.batchLimit = this.o.maxBatch ?? 100;
        return;
      }
    }
  }

  private batch<T extends { report: SnapshotReport }>(queue: T[]): T[] {
    const max = this.o.maxBatchBytes ?? 4 * 1024 * 1024;
    const out: T[] = [];
    let bytes = 0;
    for (const q of queue) {
      if (out.length >= this.batchLimit) break;
      const size = JSON.stringify(q.report).length;
      if (out.length > 0 && bytes + size > max) break;
      out.push(q);
      bytes += size;
    }
    return out;
  }

  /** Waits `ms`, or less when notified or aborted. */
  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    if (!this.notified) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = null;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener('abort', done, { once: true });
        this.wake = done;
      });
    }
    this.notified = false;
  }
}
