import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { EtcdsnapError } from '../core/errors.js';
import type { S3Api } from './s3-client.js';
import { isNotImplemented, s3Url } from './s3-errors.js';

export interface StreamUpload {
  client: S3Api;
  bucket: string;
  key: string;
  partSize: number;
  /** Parts in flight at once. */
  queueSize: number;
  contentType?: string;
  signal?: AbortSignal;
  /**
   * Called once the whole body has been read and before the object is completed (so a
   * throw here means nothing becomes visible). Receives the byte count.
   */
  beforeComplete: (size: number) => Promise<void>;
  /** Converts an SDK error of `operation` (see s3-errors.ts). */
  convert: (err: unknown, operation: string) => EtcdsnapError;
  /** Cleanup problems that must not replace the root cause. */
  warn: (message: string) => void;
}

export interface UploadResult {
  size: number;
  parts: number;
  etag: string | undefined;
}

interface Part {
  data: Buffer;
  last: boolean;
}

/** Cuts a stream into parts of exactly `partSize` bytes; the last one (flagged) is 0..partSize bytes. */
export async function* partsOf(body: Readable, partSize: number): AsyncGenerator<Part> {
  let chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    chunks.push(buf);
    length += buf.length;
    // Strictly more than a part: only then do we know this part is not the last one.
    while (length > partSize) {
      const all = Buffer.concat(chunks, length);
      yield { data: all.subarray(0, partSize), last: false };
      const rest = all.subarray(partSize);
      chunks = [rest];
      length = rest.length;
    }
  }
  yield { data: Buffer.concat(chunks, length), last: true };
}

/**
 * Streams `body` to one object: a single PutObject when it fits in one part, else a
 * multipart upload with `queueSize` parts in flight. On any failure (body error, SDK error,
 * `beforeComplete` throwing, the signal) it cancels what is in flight, removes the unfinished
 * upload and rethrows the first failure: body and `beforeComplete` errors as they are, SDK
 * errors converted, cancellation as OPERATION_ABORTED. The body is destroyed on failure.
 *
 * Stores without AbortMultipartUpload (s3rver answers 405) would keep the parts forever: for
 * them the upload is completed with the parts it has and the object deleted at once.
 */
export async function uploadStream(body: Readable, u: StreamUpload): Promise<UploadResult> {
  const where = s3Url(u.bucket, u.key);
  const inner = new AbortController();
  const opts = { abortSignal: inner.signal };
  let failure: unknown;
  let failed = false;
  const fail = (err: unknown): void => {
    if (!failed) {
      failed = true;
      failure = err;
    }
    inner.abort();
    if (!body.destroyed) body.destroy();
  };
  const onAbort = (): void => fail(new EtcdsnapError('OPERATION_ABORTED', `The upload to ${where} was cancelled.`));
  if (u.signal?.aborted) {
    onAbort();
    throw failure;
  }
  u.signal?.addEventListener('abort', onAbort, { once: true });

  let uploadId: string | undefined;
  const done: CompletedPart[] = [];
  const inflight = new Set<Promise<void>>();
  let size = 0;
  let partNumber = 0;
  try {
    for await (const part of partsOf(body, u.partSize)) {
      if (failed) break;
      size += part.data.length;
      if (part.last && partNumber === 0) {
        await u.beforeComplete(size);
        const res = await u.client
          .send(new PutObjectCommand({ Bucket: u.bucket, Key: u.key, Body: part.data, ContentLength: part.data.length, ContentType: u.contentType }), opts)
          .catch((err: unknown) => {
            throw u.convert(err, 'PutObject');
          });
        return { size, parts: 1, etag: res.ETag };
      }
      if (uploadId === undefined) {
        const created = await u.client.send(new CreateMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, ContentType: u.contentType }), opts).catch((err: unknown) => {
          throw u.convert(err, 'CreateMultipartUpload');
        });
        if (!created.UploadId) throw new EtcdsnapError('TARGET_IO', `CreateMultipartUpload on ${where} returned no upload id.`);
        uploadId = created.UploadId;
      }
      const n = ++partNumber;
      const id = uploadId;
      const p: Promise<void> = u.client
        .send(new UploadPartCommand({ Bucket: u.bucket, Key: u.key, UploadId: id, PartNumber: n, Body: part.data, ContentLength: part.data.length }), opts)
        .then(
          (res) => void done.push({ PartNumber: n, ETag: res.ETag }),
          (err: unknown) => fail(u.convert(err, 'UploadPart')),
        )
        .finally(() => inflight.delete(p));
      inflight.add(p);
      // Backpressure: stop reading the body while the queue is full.
      while (inflight.size >= u.queueSize && !failed) await Promise.race(inflight);
    }
    if (failed) throw failure;
    await u.beforeComplete(size);
    await Promise.all(inflight);
    if (failed) throw failure;
    const parts = [...done].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const res = await u.client
      .send(new CompleteMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), opts)
      .catch((err: unknown) => {
        throw u.convert(err, 'CompleteMultipartUpload');
      });
    return { size, parts: parts.length, etag: res.ETag };
  } catch (err) {
    fail(err);
    await Promise.allSettled([...inflight]);
    if (uploadId !== undefined) await discardUpload(u, uploadId, done);
    throw failure;
  } finally {
    u.signal?.removeEventListener('abort', onAbort);
  }
}

/** Aborts an unfinished upload; where the store cannot, completes it and deletes the object. */
async function discardUpload(u: StreamUpload, uploadId: string, done: CompletedPart[]): Promise<void> {
  const where = s3Url(u.bucket, u.key);
  const ids = { Bucket: u.bucket, Key: u.key };
  try {
    await u.client.send(new AbortMultipartUploadCommand({ ...ids, UploadId: uploadId }));
    return;
  } catch (err) {
    if (!isNotImplemented(err)) {
      u.warn(`Could not abort the multipart upload ${uploadId} of ${where} (${u.convert(err, 'AbortMultipartUpload').message}); its parts stay until a lifecycle rule removes them.`);
      return;
    }
  }
  let step = 'UploadPart';
  try {
    const parts = [...done].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    if (parts.length === 0) {
      const res = await u.client.send(new UploadPartCommand({ ...ids, UploadId: uploadId, PartNumber: 1, Body: Buffer.alloc(0), ContentLength: 0 }));
      parts.push({ PartNumber: 1, ETag: res.ETag });
    }
    step = 'CompleteMultipartUpload';
    await u.client.send(new CompleteMultipartUploadCommand({ ...ids, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    step = 'DeleteObject';
    await u.client.send(new DeleteObjectCommand(ids));
  } catch (err) {
    u.warn(`The store cannot abort multipart uploads and discarding ${uploadId} of ${where} failed at ${step} (${u.convert(err, step).message}).`);
  }
}
