import type { JSX } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { endpoints, type Cluster, type Operation } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { OperationProgress } from '../components/OperationProgress.tsx';
import { useEvents, useTick } from '../events.ts';
import { Link } from '../router.tsx';

/** One operation, live from the cluster's event stream (read again on every reconnect). */
export function OperationPage({ id }: { id: string }): JSX.Element {
  const [op, setOp] = useState<Operation | undefined>();
  const [cluster, setCluster] = useState<Cluster | undefined>();
  const [error, setError] = useState<unknown>();
  useTick(5000);
  const load = useCallback(() => {
    endpoints.operation(id).then((o) => {
      setOp(o);
      setError(undefined);
    }, setError);
  }, [id]);
  useEffect(load, [load]);
  useEffect(() => {
    if (op && cluster?.id !== op.clusterId) endpoints.cluster(op.clusterId).then(setCluster, () => undefined);
  }, [op?.clusterId]);
  useEvents(
    op?.clusterId,
    (e) => {
      if (e.type === 'operation' && e.operation.id === id) setOp(e.operation);
    },
    load,
  );
  const clusterName = cluster?.name ?? op?.clusterId;
  return (
    <main id="main">
      <p class="crumbs">
        <Link href="/">Clusters</Link>
        {clusterName && (
          <>
            {' / '}
            <Link href={`/clusters/${encodeURIComponent(clusterName)}`}>{clusterName}</Link>
            {' / '}
            <Link href={`/clusters/${encodeURIComponent(clusterName)}/operations`}>operations</Link>
          </>
        )}
      </p>
      <h1>
        {op?.kind === 'restore' ? 'Restore' : 'Operation'} <code>{id}</code>
      </h1>
      <ErrorNote error={error} prefix="Could not read the operation" />
      {op ? <OperationProgress op={op} /> : !error && <p class="muted">Loading…</p>}
    </main>
  );
}
