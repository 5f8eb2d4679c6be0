import type { Operation } from '../core/api.js';
import type { ApiClient } from './api-client.js';

const TERMINAL = new Set(['Finished', 'Failed']);

export function describeOperation(op: Operation): string {
  const steps = op.steps.map((s) => `${s.node}:${s.state}`).join(' ');
  const fail = op.failure ? ` — ${op.failure.node ? `${op.failure.node}: ` : ''}${op.failure.code}: ${op.failure.message}${op.failure.rolledBack ? ' (rolled back)' : ''}` : '';
  return `${op.phase}${steps ? ` [${steps}]` : ''}${fail}`;
}

/**
 * Prints the phases of an operation as they happen, until it is Finished or Failed. Listens to
 * the event stream first, then reads the current state, so no change falls in between.
 * Returns the final operation.
 */
export async function watchOperation(api: ApiClient, id: string, print: (line: string) => void): Promise<Operation> {
  const ac = new AbortController();
  const events = api.events(ac.signal);
  const first = events.next(); // opens the stream
  let last = '';
  const show = (op: Operation): void => {
    const line = describeOperation(op);
    if (line !== last) print(`${new Date().toISOString()}  ${line}`);
    last = line;
  };
  try {
    let op = await api.get<Operation>(`/operations/${encodeURIComponent(id)}`);
    show(op);
    if (TERMINAL.has(op.phase)) return op;
    for (let next = await first; !next.done; next = await events.next()) {
      const ev = next.value;
      if (ev.type === 'operation' && ev.operation.id === id) {
        op = ev.operation;
        show(op);
        if (TERMINAL.has(op.phase)) return op;
      }
    }
    // The stream ended (server restart): read the state once more.
    op = await api.get<Operation>(`/operations/${encodeURIComponent(id)}`);
    show(op);
    return TERMINAL.has(op.phase) ? op : watchOperation(api, id, print);
  } finally {
    ac.abort();
    await events.return(undefined);
  }
}
