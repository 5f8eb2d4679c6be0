import type { ClusterCreate, ClusterPatch, JoinInfo } from '../core/api.js';
import { EtcdsnapError } from '../core/errors.js';
import type { ServerContext } from './context.js';
import { hashToken, newId, newToken } from './crypto.js';
import * as repo from './db/clusters.js';
import type { ClusterRow } from './db/clusters.js';
import { getRunningOperation } from './db/operations.js';
import { applyPolicyPatch, defaultPolicy, type S3Secrets, type StoredPolicy } from './policy.js';
import { clusterViews } from './views.js';

/** Cluster lifecycle: create, edit, delete, join information. Secrets are encrypted here and nowhere else. */

const secretsContext = (id: string): string => `cluster:${id}:s3`;
const registrationContext = (id: string): string => `cluster:${id}:registration`;

export function clusterPolicy(row: Pick<ClusterRow, 'policy'>): StoredPolicy {
  return JSON.parse(row.policy) as StoredPolicy;
}

export function clusterSecrets(ctx: Pick<ServerContext, 'keyring'>, row: Pick<ClusterRow, 'id' | 's3_secrets'>): S3Secrets | null {
  return row.s3_secrets === null ? null : (JSON.parse(ctx.keyring.decrypt(row.s3_secrets, secretsContext(row.id))) as S3Secrets);
}

function sealSecrets(ctx: ServerContext, id: string, secrets: S3Secrets | null): string | null {
  return secrets === null ? null : ctx.keyring.encrypt(JSON.stringify(secrets), secretsContext(id));
}

export async function loadCluster(ctx: ServerContext, id: string): Promise<ClusterRow> {
  const row = await repo.getCluster(ctx.db, id);
  if (!row) throw new EtcdsnapError('NOT_FOUND', `Cluster ${id} not found: list clusters with GET /api/v1/clusters.`, { details: { clusterId: id } });
  return row;
}

async function publishCluster(ctx: ServerContext, row: ClusterRow): Promise<void> {
  const [cluster] = await clusterViews(ctx, [row]);
  if (cluster) ctx.events.publish({ type: 'cluster', cluster, change: 'upsert' });
}

function nameTaken(name: string): EtcdsnapError {
  return new EtcdsnapError('CONFLICT', `A cluster named "${name}" exists already: choose another name.`, { details: { name } });
}

export async function createCluster(ctx: ServerContext, body: ClusterCreate): Promise<ClusterRow> {
  const id = newId('c');
  const { policy, secrets } = applyPolicyPatch({ policy: defaultPolicy(), secrets: null }, body.policy);
  const token = newToken('registration');
  const now = ctx.now();
  const row: ClusterRow = {
    id,
    name: body.name,
    kubernetes_version: body.kubernetesVersion ?? null,
    cluster_config: body.clusterConfig ?? null,
    policy: JSON.stringify(policy),
    s3_secrets: sealSecrets(ctx, id, secrets),
    registration_token_hash: hashToken(token),
    registration_token: ctx.keyring.encrypt(token, registrationContext(id)),
    created_at: now,
    updated_at: now,
  };
  await ctx.db.transaction().execute(async (tx) => {
    if (await repo.getClusterByName(tx, body.name)) throw nameTaken(body.name);
    await repo.insertCluster(tx, row);
  });
  ctx.log.info({ clusterId: id, name: body.name }, 'cluster created');
  await publishCluster(ctx, row);
  if (policy.s3) ctx.reconciler.request(id);
  return row;
}

