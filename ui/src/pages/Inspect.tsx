import type { JSX } from 'preact';
import type { SnapshotRecord } from '../api.ts';
import { Dialog } from '../components/Dialog.tsx';
import { exact, MODE_WORDS, size } from '../format.ts';

/** Metadata of a snapshot and its content summary (keys per /registry resource). */
export function InspectDialog({ record, onClose }: { record: SnapshotRecord; onClose: () => void }): JSX.Element {
  const m = record.metadata;
  const resources = m?.summary ? Object.entries(m.summary.byResource).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) : [];
  const rows: Array<[string, string | JSX.Element]> = [
    ['Name', record.name],
    ['State', record.state + (record.message ? ` — ${record.code ?? ''}: ${record.message}` : '')],
    ['Node', record.node],
    ['Location', record.location],
    ['Created', exact(record.createdAt)],
    ['Stored size', size(record.size)],
    ['Restore modes', record.restoreModes.map((x) => MODE_WORDS[x] ?? x).join('; ') || 'none'],
  ];
  if (m) {
    rows.push(
      ['Kind', m.kind],
      ['Kubernetes version', m.kubernetesVersion ?? '—'],
      ['etcd version', m.etcd.version],
      ['etcd revision', m.etcd.revisionExact ? String(m.etcd.revision) : `${m.etcd.revisionMin}–${m.etcd.revision}`],
      ['Members', String(m.etcd.memberCount)],
      ['Raw size', size(m.rawSize)],
      ['Codec', m.codec],
      ['sha256 (stored)', <code class="hash">{m.sha256}</code>],
    );
  }
  return (
    <Dialog title={`Snapshot ${record.name}`} onClose={onClose} wide>
      <dl class="kv">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      {!m && <p class="muted">No metadata was recorded for this snapshot.</p>}
      {m?.summary && (
        <>
          <h3>
            Content: {m.summary.keys} keys at revision {m.summary.revision}
          </h3>
          <div class="table-wrap short">
            <table class="summary">
              <thead>
                <tr>
                  <th scope="col">Resource</th>
                  <th scope="col" class="num">
                    Keys
                  </th>
                </tr>
              </thead>
              <tbody>
                {resources.map(([name, n]) => (
                  <tr key={name}>
                    <th scope="row">{name}</th>
                    <td class="num">{n}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {m?.clusterConfig && (
        <details>
          <summary>Cluster config in this snapshot</summary>
          <pre>{m.clusterConfig}</pre>
        </details>
      )}
    </Dialog>
  );
}
