import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Codec } from '../core/codec.js';
import { EtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import { METADATA_FORMAT_VERSION, type ContentSummary, type SnapshotMetadata } from '../core/metadata.js';
import { formatName, ON_DEMAND_BASE, validateBase, validateNode } from '../core/names.js';
import type { BackupTarget, StoredSnapshot } from '../storage/target.js';
import { createCompressor } from './codecs.js';
import { DigestStream, TrailerCheckStream } from './digest.js';
import { AllDestinationsFailed, FanOut } from './fanout.js';
import type { SnapshotSource } from './source.js';
import { summarizeByCount, summarizeKeys } from './summary.js';

export interface SaveOptions {
  source: SnapshotSource;
  /** Member to stream from (a client URL). */
  endpoint: string;
  /** Where to store; the bytes are read from etcd once and fed to every target. */
  targets: BackupTarget[];
  node: string;
  /** Default `on-demand`. */
  base?: string;
  /** Default: `recurring` for the `etcd-snapshot` base, else `on-demand`. */
  kind?: SnapshotMetadata['kind'];
  /** Default `none`. */
  codec?: Codec;
  level?: number;
  kubernetesVersion?: string | null;
  clusterConfig?: string | null;
  cluster?: SnapshotMetadata['cluster'];
  /** Compute the content summary (keys per resource). Default true. */
  summary?: boolean;
  now?: () => Date;
  signal?: AbortSignal;
}

export interface SaveFailure {
  target: string;
  error: EtcdsnapError;
}

/** Partial results are reported: what was stored, and which targets failed and why. */
export interface SaveResult {
  name: string;
  metadata: SnapshotMetadata;
  stored: StoredSnapshot[];
  failures: SaveFailure[];
}

/**
 * Takes one snapshot: health check (refuse on an unhealthy cluster, nothing written) →
 * stream from one member → etcd trailer check → optional compression → sha256 of the stored
 * bytes → every target. Memory stays flat: nothing is buffered beyond stream high-water marks.
 * Throws if no target stored the snapshot; otherwise returns the partial result.
 */
export async function saveSnapshot(o: SaveOptions): Promise<SaveResult> {
  if (o.targets.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'No backup target given.');
  const base = validateBase(o.base ?? ON_DEMAND_BASE);
  const node = validateNode(o.node);
  const codec = o.codec ?? 'none';
  const createdAt = (o.now ?? (() => new Date()))();
  const name = formatName({ base, node, unix: Math.floor(createdAt.getTime() / 1000), codec });
  o.signal?.throwIfAborted();

  const health = await o.source.health();
  if (!health.healthy) {
    throw new EtcdsnapError('CLUSTER_UNHEALTHY', `The etcd cluster is not healthy, no snapshot taken: ${health.reasons.join('; ')}. Bring every member back, then retry.`, {
      details: { reasons: health.reasons },
    });
  }
  const before = await o.source.status(o.endpoint);
  const raw: Readable = await o.source.snapshotStream(o.endpoint, o.signal);

  // The snapshot's revision lies between the status before the stream and the status
  // once the first chunk arrived (etcd opens its read transaction before sending).
  let firstChunk!: () => void;
  const started = new Promise<void>((resolve) => (firstChunk = resolve));
  const trailer = new TrailerCheckStream(`from ${o.endpoint}`, firstChunk);
  const revisionAfter = started.then(async () => (await o.source.status(o.endpoint)).revision).catch(() => before.revision);
  const summaryPromise: Promise<ContentSummary | null> =
    o.summary === false
      ? Promise.resolve(null)
      : revisionAfter
          .then((rev) => {
            const { countRange, firstKey } = o.source;
            return countRange && firstKey
              ? summarizeByCount({ countRange: countRange.bind(o.source), firstKey: firstKey.bind(o.source) }, rev, o.endpoint)
              : summarizeKeys(o.source.rangeKeys({ revision: rev, endpoint: o.endpoint }), rev);
          })
          .catch(() => null);

  // Uncompressed, the stored bytes are the raw bytes: no pass-through stage, no second hash.
  const compressor = codec === 'none' ? undefined : createCompressor(codec, o.level);
  const stored = codec === 'none' ? undefined : new DigestStream();
  const fan = new FanOut(o.targets.length);

  let metadataPromise: Promise<SnapshotMetadata> | undefined;
  const buildMetadata = (): Promise<SnapshotMetadata> =>
    (metadataPromise ??= (async (): Promise<SnapshotMetadata> => {
      const revision = await revisionAfter;
      const { trailerSha256, rawSha256 } = trailer.digests;
      return {
        formatVersion: METADATA_FORMAT_VERSION,
        name,
        base,
        node,
        cluster: o.cluster ?? null,
        createdAt: createdAt.toISOString(),
        kind: o.kind ?? (base === 'etcd-snapshot' ? 'recurring' : 'on-demand'),
        kubernetesVersion: o.kubernetesVersion ?? null,
        clusterConfig: o.clusterConfig ?? null,
        etcd: {
          version: before.version,
          clusterId: before.clusterId,
          member: o.endpoint,
          memberCount: health.memberCount,
          revision,
          revisionMin: before.revision,
          revisionExact: revision === before.revision,
          trailerSha256,
        },
        rawSize: trailer.bytes,
        storedSize: stored ? stored.bytes : trailer.bytes,
        codec,
        sha256: stored ? stored.sha256 : rawSha256,
        rawSha256,
        summary: await summaryPromise,
      };
    })());

  const failures: SaveFailure[] = [];
  const results: StoredSnapshot[] = [];
  const puts = o.targets.map((target, i) =>
    target.put(name, fan.branches[i] as Readable, { metadata: buildMetadata, signal: o.signal }).then(
      (s) => {
        results.push(s);
      },
      (err: unknown) => {
        const error = toEtcdsnapError(err);
        failures.push({ target: target.location(name), error });
        fan.drop(i, error);
      },
    ),
  );
  let streamError: unknown;
  try {
    const stages = compressor && stored ? [raw, trailer, compressor, stored, fan] : [raw, trailer, fan];
    await pipeline(stages, o.signal ? { signal: o.signal } : {});
  } catch (err) {
    streamError = err;
    fan.destroy(err as Error);
  }
  await Promise.all(puts);
  if (streamError instanceof AllDestinationsFailed && failures[0]) {
    // Every target failed on its own (e.g. S3 refused the key): that is the cause.
    throw failures[0].error;
  }
  if (streamError !== undefined) {
    // The stream's own error is the root cause; target errors are its echo.
    throw toEtcdsnapError(streamError, 'ETCD_REQUEST_FAILED');
  }
  if (results.length === 0) {
    const first = failures[0]?.error;
    throw first ?? new EtcdsnapError('INTERNAL', 'No target stored the snapshot.');
  }
  return { name, metadata: await buildMetadata(), stored: results, failures };
}
