import { allowedRestoreModes, RESTORE_MODES, type RestoreMode, type SnapshotMetadata } from '../../core/metadata.js';
import { EtcdsnapError } from '../../core/errors.js';
import type { ClusterRow, NodeRow } from '../db/clusters.js';
import type { Db } from '../db/schema.js';
import { listSnapshots, type SnapshotRow } from '../db/snapshots.js';

/**
 * What a restore starts from, decided before anything starts: the snapshot record (its
 * metadata says which modes it allows), the source the init node reads and the init node
 * itself, and one fallback source for when the first cannot be read. The API route calls it to
 * refuse a request up front; the `Started` phase calls it again to record its decision.
 */

export interface RestoreParams {
  /** Stored name (with codec suffix). */
  snapshot: string;
  mode: RestoreMode;
  /** Which copy to restore from; default: the local copy when its holder is there, else S3. */
  storage?: 'local' | 's3';
}

export interface RestoreSource {
  storage: 'local' | 's3';
  /** Stored name in that target (a copy on another node may have another name). */
  name: string;
  /** sha256 of the stored bytes, from the record's metadata. */
  sha256?: string;
  /** The init node: it reads the source and serves the file to the others. */
  nodeId: string;
  node: string;
}

export interface RestoreChoice {
  metadata: SnapshotMetadata | null;
  primary: RestoreSource;
  fallback: RestoreSource | null;
  /** Why the primary is what it is (history). */
  why: string;
}

export function parseRestoreParams(params: Record<string, unknown>): RestoreParams {
  const { snapshot, mode, storage } = params;
  if (typeof snapshot !== 'string' || !(RESTORE_MODES as readonly unknown[]).includes(mode) || (storage !== undefined && storage !== 'local' && storage !== 's3')) {
    throw new EtcdsnapError('INVALID_ARGUMENT', `Invalid restore parameters ${JSON.stringify(params)}.`);
  }
  return { snapshot, mode: mode as RestoreMode, ...(storage ? { storage } : {}) };
}

function metadataOf(r: SnapshotRow): SnapshotMetadata | null {
  return r.metadata ? (JSON.parse(r.metadata) as SnapshotMetadata) : null;
}

const byRegistration = (a: NodeRow, b: NodeRow): number => a.registered_at - b.registered_at || a.name.localeCompare(b.name);

/** The cluster's nodes in registration order: the first usable one is the "current init node". */
export function nodesInOrder(nodes: NodeRow[]): NodeRow[] {
  return [...nodes].sort(byRegistration);
}

export function describeSource(s: RestoreSource): string {
  return s.storage === 's3' ? `S3 copy ${s.name}, read by ${s.node}` : `local copy ${s.name} on ${s.node}`;
}

/**
 * Checks the request and chooses the source. Throws SNAPSHOT_NOT_FOUND, SNAPSHOT_FAILED,
 * RESTORE_MODE_NOT_ALLOWED, CLUSTER_UNHEALTHY (no nodes), NODE_DISCONNECTED (with
 * `requireAllUsable`: every agent must be there). Members being down is no reason to refuse:
 * a restore is how a dead cluster comes back.
 */
