import type { ClustersTable, Db, NodesTable, TokensTable } from './schema.js';

/** Clusters, their nodes and the tokens of both. Small functions over one table each. */
export type ClusterRow = ClustersTable;
export type NodeRow = NodesTable;

export function insertCluster(db: Db, row: ClusterRow): Promise<unknown> {
  return db.insertInto('clusters').values(row).execute();
}

export function getCluster(db: Db, id: string): Promise<ClusterRow | undefined> {
  return db.selectFrom('clusters').selectAll().where('id', '=', id).executeTakeFirst();
}

export function getClusterByName(db: Db, name: string): Promise<ClusterRow | undefined> {
  return db.selectFrom('clusters').selectAll().where('name', '=', name).executeTakeFirst();
}

export function getClusterByRegistrationHash(db: Db, hash: string): Promise<ClusterRow | undefined> {
  return db.selectFrom('clusters').selectAll().where('registration_token_hash', '=', hash).executeTakeFirst();
}

export function listClusters(db: Db): Promise<ClusterRow[]> {
  return db.selectFrom('clusters').selectAll().orderBy('name').execute();
}

/** Clusters with S3 in their policy (for the reconciler). */
export async function listClusterIds(db: Db): Promise<string[]> {
  return (await db.selectFrom('clusters').select('id').orderBy('id').execute()).map((r) => r.id);
}

export function updateCluster(db: Db, id: string, fields: Partial<Omit<ClusterRow, 'id' | 'created_at'>>): Promise<unknown> {
  return db.updateTable('clusters').set(fields).where('id', '=', id).execute();
}

/** Deletes the cluster; its nodes, tokens, records, tasks and operations go with it (foreign keys cascade). */
export function deleteCluster(db: Db, id: string): Promise<unknown> {
  return db.deleteFrom('clusters').where('id', '=', id).execute();
}

export function getNode(db: Db, id: string): Promise<NodeRow | undefined> {
  return db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirst();
}

export function getNodeByName(db: Db, clusterId: string, name: string): Promise<NodeRow | undefined> {
  return db.selectFrom('nodes').selectAll().where('cluster_id', '=', clusterId).where('name', '=', name).executeTakeFirst();
}

export function listNodes(db: Db, clusterId?: string): Promise<NodeRow[]> {
  let q = db.selectFrom('nodes').selectAll();
  if (clusterId !== undefined) q = q.where('cluster_id', '=', clusterId);
  return q.orderBy('name').execute();
}

export function insertNode(db: Db, row: NodeRow): Promise<unknown> {
  return db.insertInto('nodes').values(row).execute();
}

export function updateNode(db: Db, id: string, fields: Partial<Omit<NodeRow, 'id' | 'cluster_id'>>): Promise<unknown> {
  return db.updateTable('nodes').set(fields).where('id', '=', id).execute();
}

export function deleteNode(db: Db, id: string): Promise<unknown> {
  return db.deleteFrom('nodes').where('id', '=', id).execute();
}

export function insertToken(db: Db, row: TokensTable): Promise<unknown> {
  return db.insertInto('tokens').values(row).execute();
}

export function findToken(db: Db, hash: string): Promise<TokensTable | undefined> {
  return db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
}

export function deleteNodeTokens(db: Db, nodeId: string): Promise<unknown> {
  return db.deleteFrom('tokens').where('node_id', '=', nodeId).execute();
}

export async function countAdminTokens(db: Db): Promise<number> {
  const row = await db.selectFrom('tokens').select((eb) => eb.fn.countAll<number>().as('n')).where('kind', '=', 'admin').executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  return (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
}

export function putSetting(db: Db, key: string, value: string): Promise<unknown> {
  return db
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}
