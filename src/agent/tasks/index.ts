import { deleteSnapshotsTask } from './delete.js';
import { RESTORE_HANDLERS } from './restore.js';
import { snapshotTask } from './snapshot.js';
import type { TaskHandlers } from './types.js';

export type { TaskContext, TaskHandler, TaskHandlers, TaskResult } from './types.js';

/** The task executor: one row per task kind of the protocol (restore adds its kinds here). */
export const TASK_HANDLERS: TaskHandlers = {
  snapshot: snapshotTask,
  'delete-snapshots': deleteSnapshotsTask,
  ...RESTORE_HANDLERS,
};
