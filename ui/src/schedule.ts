/**
 * Schedule preview in the browser with the server's own parser (src/core/schedule.ts, bundled
 * with croner), so the form says exactly what the server will accept.
 */
import { parseSchedule } from '../../src/core/schedule.ts';

export interface SchedulePreview {
  ok: boolean;
  /** Plain words ("every 12 hours", "cron 0 *\/5 * * * (UTC)"), or the reason it is invalid. */
  text: string;
  next: Date[];
}

export function previewSchedule(expression: string, now = new Date()): SchedulePreview {
  try {
    const s = parseSchedule(expression);
    return { ok: true, text: s.describe(), next: s.nextRuns(3, now) };
  } catch (err) {
    return { ok: false, text: (err as Error).message, next: [] };
  }
}

/** The longest gap between the next runs (ms), e.g. 5 h for "0 *\/5 * * *"; undefined when invalid. */
export function schedulePeriod(expression: string, now = new Date()): number | undefined {
  try {
    const runs = parseSchedule(expression).nextRuns(6, now);
    let longest = 0;
    for (let i = 1; i < runs.length; i++) longest = Math.max(longest, (runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime());
    return longest > 0 ? longest : undefined;
  } catch {
    return undefined;
  }
}
