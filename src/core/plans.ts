import { Type, type Static } from '@sinclair/typebox';
import { CODECS } from './codec.js';
import { SnapshotMetadataSchema } from './metadata.js';
import { S3ConfigSchema } from './s3-config.js';
import { DEFAULT_SCHEDULE } from './schedule.js';

/**
 * The server↔agent protocol. Plans go down (long-poll), reports go up. Everything is data with
 * an apiVersion, so an agent and a server of neighbouring versions still talk: a reader ignores
 * nothing silently — unknown fields are refused by the schemas, and a new field is added as
 * optional first.
 */
export const PROTOCOL_VERSION = 'etcdsnap.io/v1';

const Name = Type.String({ pattern: '^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$' });
const Url = Type.String({ pattern: '^https?://', maxLength: 2048 });
const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Time = Type.String({ format: 'date-time' });

/** A cluster's snapshot policy (RKE2-like: local snapshots always, S3 in addition when set). */
export const SnapshotPolicySchema = Type.Object(
  {
    /** Recurring snapshots on. Default true. */
    enabled: Type.Boolean({ default: true }),
    /** Cron (UTC) or `@every 12h`. Default `0 *\/5 * * *`. */
    schedule: Type.String({ minLength: 1, maxLength: 128, default: DEFAULT_SCHEDULE }),
    /** Local snapshots kept per node by the schedule. Default 5. */
    retention: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
    /** Codec of stored snapshots. Default zstd. */
    compression: Type.Union(CODECS.map((c) => Type.Literal(c)), { default: 'zstd' }),
    /** S3 target in addition to the node's local directory; null for local only. */
    s3: Type.Union([S3ConfigSchema, Type.Null()], { default: null }),
  },
  { additionalProperties: false },
);
export type SnapshotPolicy = Static<typeof SnapshotPolicySchema>;

/** One-time work for a node, tied to a server operation. Agents never run a task id twice. */
export const SnapshotTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('snapshot'),
    operationId: Id,
    /** Base name; default `on-demand`. */
    base: Type.Optional(Name),
  },
  { additionalProperties: false },
);
/** Delete snapshots stored on this node (and their S3 copies if the names are S3 locations). */
export const DeleteSnapshotsTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('delete-snapshots'),
    /** Stored names (with codec suffix) on this node's local target. */
    names: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: 1000 }),
  },
  { additionalProperties: false },
);

/*
 * Restore tasks. A restore (server operation) sends each node, in order:
 *   Started:        restore-prepare (init node) → restore-fetch (other nodes)  — nothing stopped yet
 *   Shutdown:       restore-stop (every node)
 *   Restore:        restore-apply (every node)
 *   RestartCluster: restore-start (every node, at once) → restore-finish (every node)
 *                   → restore-cleanup (every node; after it the restore cannot be undone)
 *   on failure:     restore-rollback (every node)
 * Every handler is idempotent: a task interrupted by an agent crash runs again after the
 * restart and must reach the same end state. Results go back in `TaskStatus.result`.
 */
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** A bearer secret for one restore's file transfer (sent only in plans, over the server's TLS). */
const TransferToken = Type.String({ minLength: 32, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' });
const MemberNameField = Name;
const KubernetesVersion = Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()]);
const ClusterConfig = Type.Union([Type.String({ maxLength: 1048576 }), Type.Null()]);

/**
 * Init node: get the snapshot (this node's snapshot dir or the policy's S3 target), verify it
 * (size, sha256, etcd trailer), stage the raw etcd snapshot under the agent's data dir, and
 * serve it to the other nodes on the transfer endpoint to holders of `transferToken`.
 * Result: {@link RestorePrepareResult}.
 */