export async function patchCluster(ctx: ServerContext, id: string, body: ClusterPatch): Promise<ClusterRow> {
  const updated = await ctx.db.transaction().execute(async (tx) => {
    const row = await repo.getCluster(tx, id);
    if (!row) throw new EtcdsnapError('NOT_FOUND', `Cluster ${id} not found.`, { details: { clusterId: id } });
    const { policy, secrets } = applyPolicyPatch({ policy: clusterPolicy(row), secrets: clusterSecrets(ctx, row) }, body.policy);
    const fields: Partial<ClusterRow> = { policy: JSON.stringify(policy), updated_at: ctx.now() };
    if (body.policy?.s3 !== undefined) fields.s3_secrets = sealSecrets(ctx, id, secrets);
    if (body.kubernetesVersion !== undefined) fields.kubernetes_version = body.kubernetesVersion;
    if (body.clusterConfig !== undefined) fields.cluster_config = body.clusterConfig;
    await repo.updateCluster(tx, id, fields);
    return { ...row, ...fields } as ClusterRow;
  });
  ctx.log.info({ clusterId: id, fields: Object.keys(body), policy: body.policy ? Object.keys(body.policy) : undefined }, 'cluster updated');
  // Plans carry the policy, version and config: every agent of the cluster gets the change now.
  ctx.plans.notify(id);
  await publishCluster(ctx, updated);
  if (body.policy?.s3 !== undefined && clusterPolicy(updated).s3) ctx.reconciler.request(id);
  return updated;
}

/** Deletes the cluster and everything of it (nodes and their tokens, records, operations). Refused while an operation runs. */
export async function deleteCluster(ctx: ServerContext, id: string): Promise<void> {
  const row = await ctx.db.transaction().execute(async (tx) => {
    const found = await repo.getCluster(tx, id);
    if (!found) throw new EtcdsnapError('NOT_FOUND', `Cluster ${id} not found.`, { details: { clusterId: id } });
    const running = await getRunningOperation(tx, id);
    if (running) throw operationRunning(running.id, id);
    await repo.deleteCluster(tx, id);
    return found;
  });
  ctx.log.info({ clusterId: id, name: row.name }, 'cluster deleted');
  ctx.plans.notify(id);
  const [view] = await clusterViews(ctx, [row]);
  if (view) ctx.events.publish({ type: 'cluster', cluster: view, change: 'delete' });
}

export function operationRunning(operationId: string, clusterId: string): EtcdsnapError {
  return new EtcdsnapError('OPERATION_RUNNING', `Operation ${operationId} is running on cluster ${clusterId}: wait for it to finish (etcdsnap operation watch ${operationId}), then retry.`, {
    details: { operationId, clusterId },
  });
}

/** The registration token in clear (for the join command). */
export function registrationToken(ctx: ServerContext, row: ClusterRow): string {
  return ctx.keyring.decrypt(row.registration_token, registrationContext(row.id));
}

/** A new registration token; the old one stops working (registered nodes keep their node tokens). */
export async function rotateRegistrationToken(ctx: ServerContext, id: string): Promise<ClusterRow> {
  await loadCluster(ctx, id);
  const token = newToken('registration');
  await repo.updateCluster(ctx.db, id, { registration_token_hash: hashToken(token), registration_token: ctx.keyring.encrypt(token, registrationContext(id)), updated_at: ctx.now() });
  ctx.log.info({ clusterId: id }, 'registration token rotated');
  return loadCluster(ctx, id);
}

/** Quotes for a POSIX shell when needed. */
function sh(value: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

export function joinInfo(ctx: ServerContext, row: ClusterRow): JoinInfo {
  const token = registrationToken(ctx, row);
  const caChecksum = ctx.tls?.caChecksum ?? null;
  const parts = ['etcdsnap agent', `--server ${sh(ctx.url)}`];
  if (caChecksum) parts.push(`--ca-checksum ${caChecksum}`);
  parts.push(`--registration-token ${sh(token)}`, '--node-name <NODE>', '--data-dir /var/lib/etcdsnap-agent');
  return { server: ctx.url, registrationToken: token, caChecksum, command: parts.join(' ') };
}

/** Removes a node (a decommissioned machine): its token stops working, its pending tasks go; its records stay. */
export async function removeNode(ctx: ServerContext, clusterId: string, nodeId: string): Promise<void> {
  await ctx.db.transaction().execute(async (tx) => {
    const node = await repo.getNode(tx, nodeId);
    if (!node || node.cluster_id !== clusterId) throw new EtcdsnapError('NOT_FOUND', `Node ${nodeId} not found in cluster ${clusterId}.`, { details: { clusterId, nodeId } });
    await repo.deleteNode(tx, nodeId);
  });
  ctx.log.info({ clusterId, nodeId }, 'node removed');
  ctx.plans.notify(clusterId);
  ctx.engine.kick();
}