export async function chooseRestoreSource(
  db: Db,
  cluster: ClusterRow,
  nodes: NodeRow[],
  params: RestoreParams,
  usable: (n: NodeRow) => boolean,
  requireAllUsable: boolean,
): Promise<RestoreChoice> {
  const all = await listSnapshots(db, cluster.id);
  const named = all.filter((r) => r.name === params.snapshot && (!params.storage || r.storage === params.storage));
  const where = params.storage ? ` in ${params.storage === 's3' ? 'S3' : 'local storage'}` : '';
  if (named.length === 0) {
    throw new EtcdsnapError(
      'SNAPSHOT_NOT_FOUND',
      `Cluster ${cluster.name} has no snapshot "${params.snapshot}"${where}: list them with "etcdsnap snapshot ls ${cluster.name}" (GET /api/v1/clusters/${cluster.id}/snapshots) and give the stored name, codec suffix included.`,
      { details: { cluster: cluster.name, snapshot: params.snapshot, ...(params.storage ? { storage: params.storage } : {}) } },
    );
  }
  // Local copies first: no download from S3 when the holder is there.
  const ok = named.filter((r) => r.state === 'successful').sort((a, b) => (a.storage === b.storage ? 0 : a.storage === 'local' ? -1 : 1));
  if (ok.length === 0) {
    const f = named[0] as SnapshotRow;
    throw new EtcdsnapError('SNAPSHOT_FAILED', `Snapshot "${params.snapshot}" of cluster ${cluster.name} failed (${f.code ?? 'no code'}: ${f.message ?? 'no message'}): it holds no data to restore. Choose a successful one (etcdsnap snapshot ls ${cluster.name}).`, {
      details: { cluster: cluster.name, snapshot: params.snapshot },
    });
  }
  const metadata = ok.map(metadataOf).find((m) => m !== null) ?? null;
  const allowed = allowedRestoreModes(metadata ?? undefined);
  if (!allowed.includes(params.mode)) {
    const lacks = metadata === null ? 'it has no metadata' : params.mode === 'all' && metadata.kubernetesVersion ? 'its metadata has no cluster config' : 'its metadata has no Kubernetes version';
    throw new EtcdsnapError('RESTORE_MODE_NOT_ALLOWED', `Snapshot "${params.snapshot}" cannot be restored with mode ${params.mode}: ${lacks}. Modes it allows: ${allowed.join(', ')}.`, {
      details: { snapshot: params.snapshot, mode: params.mode, allowed },
    });
  }
  if (nodes.length === 0) {
    throw new EtcdsnapError('CLUSTER_UNHEALTHY', `Cluster ${cluster.name} has no registered nodes: start an agent on each etcd node (GET /api/v1/clusters/${cluster.id}/join), then retry.`, { details: { cluster: cluster.name } });
  }
  const ordered = nodesInOrder(nodes);
  if (requireAllUsable) {
    const down = ordered.find((n) => !usable(n));
    if (down) {
      const seen = down.last_seen_at === null ? 'it never reported' : `last seen ${new Date(down.last_seen_at).toISOString()}`;
      throw new EtcdsnapError('NODE_DISCONNECTED', `The agent of node ${down.name} is not connected (${seen}): every node of the cluster takes part in a restore. Start its agent, or remove the node from the cluster, then retry.`, {
        details: { node: down.name },
      });
    }
  }
  const initNode = ordered.find(usable);
  const sha = metadata?.sha256;
  const candidates: RestoreSource[] = [];
  const add = (r: SnapshotRow, node: NodeRow | undefined): void => {
    if (!node || candidates.some((c) => c.storage === r.storage && c.name === r.name && c.nodeId === node.id)) return;
    const rsha = metadataOf(r)?.sha256 ?? sha;
    // A copy whose checksum differs is another snapshot, not a copy.
    if (sha && rsha && rsha !== sha) return;
    candidates.push({ storage: r.storage, name: r.name, ...(rsha ? { sha256: rsha } : {}), nodeId: node.id, node: node.name });
  };
  for (const r of ok) {
    if (r.storage === 'local') {
      const holder = ordered.find((n) => n.name === r.node);
      add(r, holder && usable(holder) ? holder : undefined);
    } else add(r, initNode);
  }
  // Fallbacks, whatever storage was asked for: the same bytes (same sha256) elsewhere — the same
  // name in the other storage (a local snapshot's S3 copy), then other nodes' local records.
  if (sha) {
    const same = all.filter((r) => r.state === 'successful' && !named.includes(r) && (metadataOf(r)?.sha256 ?? (r.name === params.snapshot ? sha : undefined)) === sha);
    same.sort((a, b) => Number(b.name === params.snapshot) - Number(a.name === params.snapshot));
    for (const r of same) {
      if (r.storage === 's3') add(r, initNode);
      else {
        const holder = ordered.find((n) => n.name === r.node);
        add(r, holder && usable(holder) ? holder : undefined);
      }
    }
  }
  const primary = candidates[0];
  if (!primary) {
    const local = ok.find((r) => r.storage === 'local');
    const why = local ? `it is stored on node ${local.node}, which ${ordered.some((n) => n.name === local.node) ? 'is not connected' : 'is no longer in the cluster'}, and no S3 copy or other node has a copy with the same sha256` : 'no node of the cluster can read it';
    throw new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Snapshot "${params.snapshot}" of cluster ${cluster.name} cannot be read: ${why}. Restore another snapshot (etcdsnap snapshot ls ${cluster.name}).`, {
      details: { cluster: cluster.name, snapshot: params.snapshot },
    });
  }
  const firstLocal = ok.find((r) => r.storage === 'local');
  let why = primary.storage === 'local' ? `the local copy on ${primary.node}` : `the S3 copy, read by the first connected node (${primary.node})`;
  if (firstLocal && (primary.storage !== 'local' || primary.name !== firstLocal.name)) why += ` (the holder of the local copy, ${firstLocal.node}, is gone or not connected)`;
  return { metadata, primary, fallback: candidates.find((c) => c !== primary) ?? null, why };
}
