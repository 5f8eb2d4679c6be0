import type { RestoreTaskKind } from '../../core/plans.js';
import { restoreCleanupTask, restoreFinishTask, restoreRollbackTask } from './restore-finish.js';
import { restoreFetchTask, restorePrepareTask } from './restore-stage.js';
import { restoreStartTask } from './restore-start.js';
import { restoreApplyTask, restoreStopTask } from './restore-stop.js';
import type { TaskHandlers } from './types.js';

/**
 * The agent's side of a whole-cluster restore (see src/core/plans.ts for the order the server
 * sends them in). Every handler is idempotent: run again after a crash at any point, it
 * reaches the same end state.
 */
export const RESTORE_HANDLERS: Pick<TaskHandlers, RestoreTaskKind> = {
  'restore-prepare': restorePrepareTask,
  'restore-fetch': restoreFetchTask,
  'restore-stop': restoreStopTask,
  'restore-apply': restoreApplyTask,
  'restore-start': restoreStartTask,
  'restore-finish': restoreFinishTask,
  'restore-cleanup': restoreCleanupTask,
  'restore-rollback': restoreRollbackTask,
};
