import { rm } from 'node:fs/promises';
import { toEtcdsnapError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { StateStore } from '../state.js';

/**
 * Removes old data dirs finished restores kept (`keepOldDataDays`) once they expire. Only
 * the paths recorded in the state, and only `*.pre-restore-*` ones, are ever removed. Runs on
 * agent start and after every task.
 */
export async function sweepKeptDataDirs(state: StateStore, logger: Logger, now = Date.now()): Promise<string[]> {
  const due = state.state.keptDataDirs.filter((k) => Date.parse(k.expiresAt) <= now);
  const removed: string[] = [];
  for (const k of due) {
    try {
      if (/\.pre-restore-[A-Za-z0-9_-]+$/.test(k.path)) await rm(k.path, { recursive: true, force: true });
      removed.push(k.path);
      logger.info({ path: k.path }, 'removed the data dir kept from before a restore');
    } catch (err) {
      logger.warn({ path: k.path, err: toEtcdsnapError(err).message }, 'could not remove a data dir kept from before a restore');
    }
  }
  if (removed.length > 0) {
    await state.update((s) => {
      s.keptDataDirs = s.keptDataDirs.filter((k) => !removed.includes(k.path));
    });
  }
  return removed;
}
