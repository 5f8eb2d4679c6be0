import type { JSX } from 'preact';
import { Time } from '../components/Time.tsx';
import { size } from '../format.ts';
import type { ClusterState } from './Cluster.tsx';

const STATE_CLASS: Record<string, string> = { healthy: 'good', unhealthy: 'bad', stopped: 'warn', disconnected: 'bad' };

/** The cluster's nodes as their agents last reported them. */
export function NodesTab({ s }: { s: ClusterState }): JSX.Element {
  if (!s.nodes) return <p class="muted">Loading…</p>;
  if (s.nodes.length === 0) return <p class="muted">No node has joined yet. Run the cluster's join command (<code>etcdsnap cluster join-command {s.cluster.name}</code>) on every etcd node.</p>;
  return (
    <div class="table-wrap">
      <table class="nodes">
        <caption class="sr-only">Nodes</caption>
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Member</th>
            <th scope="col">Health</th>
            <th scope="col">etcd version</th>
            <th scope="col" class="num">
              DB size
            </th>
            <th scope="col">Last seen</th>
            <th scope="col">Agent</th>
          </tr>
        </thead>
        <tbody>
          {[...s.nodes]
            .sort((a, b) => a.name.localeCompare(b.name))
            .map((n) => (
              <tr key={n.id} data-node={n.name}>
                <th scope="row">{n.name}</th>
                <td title={`client ${n.member.clientUrl}, peer ${n.member.peerUrl}`}>{n.member.name}</td>
                <td>
                  <span class={`badge ${STATE_CLASS[n.state] ?? ''}`}>{n.state}</span>
                  {n.error && <small class="block bad-text">{n.error}</small>}
                </td>
                <td>{n.etcdVersion ?? '—'}</td>
                <td class="num">{size(n.dbSize)}</td>
                <td>
                  <Time iso={n.lastSeenAt} />
                </td>
                <td>
                  {n.agentVersion} <span class="muted">({n.mode})</span>
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  );
}
