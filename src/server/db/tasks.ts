import type { Db, TasksTable } from './schema.js';

export type TaskRow = TasksTable;

/** A task's `result` parsed, or undefined when the agent reported none. */
export function taskResult<T extends Record<string, unknown>>(row: Pick<TaskRow, 'result'>): T | undefined {
  return row.result === null ? undefined : (JSON.parse(row.result) as T);
}

/** Inserts a task unless one with its id exists (dispatching twice after a restart is harmless). */
export async function insertTaskOnce(db: Db, row: TaskRow): Promise<boolean> {
  const res = await db
    .insertInto('tasks')
    .values(row)
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** A node's tasks, oldest first (the plan carries the first 16). */
export function listNodeTasks(db: Db, nodeId: string): Promise<TaskRow[]> {
  return db.selectFrom('tasks').selectAll().where('node_id', '=', nodeId).orderBy('created_at').orderBy('id').execute();
}

export function listOperationTasks(db: Db, operationId: string): Promise<TaskRow[]> {
  return db.selectFrom('tasks').selectAll().where('operation_id', '=', operationId).execute();
}

export function getTask(db: Db, id: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export function updateTask(db: Db, id: string, fields: Partial<Pick<TaskRow, 'state' | 'message' | 'code' | 'started_at' | 'finished_at' | 'result'>>): Promise<unknown> {
  return db.updateTable('tasks').set(fields).where('id', '=', id).execute();
}

/** Removes an operation's tasks; returns the nodes whose plans changed. */
export async function deleteOperationTasks(db: Db, operationId: string): Promise<string[]> {
  const rows = await db.selectFrom('tasks').select('node_id').where('operation_id', '=', operationId).execute();
  await db.deleteFrom('tasks').where('operation_id', '=', operationId).execute();
  return [...new Set(rows.map((r) => r.node_id))];
}

export function deleteTask(db: Db, id: string): Promise<unknown> {
  return db.deleteFrom('tasks').where('id', '=', id).execute();
}