export const RestorePrepareTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-prepare'),
    operationId: Id,
    source: Type.Object(
      {
        storage: Type.Union([Type.Literal('local'), Type.Literal('s3')]),
        /** Stored name (with codec suffix) in that target. */
        name: Type.String({ minLength: 1, maxLength: 255 }),
        /** sha256 of the stored bytes the server knows from the record's metadata; a copy that differs is refused. */
        sha256: Type.Optional(Sha256),
      },
      { additionalProperties: false },
    ),
    transferToken: TransferToken,
  },
  { additionalProperties: false },
);
export interface RestorePrepareResult {
  [key: string]: string | number | undefined;
  /** sha256 and size of the raw (decompressed) etcd snapshot staged for the restore. */
  rawSha256: string;
  rawSize: number;
  /** From `etcdctl snapshot status` of the staged file. */
  revision: number;
  totalKey: number;
  /** `https://host:port` of this node's transfer endpoint and the sha256 (hex, DER) of its certificate. */
  transferUrl: string;
  transferCertSha256: string;
  /**
   * When the init node also serves the stored (compressed) bytes — a fraction of the raw size
   * over the network — their codec, sha256 and size. Added after v1: optional.
   */
  storedCodec?: string;
  storedSha256?: string;
  storedSize?: number;
}

/** Other nodes: download the staged file from the init node (certificate pinned), check size and sha256, stage it. */
export const RestoreFetchTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-fetch'),
    operationId: Id,
    source: Type.Object(
      {
        /** The init node's transfer URL (as it reported it). */
        url: Url,
        /** sha256 (hex) of the DER certificate the init node serves: the only one accepted. */
        certSha256: Sha256,
        token: TransferToken,
        /** Init node's name, for messages. */
        node: Name,
      },
      { additionalProperties: false },
    ),
    rawSha256: Sha256,
    rawSize: Type.Integer({ minimum: 1 }),
    /**
     * Download the stored (compressed) bytes instead and decompress them here, checking their
     * sha256 and size first and the raw bytes against rawSha256/rawSize after. Added after v1: optional.
     */
    stored: Type.Optional(Type.Object({ codec: Type.Union(CODECS.map((c) => Type.Literal(c))), sha256: Sha256, size: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

/**
 * Every node: run the stop hook, stop the etcd member and keep it stopped (also across agent
 * restarts, and no recurring snapshots) until restore-start or restore-rollback.
 */
export const RestoreStopTaskSchema = Type.Object(
  { id: Id, kind: Type.Literal('restore-stop'), operationId: Id },
  { additionalProperties: false },
);

/**
 * Every node: move the member's data dir aside to `<dataDir>.pre-restore-<operationId>` (never
 * delete it) and restore the staged file into a fresh data dir as a member of the new cluster.
 */
export const RestoreApplyTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-apply'),
    operationId: Id,
    memberName: MemberNameField,
    peerUrl: Url,
    /** `m1=http://…:2380,m2=…`: every member of the restored cluster. */
    initialCluster: Type.String({ minLength: 3, maxLength: 8192 }),
    /** New for every restore, so restored members never talk to members of the old cluster. */
    initialClusterToken: Type.String({ minLength: 1, maxLength: 256 }),
    /** The staged file must still have this sha256. */
    rawSha256: Sha256,
  },
  { additionalProperties: false },
);

/**
 * Every node, at once: start the member on the restored data and wait until it is healthy
 * (the cluster has a leader), then read what the server compares across members.
 * Result: {@link RestoreStartResult}.
 */
export const RestoreStartTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-start'),
    operationId: Id,
    /** The snapshot's revision (from restore-prepare): hash and key count are read at it. */
    revision: Type.Integer({ minimum: 1 }),
    /** How long to wait for the member to become healthy. */
    timeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
  },
  { additionalProperties: false },
);
export interface RestoreStartResult {
  [key: string]: string | number;
  /** The member's current revision. */
  revision: number;
  /** etcd's HashKV at the snapshot's revision (equal on every member restored from the same file). */
  hashKv: number;
  /** Live keys at the snapshot's revision. */
  keys: number;
}

