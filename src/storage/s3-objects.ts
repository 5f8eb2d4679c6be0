/** Single-object reads of the S3 target: the metadata sidecar, a HEAD, a guarded download. */
import { PassThrough, Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { EtcdsnapError } from '../core/errors.js';
import { parseMetadata } from '../core/metadata.js';
import { validateSnapshotName } from '../core/names.js';
import type { S3Api } from './s3-client.js';
import { isS3NotFound, s3Url } from './s3-errors.js';
import type { CachedMetadata, ListedObject } from './s3-listing.js';

/** Metadata documents are small (the cluster config is capped at 1 MiB); refuse anything huge. */
export const METADATA_MAX_BYTES = 4 * 1024 * 1024;

export type Convert = (err: unknown, operation: string, key?: string) => EtcdsnapError;

export interface ObjectRef {
  client: S3Api;
  bucket: string;
  key: string;
  signal?: AbortSignal;
  convert: Convert;
}

/**
 * Reads and validates the sidecar of snapshot `name` at `ref.key`: undefined if there is
 * none, `{ invalid }` if it is not a metadata document of that name. `version` is its ETag
 * (else LastModified), for the listing cache.
 */
export async function getMetadataObject(ref: ObjectRef, name: string): Promise<{ value: CachedMetadata; version: string | undefined } | undefined> {
  const where = s3Url(ref.bucket, ref.key);
  let text: string;
  let version: string | undefined;
  try {
    const res = await ref.client.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }), { abortSignal: ref.signal });
    version = res.ETag ?? res.LastModified?.toISOString();
    if ((res.ContentLength ?? 0) > METADATA_MAX_BYTES) {
      if (res.Body instanceof Readable) res.Body.destroy();
      return { value: { invalid: new EtcdsnapError('METADATA_INVALID', `Metadata ${where} is ${res.ContentLength} bytes, more than a metadata document can be.`) }, version };
    }
    text = (await res.Body?.transformToString('utf8')) ?? '';
  } catch (err) {
    if (isS3NotFound(err)) return undefined;
    throw ref.convert(err, 'GetObject', ref.key);
  }
  try {
    const metadata = parseMetadata(text, `metadata ${where}`);
    if (metadata.name !== name) throw new EtcdsnapError('METADATA_INVALID', `Metadata ${where} names another snapshot ("${metadata.name}").`);
    return { value: { metadata }, version };
  } catch (err) {
    return { value: { invalid: err instanceof EtcdsnapError ? err : new EtcdsnapError('METADATA_INVALID', String(err)) }, version };
  }
}

/** HEAD of an object; undefined if it does not exist. */
export async function headObject(ref: ObjectRef): Promise<ListedObject | undefined> {
  try {
    const h = await ref.client.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }), { abortSignal: ref.signal });
    return { key: ref.key, size: h.ContentLength ?? 0, lastModified: h.LastModified ?? new Date(0), etag: h.ETag };
  } catch (err) {
    if (isS3NotFound(err)) return undefined;
    throw ref.convert(err, 'HeadObject', ref.key);
  }
}

/** GetObject as a stream whose errors (socket timeout, reset, cancel) are ours; undefined if missing. */
export async function openObject(ref: ObjectRef): Promise<{ stream: Readable; size: number } | undefined> {
  let res;
  try {
    res = await ref.client.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }), { abortSignal: ref.signal });
  } catch (err) {
    if (isS3NotFound(err)) return undefined;
    throw ref.convert(err, 'GetObject', ref.key);
  }
  if (!(res.Body instanceof Readable)) throw new EtcdsnapError('TARGET_IO', `GetObject on ${s3Url(ref.bucket, ref.key)} returned no stream.`);
  return { stream: guard(res.Body, (err) => ref.convert(err, 'GetObject', ref.key), ref.signal), size: res.ContentLength ?? 0 };
}

function guard(body: Readable, convert: (err: unknown) => EtcdsnapError, signal?: AbortSignal): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const cancelled = (cause?: unknown): EtcdsnapError => new EtcdsnapError('OPERATION_ABORTED', 'The download was cancelled.', cause === undefined ? {} : { cause });
  const onAbort = (): void => {
    out.destroy(cancelled());
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  body.on('error', (err) => out.destroy(signal?.aborted ? cancelled(err) : convert(err)));
  out.on('close', () => {
    signal?.removeEventListener('abort', onAbort);
    if (!body.destroyed) body.destroy();
  });
  body.pipe(out);
  return out;
}

export function isSnapshotName(name: string): boolean {
  try {
    validateSnapshotName(name);
    return true;
  } catch {
    return false;
  }
}
