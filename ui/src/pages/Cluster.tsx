/**
 * A cluster: header, its running (or just ended) operation live, and the tabs. Resources are
 * read once per (re)connect of the event stream and then kept current from its events.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { endpoints, type Cluster, type ClusterNode, type Operation, type SnapshotRecord } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { OperationProgress } from '../components/OperationProgress.tsx';
import { useEvents, useTick } from '../events.ts';
import { Link } from '../router.tsx';
import { LastSnapshot, NodesHealth } from './Clusters.tsx';
import { NodesTab } from './Nodes.tsx';
import { OperationsTab } from './Operations.tsx';
import { SettingsTab } from './Settings.tsx';
import { SnapshotsTab } from './Snapshots.tsx';

const TABS = [
  ['snapshots', 'Snapshots'],
  ['operations', 'Operations'],
  ['nodes', 'Nodes'],
  ['settings', 'Settings'],
] as const;

export interface ClusterState {
  cluster: Cluster;
  snapshots: SnapshotRecord[] | undefined;
  nodes: ClusterNode[] | undefined;
  operations: Operation[] | undefined;
  /** The operation shown live on the page: the running one, or the last one started here. */
  active: Operation | undefined;
  setActive: (op: Operation) => void;
  setCluster: (c: Cluster) => void;
  reload: () => void;
}

function upsert<T extends { id: string }>(list: T[] | undefined, item: T, newestFirst = true): T[] | undefined {
  if (!list) return list;
  const i = list.findIndex((x) => x.id === item.id);
  if (i >= 0) return list.map((x) => (x.id === item.id ? item : x));
  return newestFirst ? [item, ...list] : [...list, item];
}

export function ClusterPage({ id, tab }: { id: string; tab: string }): JSX.Element {
  const [cluster, setCluster] = useState<Cluster | undefined>();
  const [snapshots, setSnapshots] = useState<SnapshotRecord[] | undefined>();
  const [nodes, setNodes] = useState<ClusterNode[] | undefined>();
  const [operations, setOperations] = useState<Operation[] | undefined>();
  const [active, setActive] = useState<Operation | undefined>();
  const [error, setError] = useState<unknown>();
  const [partError, setPartError] = useState<unknown>();
  useTick();

  const reload = useCallback(() => {
    endpoints
      .cluster(id)
      .then((c) => {
        setCluster(c);
        setError(undefined);
        if (c.runningOperationId) endpoints.operation(c.runningOperationId).then(setActive, setPartError);
      })
      .catch(setError);
    endpoints.snapshots(id).then(setSnapshots, setPartError);
    endpoints.nodes(id).then(setNodes, setPartError);
    endpoints.operations(id).then(setOperations, setPartError);
  }, [id]);
  useEffect(reload, [reload]);

  useEvents(
    id,
    (e) => {
      if (e.type === 'cluster') {
        if (e.change === 'upsert') setCluster(e.cluster);
      } else if (e.type === 'node') {
        setNodes((l) => upsert(l, e.node, false));
        endpoints.cluster(id).then(setCluster, () => undefined);
      } else if (e.type === 'snapshot') {
        if (e.change === 'delete') setSnapshots((l) => l?.filter((s) => s.id !== e.snapshot.id));
        else setSnapshots((l) => upsert(l, e.snapshot)?.sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
      } else if (e.type === 'operation') {
        const op = e.operation;
        setOperations((l) => upsert(l, op));
        setActive((cur) => (!cur || cur.id === op.id || op.phase !== 'Finished' ? op : cur));
        // Running operation and last snapshot live on the cluster: read it again.
        endpoints.cluster(id).then(setCluster, () => undefined);
      }
    },
    reload,
  );

  if (!cluster)
    return (
      <main id="main">
        <p>
          <Link href="/">← Clusters</Link>
        </p>
        {error ? <ErrorNote error={error} prefix={`Could not read cluster ${id}`} /> : <p class="muted">Loading…</p>}
      </main>
    );

  const state: ClusterState = { cluster, snapshots, nodes, operations, active, setActive, setCluster, reload };
  const base = `/clusters/${encodeURIComponent(cluster.name)}`;
  return (
    <main id="main">
      <p class="crumbs">
        <Link href="/">Clusters</Link> / {cluster.name}
      </p>
      <header class="cluster-head">
        <h1>{cluster.name}</h1>
        <dl class="facts">
          <div>
            <dt>Kubernetes</dt>
            <dd>{cluster.kubernetesVersion ?? '—'}</dd>
          </div>
          <div>
            <dt>Nodes</dt>
            <dd>
              <NodesHealth c={cluster} />
            </dd>
          </div>
          <div>
            <dt>Last successful snapshot</dt>
            <dd>
              <LastSnapshot c={cluster} />
            </dd>
          </div>
          <div>
            <dt>Schedule</dt>
            <dd>{cluster.policy.enabled ? cluster.policy.schedule : 'recurring off'}</dd>
          </div>
        </dl>
      </header>
      <ErrorNote error={partError} />
      {active && (
        <section class="panel" aria-labelledby="active-op">
          <h2 id="active-op">
            {active.phase === 'Finished' || active.phase === 'Failed' ? 'Last operation' : 'Running operation'} ·{' '}
            <Link href={`/operations/${active.id}`}>open</Link>
          </h2>
          <OperationProgress op={active} compact />
        </section>
      )}
      <nav class="tabs" aria-label="Cluster sections">
        {TABS.map(([key, label]) => (
          <Link key={key} href={key === 'snapshots' ? base : `${base}/${key}`} aria-current={tab === key ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === 'snapshots' && <SnapshotsTab s={state} />}
      {tab === 'operations' && <OperationsTab s={state} />}
      {tab === 'nodes' && <NodesTab s={state} />}
      {tab === 'settings' && <SettingsTab s={state} />}
      {!TABS.some(([k]) => k === tab) && <p>No such tab.</p>}
    </main>
  );
}
