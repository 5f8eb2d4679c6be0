import type { Readable } from 'node:stream';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { EtcdsnapError } from '../core/errors.js';
import { parseMetadata, serializeMetadata, type SnapshotMetadata } from '../core/metadata.js';
import { validateSnapshotName } from '../core/names.js';
import { createS3Client, type S3Api } from './s3-client.js';
import { folderPrefix, isParsedS3Config, parseS3Config, redactS3Config, secretsOf, type S3Config } from '../core/s3-config.js';
import { checkS3Connection, type ConnectionCheck } from './s3-connection.js';
import { convertS3Error, s3Url } from './s3-errors.js';
import { listAll, mapLimit, MetadataCache, type CachedMetadata, type ListedObject } from './s3-listing.js';
import { getMetadataObject, headObject, isSnapshotName, openObject, type ObjectRef } from './s3-objects.js';
import { uploadStream } from './s3-upload.js';
import { compareNewestFirst, type BackupTarget, type OpenedSnapshot, type PutOptions, type StoredSnapshot } from './target.js';

export const METADATA_FOLDER = '.metadata';
/** Metadata objects read at once by list(). */
const LIST_CONCURRENCY = 16;

export interface S3TargetOptions {
  /**
   * Scope to one cluster: only snapshots whose metadata names this cluster id are listed;
   * stat/open/delete of another cluster's snapshot fail with TARGET_CLUSTER_MISMATCH, of an
   * object without (readable) metadata with SNAPSHOT_NOT_FOUND (METADATA_INVALID); a put
   * whose metadata names another cluster fails with TARGET_CLUSTER_MISMATCH.
   * Without it every snapshot is visible, plain objects without metadata included.
   */
  clusterId?: string;
  /** The client to use (tests inject failing ones). Default: built from the config; close() destroys it. */
  client?: S3Api;
  /** Problems that do not fail the call: cleanup after a failed upload, unreadable metadata while listing. */
  onWarning?: (message: string) => void;
}

type Probe = { data: ListedObject | undefined; meta: CachedMetadata | undefined };

/**
 * Snapshots in an S3 bucket: `<folder>/<name>` and the sidecar `<folder>/.metadata/<name>.json`.
 * A put streams the body as a multipart upload, then writes the sidecar; a snapshot is visible
 * once both exist (without clusterId scoping, objects without a sidecar are listed as plain
 * files, like `etcdctl snapshot save` output copied to the bucket).
 */
export class S3Target implements BackupTarget {
  readonly kind = 's3' as const;
  readonly config: S3Config;
  readonly clusterId: string | undefined;
  private readonly client: S3Api;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly cache = new MetadataCache();
  private readonly warn: (message: string) => void;

  constructor(config: S3Config, options: S3TargetOptions = {}) {
    this.config = isParsedS3Config(config) ? config : parseS3Config(config);
    this.clusterId = options.clusterId;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createS3Client(this.config);
    this.prefix = folderPrefix(this.config);
    this.warn = options.onWarning ?? (() => undefined);
  }

  location(name: string): string {
    return s3Url(this.config.bucket, this.dataKey(name));
  }

  dataKey(name: string): string {
    return `${this.prefix}${validateSnapshotName(name)}`;
  }

  metadataKey(name: string): string {
    return `${this.prefix}${METADATA_FOLDER}/${validateSnapshotName(name)}.json`;
  }

  /** For logs and the API: where it points, never the keys. */
  toJSON(): Record<string, unknown> {
    return { kind: this.kind, location: s3Url(this.config.bucket, this.config.folder || undefined), clusterId: this.clusterId ?? null, config: redactS3Config(this.config) };
  }

  /** Releases the sockets of a client this target built. */
  close(): void {
    if (this.ownsClient) (this.client as S3Client).destroy();
  }

  /** List, write, read back and delete a small object; reports the step that failed. */
  testConnection(signal?: AbortSignal): Promise<ConnectionCheck> {
    return checkS3Connection({ client: this.client, bucket: this.config.bucket, prefix: this.prefix, convert: (e, op, key) => this.convert(e, op, key), signal });
  }

