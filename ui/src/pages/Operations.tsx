import type { JSX } from 'preact';
import { Time } from '../components/Time.tsx';
import { duration, MODE_WORDS } from '../format.ts';
import { Link } from '../router.tsx';
import type { ClusterState } from './Cluster.tsx';

/** The cluster's operations, newest first, each linking to its live view. */
export function OperationsTab({ s }: { s: ClusterState }): JSX.Element {
  if (!s.operations) return <p class="muted">Loading…</p>;
  if (s.operations.length === 0) return <p class="muted">No operation yet.</p>;
  return (
    <div class="table-wrap">
      <table class="operations">
        <caption class="sr-only">Operations, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Kind</th>
            <th scope="col">Phase</th>
            <th scope="col">Duration</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {s.operations.map((op) => {
            const p = op.params as { snapshot?: string; mode?: string };
            return (
              <tr key={op.id} data-operation={op.id}>
                <td>
                  <Link href={`/operations/${op.id}`}>
                    <Time iso={op.createdAt} />
                  </Link>
                </td>
                <td>{op.kind === 'restore' ? `restore (${MODE_WORDS[p.mode ?? ''] ?? p.mode})` : 'one-time snapshot'}</td>
                <td>
                  <span class={`phase phase-${op.phase}`}>{op.phase}</span>
                  {op.failure?.rolledBack && <span class="muted"> · rolled back</span>}
                </td>
                <td>{duration(op.createdAt, op.finishedAt)}</td>
                <td class="wrap">{op.failure ? `${op.failure.node ? `${op.failure.node}: ` : ''}${op.failure.code}: ${op.failure.message}` : (p.snapshot ?? op.message ?? '')}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
