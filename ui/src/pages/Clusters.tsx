import type { JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { endpoints, type Cluster } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { Time } from '../components/Time.tsx';
import { useEvents, useTick } from '../events.ts';
import { Link } from '../router.tsx';
import { schedulePeriod } from '../schedule.ts';

/** Red when the last successful snapshot is older than twice the schedule (or missing). */
export function snapshotOverdue(c: Cluster, now = Date.now()): boolean {
  if (!c.policy.enabled) return false;
  const period = schedulePeriod(c.policy.schedule);
  if (period === undefined) return false;
  if (!c.lastSuccessfulSnapshot) return now - Date.parse(c.createdAt) > 2 * period;
  return now - Date.parse(c.lastSuccessfulSnapshot.createdAt) > 2 * period;
}

export function LastSnapshot({ c }: { c: Cluster }): JSX.Element {
  const overdue = snapshotOverdue(c);
  return (
    <span class={overdue ? 'overdue' : undefined}>
      {c.lastSuccessfulSnapshot ? <Time iso={c.lastSuccessfulSnapshot.createdAt} /> : 'never'}
      {overdue && <span class="badge bad"> overdue</span>}
    </span>
  );
}

export function NodesHealth({ c }: { c: Cluster }): JSX.Element {
  const ok = c.nodes.total > 0 && c.nodes.healthy === c.nodes.total;
  return (
    <span class={ok ? 'good' : 'bad-text'} title={`${c.nodes.connected} connected`}>
      {c.nodes.healthy}/{c.nodes.total} healthy
    </span>
  );
}

export function Clusters(): JSX.Element {
  const [clusters, setClusters] = useState<Cluster[] | undefined>();
  const [error, setError] = useState<unknown>();
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useTick();
  const load = useCallback(() => {
    endpoints
      .clusters()
      .then((l) => {
        setClusters(l);
        setError(undefined);
      })
      .catch(setError);
  }, []);
  useEffect(load, [load]);
  // Cluster events carry the cluster; operation and node events change what a row shows: re-read, at most twice a second.
  useEvents(
    undefined,
    (e) => {
      if (e.type === 'snapshot') return;
      if (e.type === 'cluster' && e.change === 'upsert') setClusters((l) => l?.map((c) => (c.id === e.cluster.id ? e.cluster : c)));
      if (pending.current === undefined)
        pending.current = setTimeout(() => {
          pending.current = undefined;
          load();
        }, 500);
    },
    load,
  );
  return (
    <main id="main">
      <h1>Clusters</h1>
      <ErrorNote error={error} prefix="Could not read the clusters" />
      {clusters === undefined && !error && <p class="muted">Loading…</p>}
      {clusters?.length === 0 && (
        <p class="muted">
          No cluster yet. Create one with <code>etcdsnap cluster create NAME</code>, then run its join command on every etcd node.
        </p>
      )}
      {clusters && clusters.length > 0 && (
        <div class="table-wrap">
          <table class="clusters">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kubernetes</th>
                <th scope="col">Nodes</th>
                <th scope="col">Last successful snapshot</th>
                <th scope="col">Next scheduled</th>
                <th scope="col">Running operation</th>
              </tr>
            </thead>
            <tbody>
              {clusters.map((c) => (
                <tr key={c.id} data-cluster={c.name}>
                  <th scope="row">
                    <Link href={`/clusters/${encodeURIComponent(c.name)}`}>{c.name}</Link>
                  </th>
                  <td>{c.kubernetesVersion ?? '—'}</td>
                  <td>
                    <NodesHealth c={c} />
                  </td>
                  <td>
                    <LastSnapshot c={c} />
                  </td>
                  <td>{c.policy.enabled ? <Time iso={c.nextScheduledSnapshotAt} /> : <span class="muted">recurring off</span>}</td>
                  <td>{c.runningOperationId ? <Link href={`/operations/${c.runningOperationId}`}>running — view</Link> : <span class="muted">none</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
