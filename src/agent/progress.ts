import type { StateStore } from './state.js';

/** Progress messages reach the state (and the server) at most this often. */
export const PROGRESS_INTERVAL_MS = 500;

/**
 * A task's progress reporter: sets the running task's status message in the state at most
 * every `intervalMs` (the latest message wins; the last one is written when the interval
 * ends) and calls `onChange` so a report goes out. A finished task's status is never touched.
 */
export function taskProgress(state: StateStore, taskId: string, onChange: () => void, onError: (err: unknown) => void, intervalMs = PROGRESS_INTERVAL_MS): (message: string) => void {
  let last = 0;
  let pending: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const message = pending;
    pending = undefined;
    if (message === undefined) return;
    last = Date.now();
    const t = state.state.tasks[taskId];
    if (!t || t.state !== 'running' || t.message === message) return;
    state
      .update((s) => {
        const cur = s.tasks[taskId];
        if (cur && cur.state === 'running') cur.message = message.slice(0, 4000);
      })
      .then(onChange, onError);
  };
  return (message) => {
    pending = message;
    if (timer) return;
    const wait = last + intervalMs - Date.now();
    if (wait <= 0) flush();
    else {
      timer = setTimeout(flush, wait);
      timer.unref();
    }
  };
}