  async put(name: string, body: Readable, options: PutOptions): Promise<StoredSnapshot> {
    let dataKey: string;
    let metaKey: string;
    try {
      dataKey = this.dataKey(name);
      metaKey = this.metadataKey(name);
      if (options.signal?.aborted) throw new EtcdsnapError('OPERATION_ABORTED', `The upload to ${this.location(name)} was cancelled.`);
      const existing = await this.probe(name, options.signal);
      if (existing.data || existing.meta) {
        throw new EtcdsnapError('SNAPSHOT_EXISTS', `Snapshot ${name} already exists at ${this.location(name)}: choose another name or delete it first.`);
      }
    } catch (err) {
      body.destroy();
      throw err;
    }

    const checked: { final?: { metadata: SnapshotMetadata; text: string } } = {};
    const uploaded = await uploadStream(body, {
      client: this.client,
      bucket: this.config.bucket,
      key: dataKey,
      partSize: this.config.partSizeBytes,
      queueSize: this.config.queueSize,
      contentType: 'application/octet-stream',
      signal: options.signal,
      beforeComplete: async (size) => {
        checked.final = this.checkNewMetadata(name, await options.metadata(), size);
      },
      convert: (err, op) => this.convert(err, op, dataKey),
      warn: this.warn,
    });
    if (!checked.final) throw new EtcdsnapError('INTERNAL', `The upload of ${name} completed without its metadata.`);
    const { metadata, text } = checked.final;
    try {
      const res = await this.client.send(new PutObjectCommand({ Bucket: this.config.bucket, Key: metaKey, Body: text, ContentType: 'application/json' }), { abortSignal: options.signal });
      this.cache.set(metaKey, res.ETag, { metadata });
    } catch (err) {
      // The data object is complete but must not stay without its sidecar.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: dataKey })).catch((e: unknown) => {
        this.warn(`Could not delete ${s3Url(this.config.bucket, dataKey)} after its metadata failed: ${this.convert(e, 'DeleteObject', dataKey).message}`);
      });
      throw this.convert(err, 'PutObject', metaKey);
    }
    return { name, location: this.location(name), size: uploaded.size, modifiedAt: new Date(), metadata };
  }

  async open(name: string, signal?: AbortSignal): Promise<OpenedSnapshot> {
    const metadata = this.owned(name, await this.readMetadata(name, signal), false);
    const opened = await openObject(this.ref(this.dataKey(name), signal));
    if (!opened) throw this.notFound(name);
    return { ...opened, metadata };
  }

  async stat(name: string, signal?: AbortSignal): Promise<StoredSnapshot> {
    const { data, meta } = await this.probe(name, signal);
    if (!data) throw this.notFound(name);
    return this.stored(name, data, this.owned(name, meta, false));
  }

  async delete(name: string, signal?: AbortSignal): Promise<void> {
    const { data, meta } = await this.probe(name, signal);
    if (!data && !meta) throw this.notFound(name);
    this.owned(name, meta, true);
    const metaKey = this.metadataKey(name);
    // Data first: if the second delete fails, what is left is an invisible sidecar, not an
    // unscoped plain object of gigabytes.
    for (const [key, exists] of [
      [this.dataKey(name), data !== undefined],
      [metaKey, meta !== undefined],
    ] as const) {
      if (!exists) continue;
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: key }), { abortSignal: key === metaKey ? undefined : signal });
      } catch (err) {
        throw this.convert(err, 'DeleteObject', key);
      }
    }
    this.cache.delete(metaKey);
  }

  async list(signal?: AbortSignal): Promise<StoredSnapshot[]> {
    const convert = (err: unknown, op: string): EtcdsnapError => this.convert(err, op);
    const metaPrefix = `${this.prefix}${METADATA_FOLDER}/`;
    const [objects, metaObjects] = await Promise.all([
      listAll(this.client, this.config.bucket, this.prefix, { delimiter: '/', signal, convert }),
      listAll(this.client, this.config.bucket, metaPrefix, { delimiter: '/', signal, convert }),
    ]);
    const metaByKey = new Map(metaObjects.map((o) => [o.key, o]));
    this.cache.retain(new Set(metaByKey.keys()));
    const candidates = objects.filter((o) => isSnapshotName(o.key.slice(this.prefix.length)));
    const results = await mapLimit(candidates, LIST_CONCURRENCY, async (o): Promise<StoredSnapshot | undefined> => {
      const name = o.key.slice(this.prefix.length);
      const metaKey = this.metadataKey(name);
      const listed = metaByKey.get(metaKey);
      let meta = listed ? this.cache.get(metaKey, MetadataCache.version(listed)) : undefined;
      if (listed && !meta) {
        meta = await this.readMetadata(name, signal);
        // Once per version of the object: the cache keeps the verdict.
        if (meta && 'invalid' in meta) this.warn(`${meta.invalid.message} (listed ${this.clusterId ? 'not at all' : 'as a plain object'})`);
      }
      const metadata = meta && 'metadata' in meta ? meta.metadata : undefined;
      if (this.clusterId !== undefined && metadata?.cluster?.id !== this.clusterId) return undefined;
      return this.stored(name, o, metadata);
    });
    return results.filter((s): s is StoredSnapshot => s !== undefined).sort(compareNewestFirst);
  }

  // --- helpers ---

  private convert(err: unknown, operation: string, key?: string): EtcdsnapError {
    return convertS3Error(err, { operation, bucket: this.config.bucket, key, region: this.config.region, endpoint: this.config.endpoint, secrets: secretsOf(this.config) });
  }

  private notFound(name: string): EtcdsnapError {
    return new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Snapshot ${name} not found at ${this.location(name)}: list snapshots with "etcdsnap snapshot ls --s3 …".`, { details: { name } });
  }

  private stored(name: string, o: ListedObject, metadata: SnapshotMetadata | undefined): StoredSnapshot {
    return { name, location: this.location(name), size: o.size, modifiedAt: o.lastModified, metadata };
  }

  /** The metadata a caller may see for `name` under the cluster scope; throws otherwise. */
  private owned(name: string, meta: CachedMetadata | undefined, forDelete: boolean): SnapshotMetadata | undefined {
    if (meta && 'invalid' in meta) {
      if (forDelete && this.clusterId === undefined) return undefined; // unscoped: a broken sidecar may be deleted
      throw meta.invalid;
    }
    const metadata = meta?.metadata;
    if (this.clusterId === undefined) return metadata;
    if (!metadata) throw this.notFound(name);
    const owner = metadata.cluster?.id;
    if (owner !== this.clusterId) {
      throw new EtcdsnapError(
        'TARGET_CLUSTER_MISMATCH',
        `Snapshot ${name} at ${this.location(name)} belongs to ${owner ? `cluster ${owner}` : 'no cluster'}, not to cluster ${this.clusterId}: it is not listed, restored or deleted from here.`,
        { details: { name, cluster: owner ?? null, expected: this.clusterId } },
      );
    }
    return metadata;
  }

  /** Validates the metadata of a new snapshot against what was stored and the scope. */
  private checkNewMetadata(name: string, given: SnapshotMetadata, size: number): { metadata: SnapshotMetadata; text: string } {
    const text = serializeMetadata(given);
    const metadata = parseMetadata(text); // a copy the caller cannot change afterwards
    if (metadata.name !== name) throw new EtcdsnapError('METADATA_INVALID', `The metadata of ${name} names "${metadata.name}".`);
    if (metadata.storedSize !== size) {
      throw new EtcdsnapError('METADATA_INVALID', `The metadata of ${name} says storedSize ${metadata.storedSize}, but ${size} bytes were uploaded.`);
    }
    if (this.clusterId !== undefined && metadata.cluster?.id !== this.clusterId) {
      throw new EtcdsnapError('TARGET_CLUSTER_MISMATCH', `The metadata of ${name} names cluster ${metadata.cluster?.id ?? '(none)'}, but this target is scoped to cluster ${this.clusterId}.`);
    }
    return { metadata, text };
  }

  /** Data object (HEAD) and sidecar (GET) at once; a missing bucket shows up as NoSuchBucket on the GET. */
  private async probe(name: string, signal?: AbortSignal): Promise<Probe> {
    const dataRef = this.ref(this.dataKey(name), signal); // validates the name before any request starts
    const [meta, data] = await Promise.allSettled([this.readMetadata(name, signal), headObject(dataRef)]);
    // The GET's error carries the S3 code (a HEAD's has no body): report it first.
    if (meta.status === 'rejected') throw meta.reason;
    if (data.status === 'rejected') throw data.reason;
    return { data: data.value, meta: meta.value };
  }

  /** Reads `<folder>/.metadata/<name>.json` (see getMetadataObject) and caches it. */
  private async readMetadata(name: string, signal?: AbortSignal): Promise<CachedMetadata | undefined> {
    const key = this.metadataKey(name);
    const got = await getMetadataObject(this.ref(key, signal), name);
    if (got) this.cache.set(key, got.version, got.value);
    else this.cache.delete(key);
    return got?.value;
  }

  private ref(key: string, signal?: AbortSignal): ObjectRef {
    return { client: this.client, bucket: this.config.bucket, key, signal, convert: (e, op, k) => this.convert(e, op, k) };
  }
}

/**
 * For the target factory: validates `config` (unless it already was) and builds the target.
 * Throws INVALID_CONFIG for bad settings.
 */
export function createS3Target(config: unknown, options: S3TargetOptions = {}): S3Target {
  return new S3Target(isParsedS3Config(config) ? config : parseS3Config(config), options);
}
