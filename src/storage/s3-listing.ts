import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { SnapshotMetadata } from '../core/metadata.js';
import type { EtcdsnapError } from '../core/errors.js';
import type { S3Api } from './s3-client.js';

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
  etag: string | undefined;
}

/**
 * Every object under `prefix` (only direct children when `delimiter` is `/`), following
 * ListObjectsV2 continuation tokens.
 */
export async function listAll(
  client: S3Api,
  bucket: string,
  prefix: string,
  options: { delimiter?: string; signal?: AbortSignal; convert: (err: unknown, operation: string) => EtcdsnapError },
): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await client
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: options.delimiter, ContinuationToken: token }), { abortSignal: options.signal })
      .catch((err: unknown) => {
        throw options.convert(err, 'ListObjectsV2');
      });
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** A metadata document as read, or why it could not be used. */
export type CachedMetadata = { metadata: SnapshotMetadata } | { invalid: EtcdsnapError };

/**
 * Metadata already read, by object key and version (ETag, else LastModified), so that a
 * repeated listing only reads metadata objects that are new or changed. Entries of keys that
 * are no longer listed are dropped by {@link retain}.
 */
export class MetadataCache {
  private readonly entries = new Map<string, { version: string; value: CachedMetadata }>();

  static version(o: { etag?: string | undefined; lastModified?: Date | undefined }): string {
    return o.etag ?? o.lastModified?.toISOString() ?? '';
  }

  get(key: string, version: string): CachedMetadata | undefined {
    const e = this.entries.get(key);
    return e && e.version === version && version !== '' ? e.value : undefined;
  }

  set(key: string, version: string | undefined, value: CachedMetadata): void {
    if (version) this.entries.set(key, { version, value });
    else this.entries.delete(key);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Keeps only entries whose key is in `keys`. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.entries.keys()) if (!keys.has(k)) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Runs `fn` over `items` with at most `limit` at a time; the first rejection rejects. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
