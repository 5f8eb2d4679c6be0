/**
 * An operation as a stepper (its kind's phases, ending in Finished or Failed), the failure with
 * whether the cluster was rolled back, the per-node steps and the history. Callers keep the
 * operation up to date from the event stream; this only renders.
 */
import type { JSX } from 'preact';
import type { Operation } from '../api.ts';
import { duration, exact, MODE_WORDS } from '../format.ts';
import { Time } from './Time.tsx';

const PHASES: Record<Operation['kind'], string[]> = {
  snapshot: ['Started', 'RestartCluster', 'Finished'],
  restore: ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'],
};

const PHASE_WORDS: Record<string, string> = {
  Started: 'checks and preparation',
  Shutdown: 'etcd members stop',
  Restore: 'snapshot restored on every node',
  RestartCluster: 'members start again',
  Finished: 'done',
  Failed: 'stopped with an error',
};

type StepState = 'done' | 'current' | 'failed' | 'todo';

function phaseStates(op: Operation): Array<{ phase: string; state: StepState }> {
  const phases = PHASES[op.kind] ?? PHASES.snapshot;
  if (op.phase === 'Failed') {
    const reached = [...op.history].reverse().find((h) => h.phase !== 'Failed' && phases.includes(h.phase))?.phase ?? 'Started';
    const at = phases.indexOf(reached);
    return phases.map((phase, i) => (phase === 'Finished' ? { phase: 'Failed', state: 'failed' } : { phase, state: i < at ? 'done' : i === at ? 'failed' : 'todo' }));
  }
  const at = phases.indexOf(op.phase);
  return phases.map((phase, i) => ({ phase, state: op.phase === 'Finished' || i < at ? 'done' : i === at ? 'current' : 'todo' }));
}

const STATE_WORDS: Record<StepState, string> = { done: 'done', current: 'in progress', failed: 'failed', todo: 'not yet' };

export function Stepper({ op }: { op: Operation }): JSX.Element {
  return (
    <ol class="stepper" aria-label="Phases">
      {phaseStates(op).map(({ phase, state }, i) => (
        <li key={phase} class={`step ${state}`} aria-current={state === 'current' ? 'step' : undefined} data-phase={phase} data-state={state}>
          <span class="dot" aria-hidden="true">
            {state === 'done' ? '✓' : state === 'failed' ? '!' : i + 1}
          </span>
          <span class="label">
            <strong>{phase}</strong>
            <small>
              {PHASE_WORDS[phase]} <span class="sr-only">({STATE_WORDS[state]})</span>
            </small>
          </span>
        </li>
      ))}
    </ol>
  );
}

function describeParams(op: Operation): string {
  const p = op.params as { snapshot?: string; mode?: string; base?: string; name?: string };
  if (op.kind === 'restore') return `Restore of ${p.snapshot ?? '?'} (${MODE_WORDS[p.mode ?? ''] ?? p.mode ?? '?'})`;
  return `One-time snapshot${p.base || p.name ? ` “${p.base ?? p.name}”` : ''}`;
}

export function OperationProgress({ op, compact }: { op: Operation; compact?: boolean }): JSX.Element {
  const running = op.phase !== 'Finished' && op.phase !== 'Failed';
  return (
    <div class="operation" data-operation={op.id} data-phase={op.phase} aria-live="polite">
      <p class="op-title">
        <strong>{describeParams(op)}</strong> — <span class={`phase phase-${op.phase}`}>{op.phase}</span>
        {' · '}started <Time iso={op.createdAt} />
        {' · '}
        {running ? 'running for ' : 'took '}
        {duration(op.createdAt, op.finishedAt)}
      </p>
      <Stepper op={op} />
      {op.failure && (
        <div class="failure" role="alert">
          <p>
            <strong>Failed{op.failure.node ? ` on ${op.failure.node}` : ''}:</strong> {op.failure.code}: {op.failure.message}
          </p>
          {op.kind === 'restore' && (
            <p class={op.failure.rolledBack ? 'rolled-back' : 'not-rolled-back'}>
              {op.failure.rolledBack
                ? 'Rolled back: every node is back on the data it had before the restore.'
                : 'Not rolled back: check the nodes (see their messages below) before retrying.'}
            </p>
          )}
        </div>
      )}
      {!op.failure && op.message && (
        <p class={/rolling back/i.test(op.message) ? 'warning' : 'muted'} data-testid="op-message">
          {op.message}
        </p>
      )}
      {op.steps.length > 0 && (
        <div class="table-wrap">
          <table class="steps">
            <caption class="sr-only">Steps per node</caption>
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">Step</th>
                <th scope="col">Message</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {op.steps.map((s) => (
                <tr key={s.node} data-node={s.node}>
                  <th scope="row">{s.node}</th>
                  <td>
                    <span class={`badge step-${s.state}`}>{s.state}</span>
                  </td>
                  <td class="wrap">{s.message ?? ''}</td>
                  <td>
                    <Time iso={s.updatedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {!compact && (
        <details open={op.phase === 'Failed'}>
          <summary>History ({op.history.length})</summary>
          <ol class="history">
            {op.history.map((h, i) => (
              <li key={i}>
                <time dateTime={h.at}>{exact(h.at)}</time> <strong>{h.phase}</strong> {h.message}
              </li>
            ))}
          </ol>
        </details>
      )}
    </div>
  );
}
