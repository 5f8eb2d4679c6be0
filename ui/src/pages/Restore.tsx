/**
 * The restore dialog: which snapshot, the modes it allows in plain words (etcd only by default),
 * what will change, and the cluster's name typed to confirm. Starts
 * `POST /clusters/{id}/restores` and goes to the operation, which follows it live.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { endpoints, type RestoreMode, type SnapshotRecord } from '../api.ts';
import { Dialog } from '../components/Dialog.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { exact, MODE_WORDS, size } from '../format.ts';
import { navigate } from '../router.tsx';
import type { ClusterState } from './Cluster.tsx';

const MODE_HELP: Record<RestoreMode, string> = {
  etcd: 'Puts the etcd data back. The cluster keeps its current Kubernetes version and config.',
  'kubernetes-version': 'Puts the etcd data back and sets the Kubernetes version to the one the snapshot was taken with.',
  all: 'Puts the etcd data back and sets both the Kubernetes version and the cluster config to the snapshot’s.',
};

function Change({ label, from, to, changes }: { label: string; from: string | null; to: string | null; changes: boolean }): JSX.Element {
  if (!changes || from === to) return <li>{label}: stays {from ?? 'unset'}</li>;
  return (
    <li class="change">
      {label}: <del>{from ?? 'unset'}</del> → <ins>{to ?? 'unset'}</ins>
    </li>
  );
}

export function RestoreDialog({ s, record, onClose }: { s: ClusterState; record: SnapshotRecord; onClose: () => void }): JSX.Element {
  const modes = (['etcd', 'kubernetes-version', 'all'] as const).filter((m) => record.restoreModes.includes(m));
  const [mode, setMode] = useState<RestoreMode>('etcd');
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const { cluster } = s;
  const snapVersion = record.metadata?.kubernetesVersion ?? record.kubernetesVersion;
  const snapConfig = record.metadata?.clusterConfig ?? null;
  const configChanges = mode === 'all' && snapConfig !== cluster.clusterConfig;
  const confirmed = typed === cluster.name;
  const blocked = cluster.runningOperationId ? 'An operation is running on this cluster; wait for it to end.' : undefined;

  const start = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!confirmed || blocked) return;
    setBusy(true);
    setError(undefined);
    try {
      const op = await endpoints.restore(cluster.id, { snapshot: record.name, mode, storage: record.storage });
      s.setActive(op);
      onClose();
      navigate(`/operations/${op.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Restore ${cluster.name}`} onClose={onClose} wide>
      <form onSubmit={(e) => void start(e)}>
        <p>
          From <strong>{record.name}</strong>, taken {exact(record.createdAt)} on {record.node} ({record.storage === 's3' ? 'S3' : 'local'}, {size(record.size)}).
        </p>
        <p class="warning">Every etcd member stops during the restore: the Kubernetes API is down until it finishes. The current data is kept aside and put back if the restore fails.</p>
        <fieldset>
          <legend>What to restore</legend>
          {modes.map((m) => (
            <label key={m} class="radio">
              <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} />
              <span>
                <strong>{MODE_WORDS[m]}</strong>
                <small class="block muted">{MODE_HELP[m]}</small>
              </span>
            </label>
          ))}
          {modes.length < 3 && (
            <p class="muted">
              {modes.length === 1 ? 'This snapshot has no Kubernetes version, so only its etcd data can be restored.' : 'This snapshot has no cluster config, so the config cannot be restored from it.'}
            </p>
          )}
        </fieldset>
        <h3>What changes</h3>
        <ul class="changes" data-testid="restore-changes">
          <li>etcd data: replaced by the snapshot’s (revision {record.metadata?.etcd.revision ?? '?'})</li>
          <Change label="Kubernetes version" from={cluster.kubernetesVersion} to={snapVersion} changes={mode !== 'etcd'} />
          <li class={configChanges ? 'change' : undefined}>Cluster config: {configChanges ? 'replaced by the snapshot’s' : mode === 'all' ? 'the same as the snapshot’s' : 'stays as it is'}</li>
        </ul>
        {configChanges && (
          <details>
            <summary>Config: current and snapshot’s</summary>
            <div class="two">
              <pre aria-label="Current config">{cluster.clusterConfig ?? '(none)'}</pre>
              <pre aria-label="Snapshot config">{snapConfig ?? '(none)'}</pre>
            </div>
          </details>
        )}
        <label for="confirm-name">
          Type the cluster name, <strong>{cluster.name}</strong>, to confirm
        </label>
        <input id="confirm-name" value={typed} autoComplete="off" spellcheck={false} onInput={(e) => setTyped(e.currentTarget.value)} />
        {blocked && <p class="error">{blocked}</p>}
        <ErrorNote error={error} prefix="The restore did not start" />
        <div class="buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={!confirmed || busy || blocked !== undefined}>
            {busy ? 'Starting…' : `Restore ${MODE_WORDS[mode]}`}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
