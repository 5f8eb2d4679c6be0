import { EtcdsnapError } from '../../core/errors.js';
import type { RestoreTaskKind } from '../../core/plans.js';
import type { TaskHandlers } from './types.js';

const notYet = (kind: RestoreTaskKind) => (): Promise<never> => Promise.reject(new EtcdsnapError('INTERNAL', `This agent cannot run ${kind} tasks yet.`));

/** Restore task handlers (placeholders until the restore executor lands). */
export const RESTORE_HANDLERS: Pick<TaskHandlers, RestoreTaskKind> = {
  'restore-prepare': notYet('restore-prepare'),
  'restore-fetch': notYet('restore-fetch'),
  'restore-stop': notYet('restore-stop'),
  'restore-apply': notYet('restore-apply'),
  'restore-start': notYet('restore-start'),
  'restore-finish': notYet('restore-finish'),
  'restore-rollback': notYet('restore-rollback'),
};
