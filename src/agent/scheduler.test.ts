import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Scheduler, type Clock } from './scheduler.js';

/** A clock whose time moves only when the test says so; due timers fire in time order. */
class FakeClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward, firing due timers (and letting their promise chains settle). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

describe('Scheduler', () => {
  it('fires at every slot of the schedule, with the slot time, and reports the next run', async () => {
    const clock = new FakeClock(T0 + 500);
    const slots: number[] = [];
    const s = new Scheduler({ jitterMs: 0, clock, run: async (slot) => void slots.push(slot.getTime()) });
    s.update({ enabled: true, schedule: '@every 2s' });
    assert.equal(s.nextAt?.getTime(), T0 + 2000);
    await clock.advance(7000);
    assert.deepEqual(slots, [T0 + 2000, T0 + 4000, T0 + 6000]);
    assert.equal(s.nextAt?.getTime(), T0 + 8000);
    await s.stop();
  });

  it('cron with seconds: */2 * * * * *', async () => {
    const clock = new FakeClock(T0 + 100);
    const slots: number[] = [];
    const s = new Scheduler({ jitterMs: 0, clock, run: async (slot) => void slots.push(slot.getTime() - T0) });
    s.update({ enabled: true, schedule: '*/2 * * * * *' });
    await clock.advance(6000);
    assert.deepEqual(slots, [2000, 4000, 6000]);
    await s.stop();
  });

  it('adds jitter within [0, jitterMs) but passes the slot time', async () => {
    const clock = new FakeClock(T0);
    const calls: Array<{ slot: number; at: number }> = [];
    const s = new Scheduler({ jitterMs: 1000, random: () => 0.75, clock, run: async (slot) => void calls.push({ slot: slot.getTime(), at: clock.now() }) });
    s.update({ enabled: true, schedule: '@every 10s' });
    assert.equal(s.nextAt?.getTime(), T0 + 10_750);
    await clock.advance(10_749);
    assert.equal(calls.length, 0);
    await clock.advance(1);
    assert.deepEqual(calls, [{ slot: T0 + 10_000, at: T0 + 10_750 }]);
    await s.stop();
  });

  it('never overlaps: a run longer than the interval skips the slots it covered', async () => {
    const clock = new FakeClock(T0);
    const starts: number[] = [];
    let release!: () => void;
    let active = 0;
    let maxActive = 0;
    const s = new Scheduler({
      jitterMs: 0,
      clock,
      run: async () => {
        starts.push(clock.now() - T0);
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => (release = r));
        active -= 1;
      },
    });
    s.update({ enabled: true, schedule: '@every 1s' });
    await clock.advance(1000); // first run starts at 1 s and hangs
    await clock.advance(3500); // 2 s, 3 s, 4 s pass while it runs
    assert.deepEqual(starts, [1000]);
    assert.equal(s.busy, true);
    release();
    await clock.advance(0);
    await clock.advance(1000); // 4.5 s → next slot 5 s
    assert.deepEqual(starts, [1000, 5000]);
    assert.equal(maxActive, 1);
    release();
    await s.stop();
  });

  it('re-arms when the schedule changes, stops when disabled, ignores an unchanged policy', async () => {
    const clock = new FakeClock(T0);
    const slots: number[] = [];
    const s = new Scheduler({ jitterMs: 0, clock, run: async (slot) => void slots.push(slot.getTime() - T0) });
    s.update({ enabled: true, schedule: '@every 1h' });
    assert.equal(s.nextAt?.getTime(), T0 + 3_600_000);
    s.update({ enabled: true, schedule: '@every 5s' });
    assert.equal(s.nextAt?.getTime(), T0 + 5000);
    await clock.advance(5000);
    s.update({ enabled: true, schedule: '@every 5s' }); // same: keeps the armed slot
    assert.equal(s.nextAt?.getTime(), T0 + 10_000);
    s.update({ enabled: false, schedule: '@every 5s' });
    assert.equal(s.nextAt, null);
    assert.equal(clock.pending, 0);
    await clock.advance(60_000);
    assert.deepEqual(slots, [5000]);
    s.update(null);
    assert.equal(s.nextAt, null);
    await s.stop();
  });

  it('a schedule changed during a run is armed once the run ends', async () => {
    const clock = new FakeClock(T0);
    let release!: () => void;
    const slots: number[] = [];
    const s = new Scheduler({
      jitterMs: 0,
      clock,
      run: async (slot) => {
        slots.push(slot.getTime() - T0);
        await new Promise<void>((r) => (release = r));
      },
    });
    s.update({ enabled: true, schedule: '@every 2s' });
    await clock.advance(2000);
    s.update({ enabled: true, schedule: '@every 10s' });
    assert.equal(s.nextAt?.getTime(), undefined, 'nothing armed while the old run goes on');
    await clock.advance(500);
    release();
    await clock.advance(0);
    assert.equal(s.nextAt?.getTime(), T0 + 10_000);
    await clock.advance(8000);
    assert.deepEqual(slots, [2000, 10_000]);
    release();
    await s.stop();
  });

  it('an invalid schedule arms nothing (and is logged), a failing run does not stop the schedule', async () => {
    const clock = new FakeClock(T0);
    let calls = 0;
    const s = new Scheduler({
      jitterMs: 0,
      clock,
      run: async () => {
        calls += 1;
        throw new Error('boom');
      },
    });
    s.update({ enabled: true, schedule: 'not a schedule' });
    assert.equal(s.nextAt, null);
    s.update({ enabled: true, schedule: '@every 1s' });
    await clock.advance(3000);
    assert.equal(calls, 3);
    await s.stop();
    await clock.advance(3000);
    assert.equal(calls, 3, 'no run after stop()');
  });

  it('waits longer than setTimeout allows by re-arming', async () => {
    const clock = new FakeClock(T0);
    let calls = 0;
    const s = new Scheduler({ jitterMs: 0, clock, run: async () => void (calls += 1) });
    s.update({ enabled: true, schedule: '@every 30d' });
    const next = s.nextAt!.getTime();
    await clock.advance(next - T0 - 1);
    assert.equal(calls, 0);
    await clock.advance(1);
    assert.equal(calls, 1);
    await s.stop();
  });
});
