import { Cron } from 'croner';
import { EtcdsnapError } from './errors.js';

/** Default recurring schedule: every 5 hours, on the hour (as RKE2 and Rancher). */
export const DEFAULT_SCHEDULE = '0 */5 * * *';

export interface Schedule {
  /** The expression as given. */
  readonly expression: string;
  /** Next run strictly after `after`. */
  next(after: Date): Date;
  /** The next `n` runs after `after`. */
  nextRuns(n: number, after: Date): Date[];
  /** Plain words, e.g. "every 12 hours" or "cron 0 *\/5 * * * (UTC)". */
  describe(): string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `12h`, `30m`, `1h30m`, `90s` → milliseconds. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new EtcdsnapError('INVALID_CONFIG', `Invalid duration "${text}": use e.g. 30s, 15m, 12h or 1h30m.`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] as number), 0);
}

function plainDuration(ms: number): string {
  for (const [unit, word] of [
    ['d', 'day'],
    ['h', 'hour'],
    ['m', 'minute'],
    ['s', 'second'],
  ] as const) {
    const size = UNITS[unit] as number;
    if (ms % size === 0) {
      const n = ms / size;
      return n === 1 ? `every ${word}` : `every ${n} ${word}s`;
    }
  }
  return `every ${ms} ms`;
}

class IntervalSchedule implements Schedule {
  constructor(
    readonly expression: string,
    private readonly ms: number,
  ) {}

  /** Aligned to the epoch, so every node of a cluster fires at the same moments. */
  next(after: Date): Date {
    return new Date((Math.floor(after.getTime() / this.ms) + 1) * this.ms);
  }

  nextRuns(n: number, after: Date): Date[] {
    const out: Date[] = [];
    let t = after;
    for (let i = 0; i < n; i++) out.push((t = this.next(t)));
    return out;
  }

  describe(): string {
    return plainDuration(this.ms);
  }
}

class CronSchedule implements Schedule {
  private readonly cron: Cron;

  constructor(readonly expression: string) {
    try {
      this.cron = new Cron(expression, { timezone: 'UTC', paused: true, mode: '5-or-6-parts' });
    } catch (err) {
      throw new EtcdsnapError(
        'INVALID_CONFIG',
        `Invalid schedule "${expression}": ${(err as Error).message}. Use a cron expression such as "0 */5 * * *" (minute hour day month weekday, UTC), one with seconds first, or an interval such as "@every 12h".`,
      );
    }
    if (this.cron.nextRun(new Date()) === null) {
      throw new EtcdsnapError('INVALID_CONFIG', `Schedule "${expression}" never fires: check the day and month fields.`);
    }
  }

  next(after: Date): Date {
    const d = this.cron.nextRun(after);
    if (!d) throw new EtcdsnapError('INVALID_CONFIG', `Schedule "${this.expression}" has no run after ${after.toISOString()}.`);
    return d;
  }

  nextRuns(n: number, after: Date): Date[] {
    return this.cron.nextRuns(n, after);
  }

  describe(): string {
    return `cron ${this.expression} (UTC)`;
  }
}

/**
 * Parses a schedule: a 5-field cron expression (6 with seconds first), a nickname
 * (`@hourly`, `@daily`, …) or an interval `@every <duration>` like RKE. Cron runs in UTC.
 * Throws INVALID_CONFIG with the reason and an example.
 */
export function parseSchedule(expression: string): Schedule {
  const text = expression.trim();
  if (text.length === 0) throw new EtcdsnapError('INVALID_CONFIG', 'The schedule is empty: use e.g. "0 */5 * * *" or "@every 12h".');
  const every = /^@every\s+(\S+)$/.exec(text);
  if (every) {
    const ms = parseDuration(every[1] as string);
    if (ms < 1000) throw new EtcdsnapError('INVALID_CONFIG', `Interval "${every[1]}" is too short: use at least 1s.`);
    return new IntervalSchedule(text, ms);
  }
  return new CronSchedule(text);
}
