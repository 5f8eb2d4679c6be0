import { Type, type Static } from '@sinclair/typebox';
import { SnapshotMetadataSchema, RESTORE_MODES } from './metadata.js';
import { S3ConfigSchema } from './s3-config.js';
import { SnapshotPolicySchema } from './plans.js';

/**
 * Resources of the REST API (`/api/v1`), shared by the server (validation, OpenAPI) and the
 * CLI (typed client). Secrets are write-only: the server never returns `secretAccessKey` or
 * `sessionToken`; it says whether one is set instead.
 */
export const API_PREFIX = '/api/v1';

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Time = Type.String({ format: 'date-time' });
const ClusterName = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' });

export const ErrorBodySchema = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) });
export type ErrorBody = Static<typeof ErrorBodySchema>;

/** S3 settings as the API returns them: no secrets, flags saying which are set. */
export const S3ConfigViewSchema = Type.Composite([
  Type.Omit(S3ConfigSchema, ['secretAccessKey', 'sessionToken']),
  Type.Object({ hasSecretAccessKey: Type.Boolean(), hasSessionToken: Type.Boolean() }),
]);
export const SnapshotPolicyViewSchema = Type.Composite([Type.Omit(SnapshotPolicySchema, ['s3']), Type.Object({ s3: Type.Union([S3ConfigViewSchema, Type.Null()]) })]);

/**
 * A policy change. `s3`: an object replaces the S3 settings (a secret left out keeps the stored
 * one; `null` for a secret clears it), `null` removes S3.
 */
export const SnapshotPolicyPatchSchema = Type.Partial(
  Type.Object({
    enabled: Type.Boolean(),
    schedule: Type.String({ minLength: 1, maxLength: 128 }),
    retention: Type.Integer({ minimum: 1, maximum: 1000 }),
    compression: Type.Union([Type.Literal('none'), Type.Literal('zstd'), Type.Literal('gzip')]),
    s3: Type.Union([Type.Unknown(), Type.Null()]),
  }),
  { additionalProperties: false },
);

export const ClusterCreateSchema = Type.Object(
  {
    name: ClusterName,
    kubernetesVersion: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])),
    clusterConfig: Type.Optional(Type.Union([Type.String({ maxLength: 1048576 }), Type.Null()])),
    policy: Type.Optional(SnapshotPolicyPatchSchema),
  },
  { additionalProperties: false },
);
export type ClusterCreate = Static<typeof ClusterCreateSchema>;

export const ClusterPatchSchema = Type.Partial(Type.Omit(ClusterCreateSchema, ['name']), { additionalProperties: false });
export type ClusterPatch = Static<typeof ClusterPatchSchema>;

export const ClusterSchema = Type.Object({
  id: Id,
  name: ClusterName,
  kubernetesVersion: Type.Union([Type.String(), Type.Null()]),
  clusterConfig: Type.Union([Type.String(), Type.Null()]),
  policy: SnapshotPolicyViewSchema,
  nodes: Type.Object({ total: Type.Integer(), healthy: Type.Integer(), connected: Type.Integer() }),
  lastSuccessfulSnapshot: Type.Union([Type.Object({ name: Type.String(), createdAt: Time, size: Type.Integer() }), Type.Null()]),
  nextScheduledSnapshotAt: Type.Union([Time, Type.Null()]),
  runningOperationId: Type.Union([Id, Type.Null()]),
  createdAt: Time,
  updatedAt: Time,
});
export type Cluster = Static<typeof ClusterSchema>;

export const JoinInfoSchema = Type.Object({
  server: Type.String(),
  registrationToken: Type.String(),
  /** sha256 of the server CA certificate (DER), hex; null when the server runs plain HTTP. */
  caChecksum: Type.Union([Type.String(), Type.Null()]),
  /** A shell command that starts an agent on a node (fill in the node's etcd flags). */
  command: Type.String(),
});
export type JoinInfo = Static<typeof JoinInfoSchema>;