/**
 * Every node, after the server verified the members: make sure the member runs and run the start
 * hook with the restored Kubernetes version and config. The hold and the old data dir stay, so a
 * failure on any node can still roll every node back.
 */
export const RestoreFinishTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-finish'),
    operationId: Id,
    kubernetesVersion: KubernetesVersion,
    clusterConfig: ClusterConfig,
  },
  { additionalProperties: false },
);

/**
 * Every node, once every node finished (the restore is committed): release the hold, remove the
 * staged file, and remove the old data dir (or keep it `keepOldDataDays` days, swept later by
 * the agent).
 */
export const RestoreCleanupTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-cleanup'),
    operationId: Id,
    keepOldDataDays: Type.Integer({ minimum: 0, maximum: 365 }),
  },
  { additionalProperties: false },
);

/**
 * Every node, when a restore failed: stop the member if it runs, put the old data dir back if
 * it was moved (the restored one is removed: it was made from the snapshot), start the member
 * if it ran before the restore, run the start hook with the version and config the cluster had,
 * release the hold, remove staged files, stop serving. Safe whatever the restore got to.
 */
export const RestoreRollbackTaskSchema = Type.Object(
  {
    id: Id,
    kind: Type.Literal('restore-rollback'),
    operationId: Id,
    kubernetesVersion: KubernetesVersion,
    clusterConfig: ClusterConfig,
    /** How long to wait for the member to become healthy again after the start (when it is started). */
    timeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
  },
  { additionalProperties: false },
);

export const RESTORE_TASK_KINDS = ['restore-prepare', 'restore-fetch', 'restore-stop', 'restore-apply', 'restore-start', 'restore-finish', 'restore-cleanup', 'restore-rollback'] as const;
export type RestoreTaskKind = (typeof RESTORE_TASK_KINDS)[number];

export const TaskSchema = Type.Union([
  SnapshotTaskSchema,
  DeleteSnapshotsTaskSchema,
  RestorePrepareTaskSchema,
  RestoreFetchTaskSchema,
  RestoreStopTaskSchema,
  RestoreApplyTaskSchema,
  RestoreStartTaskSchema,
  RestoreFinishTaskSchema,
  RestoreCleanupTaskSchema,
  RestoreRollbackTaskSchema,
]);
export type Task = Static<typeof TaskSchema>;
export type SnapshotTask = Static<typeof SnapshotTaskSchema>;
export type DeleteSnapshotsTask = Static<typeof DeleteSnapshotsTaskSchema>;
export type RestorePrepareTask = Static<typeof RestorePrepareTaskSchema>;
export type RestoreFetchTask = Static<typeof RestoreFetchTaskSchema>;
export type RestoreStopTask = Static<typeof RestoreStopTaskSchema>;
export type RestoreApplyTask = Static<typeof RestoreApplyTaskSchema>;
export type RestoreStartTask = Static<typeof RestoreStartTaskSchema>;
export type RestoreFinishTask = Static<typeof RestoreFinishTaskSchema>;
export type RestoreCleanupTask = Static<typeof RestoreCleanupTaskSchema>;
export type RestoreRollbackTask = Static<typeof RestoreRollbackTaskSchema>;

