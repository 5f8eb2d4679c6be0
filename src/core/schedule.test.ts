import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEtcdsnapError } from './errors.js';
import { DEFAULT_SCHEDULE, parseDuration, parseSchedule } from './schedule.js';

const at = (iso: string): Date => new Date(iso);

test('the default schedule fires every 5 hours on the hour, in UTC', () => {
  const s = parseSchedule(DEFAULT_SCHEDULE);
  assert.deepEqual(
    s.nextRuns(3, at('2026-11-25T01:30:00Z')).map((d) => d.toISOString()),
    ['2026-11-25T05:00:00.000Z', '2026-11-25T10:00:00.000Z', '2026-11-25T15:00:00.000Z'],
  );
});

test('@every intervals are aligned to the epoch', () => {
  const s = parseSchedule('@every 12h');
  assert.equal(s.next(at('2026-11-25T01:30:00Z')).toISOString(), '2026-11-25T12:00:00.000Z');
  assert.equal(s.describe(), 'every 12 hours');
  assert.equal(parseSchedule('@every 2s').next(at('2026-11-25T00:00:01.500Z')).toISOString(), '2026-11-25T00:00:02.000Z');
  assert.equal(parseDuration('1h30m'), 5_400_000);
});

test('six fields mean seconds first (for tests and fast schedules)', () => {
  const s = parseSchedule('*/2 * * * * *');
  assert.equal(s.next(at('2026-11-25T00:00:01Z')).toISOString(), '2026-11-25T00:00:02.000Z');
});

test('invalid schedules are refused with INVALID_CONFIG and an example', () => {
  for (const bad of ['', 'every day', '61 * * * *', '* * *', '@every', '@every 0s', '@every 5x', '0 0 31 2 *']) {
    assert.throws(
      () => parseSchedule(bad),
      (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && /e\.g\.|such as|check|at least|use/.test(e.message),
      bad,
    );
  }
});
