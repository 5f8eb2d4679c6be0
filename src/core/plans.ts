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
/** Restore tasks join this union in the restore issue. */
export const TaskSchema = Type.Union([SnapshotTaskSchema, DeleteSnapshotsTaskSchema]);
export type Task = Static<typeof TaskSchema>;
export type SnapshotTask = Static<typeof SnapshotTaskSchema>;
export type DeleteSnapshotsTask = Static<typeof DeleteSnapshotsTaskSchema>;

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
