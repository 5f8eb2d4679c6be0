import type { Db, OperationHistoryTable, OperationStepsTable, OperationsTable } from './schema.js';

export type OperationRow = OperationsTable;
export type StepRow = OperationStepsTable;
export type HistoryRow = OperationHistoryTable;

export function insertOperation(db: Db, row: OperationRow): Promise<unknown> {
  return db.insertInto('operations').values(row).execute();
}

export function getOperation(db: Db, id: string): Promise<OperationRow | undefined> {
  return db.selectFrom('operations').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The running operation of a cluster, if any. */
export function getRunningOperation(db: Db, clusterId: string): Promise<OperationRow | undefined> {
  return db.selectFrom('operations').selectAll().where('running_cluster_id', '=', clusterId).executeTakeFirst();
}

/** Every operation that has not ended (the engine re-evaluates them, also after a restart). */
export function listActiveOperations(db: Db): Promise<OperationRow[]> {
  return db.selectFrom('operations').selectAll().where('running_cluster_id', 'is not', null).orderBy('created_at').execute();
}

/** Newest first. */
export function listOperations(db: Db, filter: { clusterId?: string; limit?: number }): Promise<OperationRow[]> {
  let q = db.selectFrom('operations').selectAll();
  if (filter.clusterId !== undefined) q = q.where('cluster_id', '=', filter.clusterId);
  return q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit ?? 100)
    .execute();
}

export function updateOperation(db: Db, id: string, fields: Partial<Omit<OperationRow, 'id' | 'cluster_id' | 'kind' | 'created_at'>>): Promise<unknown> {
  return db.updateTable('operations').set(fields).where('id', '=', id).execute();
}

export function upsertStep(db: Db, row: StepRow): Promise<unknown> {
  return db
    .insertInto('operation_steps')
    .values(row)
    .onConflict((oc) => oc.columns(['operation_id', 'node']).doUpdateSet({ state: row.state, message: row.message, updated_at: row.updated_at }))
    .execute();
}

export function listSteps(db: Db, operationIds: string[]): Promise<StepRow[]> {
  if (operationIds.length === 0) return Promise.resolve([]);
  return db.selectFrom('operation_steps').selectAll().where('operation_id', 'in', operationIds).orderBy('node').execute();
}

export async function appendHistory(db: Db, operationId: string, at: number, phase: string, message: string): Promise<void> {
  const last = await db
    .selectFrom('operation_history')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('operation_id', '=', operationId)
    .executeTakeFirst();
  await db
    .insertInto('operation_history')
    .values({ operation_id: operationId, seq: Number(last?.seq ?? 0) + 1, at, phase, message })
    .execute();
}

export function listHistory(db: Db, operationIds: string[]): Promise<HistoryRow[]> {
  if (operationIds.length === 0) return Promise.resolve([]);
  return db.selectFrom('operation_history').selectAll().where('operation_id', 'in', operationIds).orderBy('seq').execute();
}

/** Counts of ended operations by kind and phase (for metrics after a restart). */
export async function countOperations(db: Db): Promise<{ kind: string; phase: string; n: number }[]> {
  const rows = await db
    .selectFrom('operations')
    .select(['kind', 'phase', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy(['kind', 'phase'])
    .execute();
  return rows.map((r) => ({ kind: r.kind, phase: r.phase, n: Number(r.n) }));
}
