import { parseSchedule, type Schedule } from '../core/schedule.js';
import type { Logger } from '../core/log.js';

/** Time and timers, injectable so tests drive the scheduler without waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** setTimeout's limit (~24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SchedulerOptions {
  /** Random delay added to every run, 0…jitterMs. */
  jitterMs: number;
  /** Takes the recurring snapshot of `slot` (the schedule's time, before jitter). */
  run: (slot: Date) => Promise<void>;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
}

export interface ScheduleSpec {
  enabled: boolean;
  schedule: string;
}

/**
 * The recurring schedule of one agent, from the plan's policy: runs `run(slot)` at every
 * slot of the schedule plus a random jitter. Runs never overlap (the next run is armed only
 * once the last one finished; slots missed meanwhile are skipped, like cron), and a changed
 * schedule re-arms at once. Keeps going without a server: it only needs the last plan.
 */
export class Scheduler {
  private readonly clock: Clock;
  private readonly random: () => number;
  private schedule: Schedule | null = null;
  private key: string | null = null;
  private timer: unknown;
  /** Slot and fire time of the next run. */
  private pending: { slot: number; fireAt: number } | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
  }

  /** Applies a policy (null: no plan yet, or snapshots off). Same schedule: nothing changes. */
  update(spec: ScheduleSpec | null): void {
    const key = spec?.enabled ? spec.schedule : null;
    if (key === this.key || this.stopped) return;
    this.key = key;
    this.disarm();
    this.schedule = null;
    if (key === null) return;
    try {
      this.schedule = parseSchedule(key);
    } catch (err) {
      this.o.logger?.error({ err, schedule: key }, 'the plan has an invalid schedule: no recurring snapshots until it changes');
      return;
    }
    if (!this.running) this.arm(this.clock.now());
  }

  /** When the next run starts (jitter included), or null. */
  get nextAt(): Date | null {
    return this.pending ? new Date(this.pending.fireAt) : null;
  }

  /** A run is in progress. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** No more runs; waits for one in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    await this.running;
  }

  /** Arms the first slot strictly after `after` (ms). */
  private arm(after: number): void {
    if (!this.schedule || this.stopped) return;
    let slot: number;
    try {
      slot = this.schedule.next(new Date(after)).getTime();
    } catch (err) {
      this.o.logger?.error({ err }, 'the schedule has no next run');
      return;
    }
    const jitter = this.o.jitterMs > 0 ? Math.floor(this.random() * this.o.jitterMs) : 0;
    this.pending = { slot, fireAt: slot + jitter };
    this.wait();
  }

  private wait(): void {
    if (!this.pending) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, this.pending.fireAt - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    this.timer = undefined;
    const p = this.pending;
    if (!p || this.stopped) return;
    // Timers may fire early (clock adjustments) or be re-armed for long waits.
    if (this.clock.now() < p.fireAt) return this.wait();
    const schedule = this.schedule;
    // Next slot known at once, so `nextAt` stays meaningful during the run.
    this.arm(p.slot);
    this.disarm(false);
    this.running = this.o
      .run(new Date(p.slot))
      .catch((err: unknown) => this.o.logger?.error({ err }, 'recurring snapshot failed'))
      .finally(() => {
        this.running = null;
        if (this.stopped || this.schedule !== schedule) {
          // update() changed the schedule during the run: arm it now.
          if (!this.stopped && this.schedule && !this.timer) this.arm(this.clock.now());
          return;
        }
        const next = this.pending;
        // Skip slots that passed during the run.
        if (!next || next.fireAt <= this.clock.now()) this.arm(Math.max(this.clock.now(), p.slot));
        else this.wait();
      });
  }

  /** Clears the timer; with `forget`, also the pending slot. */
  private disarm(forget = true): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (forget) this.pending = null;
  }
}
