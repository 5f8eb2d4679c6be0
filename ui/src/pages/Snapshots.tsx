import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { endpoints, type SnapshotRecord } from '../api.ts';
import { Dialog } from '../components/Dialog.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { Time } from '../components/Time.tsx';
import { MODE_WORDS, size } from '../format.ts';
import type { ClusterState } from './Cluster.tsx';
import { InspectDialog } from './Inspect.tsx';
import { RestoreDialog } from './Restore.tsx';

/** Why "Snapshot now" is disabled, or undefined when it may run. */
function blockedReason(s: ClusterState): string | undefined {
  const { cluster } = s;
  if (cluster.runningOperationId) return 'An operation is running on this cluster; wait for it to end.';
  if (cluster.nodes.total === 0) return 'No node has joined yet: run the join command on every etcd node.';
  if (cluster.nodes.healthy < cluster.nodes.total) return `The cluster is unhealthy: ${cluster.nodes.healthy} of ${cluster.nodes.total} nodes healthy (see Nodes).`;
  return undefined;
}

type Action = { kind: 'inspect' | 'delete' | 'restore'; record: SnapshotRecord };

export function SnapshotsTab({ s }: { s: ClusterState }): JSX.Element {
  const [query, setQuery] = useState('');
  const [storage, setStorage] = useState<'all' | 'local' | 's3'>('all');
  const [action, setAction] = useState<Action | undefined>();
  const [startError, setStartError] = useState<unknown>();
  const [starting, setStarting] = useState(false);
  const [deleting, setDeleting] = useState<Record<string, string>>({});
  const reason = blockedReason(s);

  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (s.snapshots ?? [])
      .filter((r) => storage === 'all' || r.storage === storage)
      .filter((r) => !q || `${r.name} ${r.node} ${r.state} ${r.storage} ${r.location}`.toLowerCase().includes(q))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.name.localeCompare(b.name));
  }, [s.snapshots, query, storage]);

  const snapshotNow = async (): Promise<void> => {
    setStarting(true);
    setStartError(undefined);
    try {
      const op = await endpoints.snapshotNow(s.cluster.id);
      s.setActive(op);
      s.reload();
    } catch (err) {
      setStartError(err);
    } finally {
      setStarting(false);
    }
  };

  return (
    <section aria-label="Snapshots">
      <div class="toolbar">
        <button type="button" class="primary" disabled={reason !== undefined || starting} aria-describedby="snapshot-now-why" onClick={() => void snapshotNow()}>
          {starting ? 'Starting…' : 'Snapshot now'}
        </button>
        <span id="snapshot-now-why" class="muted">
          {reason ?? 'Takes a snapshot on every node now.'}
        </span>
        <span class="spacer" />
        <label class="inline">
          Search
          <input type="search" value={query} placeholder="name, node…" onInput={(e) => setQuery(e.currentTarget.value)} />
        </label>
        <label class="inline">
          Location
          <select value={storage} onChange={(e) => setStorage(e.currentTarget.value as 'all' | 'local' | 's3')}>
            <option value="all">All</option>
            <option value="local">Local</option>
            <option value="s3">S3</option>
          </select>
        </label>
      </div>
      <ErrorNote error={startError} prefix="Snapshot now failed" />
      {s.snapshots === undefined ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted">{s.snapshots.length === 0 ? 'No snapshot yet.' : 'No snapshot matches.'}</p>
      ) : (
        <div class="table-wrap">
          <table class="snapshots">
            <caption class="sr-only">Snapshots, newest first</caption>
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Name</th>
                <th scope="col">Node</th>
                <th scope="col">Location</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Created</th>
                <th scope="col">Restore modes</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-record={r.id} data-name={r.name} data-storage={r.storage}>
                  <td data-label="State">
                    {deleting[r.id] ? (
                      <span class="badge warn">deleting</span>
                    ) : (
                      <span class={`badge ${r.state === 'successful' ? 'good' : 'bad'}`} title={r.message ?? undefined}>
                        {r.state}
                      </span>
                    )}
                  </td>
                  <td class="name" data-label="Name">
                    {r.name}
                    {r.state === 'failed' && r.message && (
                      <small class="bad-text block">
                        {r.code}: {r.message}
                      </small>
                    )}
                  </td>
                  <td data-label="Node">{r.node}</td>
                  <td data-label="Location" title={r.location}>{r.storage === 's3' ? 'S3' : 'local'}</td>
                  <td class="num" data-label="Size">{size(r.size)}</td>
                  <td data-label="Created">
                    <Time iso={r.createdAt} />
                  </td>
                  <td data-label="Restore modes">{r.restoreModes.length ? r.restoreModes.map((m) => MODE_WORDS[m] ?? m).join('; ') : '—'}</td>
                  <td class="actions">
                    <div class="actions">
                    <button type="button" disabled={r.restoreModes.length === 0} aria-label={`Restore ${r.name}`} onClick={() => setAction({ kind: 'restore', record: r })}>
                      Restore
                    </button>
                    <button type="button" aria-label={`Inspect ${r.name}`} onClick={() => setAction({ kind: 'inspect', record: r })}>
                      Inspect
                    </button>
                    <button type="button" class="danger" disabled={deleting[r.id] !== undefined} aria-label={`Delete ${r.name}`} onClick={() => setAction({ kind: 'delete', record: r })}>
                      Delete
                    </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {action?.kind === 'inspect' && <InspectDialog record={action.record} onClose={() => setAction(undefined)} />}
      {action?.kind === 'restore' && <RestoreDialog s={s} record={action.record} onClose={() => setAction(undefined)} />}
      {action?.kind === 'delete' && (
        <DeleteDialog
          s={s}
          record={action.record}
          onClose={() => setAction(undefined)}
          onPending={(node) => setDeleting((d) => ({ ...d, [action.record.id]: node }))}
        />
      )}
    </section>
  );
}

function DeleteDialog({ s, record, onClose, onPending }: { s: ClusterState; record: SnapshotRecord; onClose: () => void; onPending: (node: string) => void }): JSX.Element {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const where = record.storage === 's3' ? `the S3 object ${record.location}` : `the file on ${record.node}`;
  const confirm = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await endpoints.deleteSnapshot(s.cluster.id, record.id);
      if (!r.deleted) onPending(r.node ?? record.node);
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Dialog title="Delete snapshot" onClose={onClose}>
      <p>
        Delete <strong>{record.name}</strong> ({record.storage === 's3' ? 'S3' : 'local'}, {size(record.size)})? This removes {where} and its metadata. It
        cannot be undone.
      </p>
      {record.storage === 'local' && <p class="muted">The node deletes the file; the row goes when it reports it gone.</p>}
      <ErrorNote error={error} prefix="Delete failed" />
      <div class="buttons">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => void confirm()}>
          {busy ? 'Deleting…' : 'Delete snapshot'}
        </button>
      </div>
    </Dialog>
  );
}