export const NodePlanSchema = Type.Object(
  {
    apiVersion: Type.Literal(PROTOCOL_VERSION),
    /** Changes whenever anything in the plan changes; the agent long-polls with the last one it applied. */
    planId: Id,
    node: Name,
    cluster: Type.Object({ id: Id, name: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    kubernetesVersion: Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()]),
    clusterConfig: Type.Union([Type.String({ maxLength: 1048576 }), Type.Null()]),
    policy: SnapshotPolicySchema,
    tasks: Type.Array(TaskSchema, { maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type NodePlan = Static<typeof NodePlanSchema>;

export const RegistrationRequestSchema = Type.Object(
  {
    apiVersion: Type.Literal(PROTOCOL_VERSION),
    registrationToken: Type.String({ minLength: 16, maxLength: 256 }),
    node: Name,
    agentVersion: Type.String({ maxLength: 64 }),
    mode: Type.Union([Type.Literal('managed'), Type.Literal('external')]),
    member: Type.Object({ name: Name, clientUrl: Url, peerUrl: Url }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type RegistrationRequest = Static<typeof RegistrationRequestSchema>;

export const RegistrationResponseSchema = Type.Object(
  {
    apiVersion: Type.Literal(PROTOCOL_VERSION),
    nodeId: Id,
    clusterId: Id,
    /** Bearer token for the agent's later calls; shown once, stored hashed by the server. */
    nodeToken: Type.String({ minLength: 32 }),
  },
  { additionalProperties: false },
);
export type RegistrationResponse = Static<typeof RegistrationResponseSchema>;

/** A snapshot an agent took (or failed to take), as it reports it. */
export const SnapshotReportSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    node: Name,
    state: Type.Union([Type.Literal('successful'), Type.Literal('failed')]),
    /** `file://…` or `s3://…`; for a failed snapshot, where it would have been. */
    location: Type.String({ maxLength: 4096 }),
    size: Type.Integer({ minimum: 0 }),
    createdAt: Time,
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Error code of a failed snapshot. */
    code: Type.Optional(Type.String({ maxLength: 64 })),
    /** How long the save took (health check to stored), for the server's save-duration metric. Optional (added after v1). */
    durationMs: Type.Optional(Type.Integer({ minimum: 0 })),
    metadata: Type.Union([SnapshotMetadataSchema, Type.Null()]),
    /** The task that took it (one-time snapshots); absent for recurring ones. Added after v1: optional. */
    taskId: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type SnapshotReport = Static<typeof SnapshotReportSchema>;

export const TaskStatusSchema = Type.Object(
  {
    id: Id,
    state: Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    code: Type.Optional(Type.String({ maxLength: 64 })),
    startedAt: Time,
    finishedAt: Type.Optional(Time),
    /** Structured output of a succeeded task (restore tasks: see their Result types). Added after v1: optional. */
    result: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()]), { maxProperties: 32 })),
  },
  { additionalProperties: false },
);
export type TaskStatus = Static<typeof TaskStatusSchema>;

export const MemberStatusSchema = Type.Object(
  {
    name: Name,
    clientUrl: Url,
    peerUrl: Url,
    state: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('stopped')]),
    etcdVersion: Type.Optional(Type.String({ maxLength: 32 })),
    dbSize: Type.Optional(Type.Integer({ minimum: 0 })),
    revision: Type.Optional(Type.Integer({ minimum: 0 })),
    error: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type MemberStatus = Static<typeof MemberStatusSchema>;

/** POST by the agent after every change and at least every 30 s (also its heartbeat). */
export const AgentReportSchema = Type.Object(
  {
    apiVersion: Type.Literal(PROTOCOL_VERSION),
    node: Name,
    agentVersion: Type.String({ maxLength: 64 }),
    /** Last plan the agent applied. */
    planId: Type.Union([Id, Type.Null()]),
    member: MemberStatusSchema,
    /** Status of the plan's tasks (and of finished ones the server has not acknowledged). */
    tasks: Type.Array(TaskStatusSchema, { maxItems: 64 }),
    /** Snapshots taken or failed since the last acknowledged report (queued while the server was away). */
    snapshots: Type.Array(SnapshotReportSchema, { maxItems: 1000 }),
    /** Snapshots the agent deleted (retention), by location. */
    deleted: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 1000 }),
    /** Next recurring snapshot, if scheduled. */
    nextScheduledAt: Type.Union([Time, Type.Null()]),
  },
  { additionalProperties: false },
);
export type AgentReport = Static<typeof AgentReportSchema>;
