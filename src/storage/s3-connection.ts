import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { EtcdsnapError, type ErrorCode } from '../core/errors.js';
import type { S3Api } from './s3-client.js';
import { s3Url } from './s3-errors.js';

/** The steps of a connection test, in order. */
export type ConnectionStep = 'list' | 'write' | 'read' | 'delete';

export interface ConnectionStepResult {
  step: ConnectionStep;
  ok: boolean;
  durationMs: number;
  error?: { code: ErrorCode; message: string };
}

export interface ConnectionCheck {
  ok: boolean;
  /** The first step that failed. */
  failedStep?: ConnectionStep;
  error?: EtcdsnapError;
  steps: ConnectionStepResult[];
}

export interface ConnectionContext {
  client: S3Api;
  bucket: string;
  /** `<folder>/` or `''`. */
  prefix: string;
  convert: (err: unknown, operation: string, key?: string) => EtcdsnapError;
  signal?: AbortSignal;
}

/**
 * The "Test connection" of the settings form: lists the folder, writes a small object under
 * `<folder>/.etcdsnap-connection-test/`, reads it back, deletes it. Never throws: reports every
 * step run, and the first failing one with its error. The delete runs whenever the write worked.
 */
export async function checkS3Connection(ctx: ConnectionContext): Promise<ConnectionCheck> {
  const key = `${ctx.prefix}.etcdsnap-connection-test/${randomUUID()}`;
  const payload = `etcdsnap connection test ${new Date().toISOString()}\n`;
  const opts = { abortSignal: ctx.signal };
  const steps: ConnectionStepResult[] = [];
  let first: { step: ConnectionStep; error: EtcdsnapError } | undefined;

  const run = async (step: ConnectionStep, fn: () => Promise<void>): Promise<boolean> => {
    const t0 = performance.now();
    try {
      await fn();
      steps.push({ step, ok: true, durationMs: Math.round(performance.now() - t0) });
      return true;
    } catch (err) {
      const error = err instanceof EtcdsnapError ? err : new EtcdsnapError('TARGET_IO', String(err), { cause: err });
      steps.push({ step, ok: false, durationMs: Math.round(performance.now() - t0), error: { code: error.code, message: error.message } });
      first ??= { step, error };
      return false;
    }
  };
  const call = async <T>(operation: string, k: string | undefined, p: () => Promise<T>): Promise<T> => {
    try {
      return await p();
    } catch (err) {
      throw ctx.convert(err, operation, k);
    }
  };

  const listed = await run('list', async () => {
    await call('ListObjectsV2', undefined, () => ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: ctx.prefix, MaxKeys: 1 }), opts));
  });
  if (listed) {
    const written = await run('write', async () => {
      await call('PutObject', key, () => ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: payload, ContentType: 'text/plain' }), opts));
    });
    if (written) {
      await run('read', async () => {
        const res = await call('GetObject', key, () => ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), opts));
        const text = await call('GetObject', key, async () => (await res.Body?.transformToString('utf8')) ?? '');
        if (text !== payload) throw new EtcdsnapError('TARGET_IO', `Reading ${s3Url(ctx.bucket, key)} back gave different bytes than were written: the store or a proxy changes bodies (try --s3-checksums when_required).`);
      });
      // Clean up even when the read failed; not under the caller's signal, so nothing is left.
      await run('delete', async () => {
        await call('DeleteObject', key, () => ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key })));
      });
    }
  }
  const f = first as { step: ConnectionStep; error: EtcdsnapError } | undefined;
  return f ? { ok: false, failedStep: f.step, error: f.error, steps } : { ok: true, steps };
}