export const NodeSchema = Type.Object({
  id: Id,
  clusterId: Id,
  name: Type.String(),
  mode: Type.Union([Type.Literal('managed'), Type.Literal('external')]),
  agentVersion: Type.String(),
  member: Type.Object({ name: Type.String(), clientUrl: Type.String(), peerUrl: Type.String() }),
  state: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('stopped'), Type.Literal('disconnected')]),
  etcdVersion: Type.Union([Type.String(), Type.Null()]),
  dbSize: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  lastSeenAt: Type.Union([Time, Type.Null()]),
  registeredAt: Time,
});
export type ClusterNode = Static<typeof NodeSchema>;

export const SnapshotRecordSchema = Type.Object({
  /** Stable id: cluster, location kind and name. */
  id: Type.String(),
  clusterId: Id,
  name: Type.String(),
  node: Type.String(),
  state: Type.Union([Type.Literal('successful'), Type.Literal('failed')]),
  message: Type.Union([Type.String(), Type.Null()]),
  code: Type.Union([Type.String(), Type.Null()]),
  /** `file://…` on the node, or `s3://bucket/folder/name`. */
  location: Type.String(),
  storage: Type.Union([Type.Literal('local'), Type.Literal('s3')]),
  size: Type.Integer(),
  createdAt: Time,
  kubernetesVersion: Type.Union([Type.String(), Type.Null()]),
  restoreModes: Type.Array(Type.Union(RESTORE_MODES.map((m) => Type.Literal(m)))),
  metadata: Type.Union([SnapshotMetadataSchema, Type.Null()]),
});
export type SnapshotRecord = Static<typeof SnapshotRecordSchema>;

export const SnapshotCreateSchema = Type.Object({ name: Type.Optional(Type.String({ pattern: '^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$' })) }, { additionalProperties: false });

/** `POST /clusters/{id}/restores`: restore the whole cluster to a snapshot (an operation). */
export const RestoreCreateSchema = Type.Object(
  {
    /** Stored name of the snapshot (as listed, with its codec suffix). */
    snapshot: Type.String({ minLength: 1, maxLength: 255 }),
    /** `etcd`: data only; `kubernetes-version`: also the cluster's Kubernetes version; `all`: also its cluster config. */
    mode: Type.Union(RESTORE_MODES.map((m) => Type.Literal(m))),
    /** Which copy to restore from. Default: the local copy when its node is there, else the S3 copy. */
    storage: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('s3')])),
  },
  { additionalProperties: false },
);
export type RestoreCreate = Static<typeof RestoreCreateSchema>;

export const PHASES = ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished', 'Failed'] as const;
export type Phase = (typeof PHASES)[number];

export const OperationStepSchema = Type.Object({
  node: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
  message: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Time,
});

export const OperationSchema = Type.Object({
  id: Id,
  clusterId: Id,
  kind: Type.Union([Type.Literal('snapshot'), Type.Literal('restore')]),
  phase: Type.Union(PHASES.map((p) => Type.Literal(p))),
  /** Inputs: snapshot base name for a snapshot; snapshot and mode for a restore. */
  params: Type.Record(Type.String(), Type.Unknown()),
  steps: Type.Array(OperationStepSchema),
  /** Phase changes and notes, oldest first. */
  history: Type.Array(Type.Object({ at: Time, phase: Type.String(), message: Type.String() })),
  message: Type.Union([Type.String(), Type.Null()]),
  /** On Failed: the node and reason; whether the cluster was rolled back (restores). */
  failure: Type.Union([Type.Object({ node: Type.Union([Type.String(), Type.Null()]), code: Type.String(), message: Type.String(), rolledBack: Type.Boolean() }), Type.Null()]),
  createdAt: Time,
  updatedAt: Time,
  finishedAt: Type.Union([Time, Type.Null()]),
});
export type Operation = Static<typeof OperationSchema>;

/** Server-sent events on `GET /api/v1/events` (`event:` is the type, `data:` the JSON). */
export type ServerEvent =
  | { type: 'operation'; operation: Operation }
  | { type: 'snapshot'; snapshot: SnapshotRecord; change: 'upsert' | 'delete' }
  | { type: 'cluster'; cluster: Cluster; change: 'upsert' | 'delete' }
  | { type: 'node'; node: ClusterNode };
