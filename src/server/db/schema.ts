import type { Kysely, Transaction } from 'kysely';

/**
 * Tables of the server database. Times are integer milliseconds since the epoch, JSON
 * documents are text, booleans are 0/1: the same columns work on SQLite and PostgreSQL.
 */
export interface Database {
  clusters: ClustersTable;
  nodes: NodesTable;
  tokens: TokensTable;
  snapshots: SnapshotsTable;
  tasks: TasksTable;
  operations: OperationsTable;
  operation_steps: OperationStepsTable;
  operation_history: OperationHistoryTable;
  settings: SettingsTable;
}

export type Db = Kysely<Database> | Transaction<Database>;

export interface ClustersTable {
  id: string;
  name: string;
  kubernetes_version: string | null;
  cluster_config: string | null;
  /** SnapshotPolicy as JSON, with `s3` stripped of its secrets. */
  policy: string;
  /** `{secretAccessKey?, sessionToken?}` encrypted with the server key (context `cluster:<id>:s3`), or null. */
  s3_secrets: string | null;
  registration_token_hash: string;
  /** The registration token encrypted (context `cluster:<id>:registration`), so the join command can be shown again. */
  registration_token: string;
  created_at: number;
  updated_at: number;
}

export interface NodesTable {
  id: string;
  cluster_id: string;
  name: string;
  mode: string;
  agent_version: string;
  member_name: string;
  member_client_url: string;
  member_peer_url: string;
  /** healthy | unhealthy | stopped from the last report; null before the first report. */
  member_state: string | null;
  etcd_version: string | null;
  db_size: number | null;
  revision: number | null;
  member_error: string | null;
  /** Plan the agent last said it applied. */
  applied_plan_id: string | null;
  next_scheduled_at: number | null;
  last_seen_at: number | null;
  last_report_at: number | null;
  registered_at: number;
  updated_at: number;
}

export interface TokensTable {
  /** sha256 of the token (hex). */
  hash: string;
  kind: 'admin' | 'node';
  node_id: string | null;
  cluster_id: string | null;
  created_at: number;
}

export interface SnapshotsTable {
  /** `<clusterId>.<storage>.<name>` */
  id: string;
  cluster_id: string;
  name: string;
  node: string;
  state: 'successful' | 'failed';
  message: string | null;
  code: string | null;
  location: string;
  storage: 'local' | 's3';
  size: number;
  created_at: number;
  kubernetes_version: string | null;
  metadata: string | null;
  /** How long the save took, when the agent said. */
  duration_ms: number | null;
  /** Last time a report or a listing confirmed the record. */
  seen_at: number;
  /** Set while a delete task for it runs on its node. */
  deleting_task_id: string | null;
}

export interface TasksTable {
  id: string;
  cluster_id: string;
  node_id: string;
  operation_id: string | null;
  kind: string;
  /** The Task as sent in the plan (JSON). */
  spec: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed';
  message: string | null;
  code: string | null;
  started_at: number | null;
  finished_at: number | null;
  created_at: number;
  /** `TaskStatus.result` as JSON (restore tasks), null until the agent reports one. */
  result: string | null;
}

export interface OperationsTable {
  id: string;
  cluster_id: string;
  /** Equals cluster_id while the operation runs, null once it ended: a unique index allows one running operation per cluster. */
  running_cluster_id: string | null;
  kind: string;
  phase: string;
  params: string;
  /** State of the phase functions (JSON), e.g. whether tasks were dispatched. */
  data: string;
  message: string | null;
  failure: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface OperationStepsTable {
  operation_id: string;
  node: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed';
  message: string | null;
  updated_at: number;
}

export interface OperationHistoryTable {
  operation_id: string;
  seq: number;
  at: number;
  phase: string;
  message: string;
}

export interface SettingsTable {
  key: string;
  value: string;
}
