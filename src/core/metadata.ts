import { Type, type Static } from '@sinclair/typebox';
import { CODECS } from './codec.js';
import { compile } from './schema.js';

/** Version of the metadata document; readers refuse versions they do not know. */
export const METADATA_FORMAT_VERSION = 1;

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Count = Type.Integer({ minimum: 0 });

export const ContentSummarySchema = Type.Object(
  {
    /** Revision the summary was read at. */
    revision: Count,
    /** Number of live keys in the snapshot. */
    keys: Count,
    /** Live keys per `/registry/<resource>` prefix; keys outside `/registry/` count under `(other)`. */
    byResource: Type.Record(Type.String(), Count),
  },
  { additionalProperties: false },
);
export type ContentSummary = Static<typeof ContentSummarySchema>;

export const SnapshotMetadataSchema = Type.Object(
  {
    formatVersion: Type.Literal(METADATA_FORMAT_VERSION),
    /** Stored object name, including the codec suffix. */
    name: Type.String({ minLength: 1, maxLength: 255 }),
    /** Base of the name: `etcd-snapshot`, `on-demand` or the user's `--name`. */
    base: Type.String({ minLength: 1, maxLength: 63 }),
    node: Type.String({ minLength: 1, maxLength: 63 }),
    /** Cluster the snapshot belongs to; null for standalone saves without a cluster id. */
    cluster: Type.Union([Type.Object({ id: Type.String({ minLength: 1 }), name: Type.String() }, { additionalProperties: false }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    kind: Type.Union([Type.Literal('recurring'), Type.Literal('on-demand')]),
    /** Kubernetes version the cluster ran when the snapshot was taken, if known. */
    kubernetesVersion: Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()]),
    /** Cluster config document (YAML text as given), if known. */
    clusterConfig: Type.Union([Type.String({ maxLength: 1048576 }), Type.Null()]),
    etcd: Type.Object(
      {
        version: Type.String(),
        /** Cluster id reported by etcd (hex). */
        clusterId: Type.String(),
        /** Member the stream was read from. */
        member: Type.String(),
        memberCount: Type.Integer({ minimum: 1 }),
        /**
         * Revision of the snapshot. Exact when `revisionExact`; otherwise the snapshot's
         * revision lies between `revisionMin` and `revision` (writes raced the start).
         */
        revision: Count,
        revisionMin: Count,
        revisionExact: Type.Boolean(),
        /** sha256 etcd appended to the stream (of the DB bytes), checked while saving. */
        trailerSha256: Sha256,
      },
      { additionalProperties: false },
    ),
    /** Bytes of the etcd snapshot (as etcdctl would write it, trailer included). */
    rawSize: Count,
    /** Bytes stored (after compression). */
    storedSize: Count,
    codec: Type.Union(CODECS.map((c) => Type.Literal(c))),
    /** sha256 of the stored bytes. */
    sha256: Sha256,
    /** sha256 of the raw snapshot bytes (equal to `sha256` when the codec is none). */
    rawSha256: Sha256,
    summary: Type.Union([ContentSummarySchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export type SnapshotMetadata = Static<typeof SnapshotMetadataSchema>;

const validator = compile(SnapshotMetadataSchema, 'METADATA_INVALID');

/** Parses and validates a metadata document (JSON text or an object). */
export function parseMetadata(input: string | unknown, what = 'snapshot metadata'): SnapshotMetadata {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      return validator.parse(Symbol.for('not-json'), `${what} (not JSON: ${(err as Error).message})`);
    }
  }
  return validator.parse(value, what);
}

/** Stable serialisation: fixed key order from the object, two-space indent, trailing newline. */
export function serializeMetadata(m: SnapshotMetadata): string {
  return `${JSON.stringify(validator.parse(m, 'snapshot metadata'), null, 2)}\n`;
}

export const RESTORE_MODES = ['etcd', 'kubernetes-version', 'all'] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

/** `etcd` always; `kubernetes-version` if the snapshot has a version; `all` if it also has the config. */
export function allowedRestoreModes(m: Pick<SnapshotMetadata, 'kubernetesVersion' | 'clusterConfig'> | undefined): RestoreMode[] {
  const modes: RestoreMode[] = ['etcd'];
  if (m?.kubernetesVersion) {
    modes.push('kubernetes-version');
    if (m.clusterConfig !== null && m.clusterConfig !== undefined) modes.push('all');
  }
  return modes;
}
