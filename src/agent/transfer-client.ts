/**
 * Downloading a restore's staged snapshot from the init node's transfer endpoint, with its
 * certificate pinned: the TLS handshake is done first (any certificate accepted by TLS
 * itself), the peer certificate's sha256 (DER) is compared with the one the server announced,
 * and only then does an HTTP request — the only thing carrying the token — go over that socket.
 *
 * Written to `<dest>.part`, hashed on the fly, size and sha256 checked, fsynced, renamed.
 * Connection failures are retried with backoff (the init node's agent may be restarting) for
 * up to `retryForMs` without progress; a download cut short resumes with `Range`.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import { isIP } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tls from 'node:tls';
import { EtcdsnapError } from '../core/errors.js';
import { sleep } from './backoff.js';
import { transferPath, type TransferFile } from './transfer-server.js';

export interface DownloadOptions {
  /** `https://host:port` of the init node's transfer endpoint. */
  url: string;
  operationId: string;
  /** sha256 (hex) of the DER certificate the endpoint must present. */
  certSha256: string;
  token: string;
  /** The init node's name, for messages. */
  node: string;
  dest: string;
  size: number;
  sha256: string;
  signal?: AbortSignal;
  /** Keep retrying failed connections this long without progress. Default 60 s. */
  retryForMs?: number;
  /** Socket idle timeout. Default 30 s. */
  idleTimeoutMs?: number;
  /** Called as bytes arrive (the caller throttles). */
  progress?: (bytes: number, total: number) => void;
  /** Which file of the restore: the raw snapshot (default) or its stored bytes. */
  file?: TransferFile;
}

/** A failure that retrying cannot fix (wrong certificate, token, file). */
class Permanent extends Error {
  constructor(readonly error: EtcdsnapError) {
    super(error.message);
  }
}

const MiB = 1024 * 1024;

/** Downloads and verifies; on any failure nothing is left at `dest` (nor a `.part`). */
export async function downloadSnapshot(o: DownloadOptions): Promise<{ bytes: number; attempts: number }> {
  const full = `${o.url.replace(/\/+$/, '')}${transferPath(o.operationId, o.file)}`;
  const failed = (why: string, code: 'TRANSFER_FAILED' | 'SNAPSHOT_CHECKSUM_MISMATCH' = 'TRANSFER_FAILED', cause?: unknown): EtcdsnapError =>
    new EtcdsnapError(
      code,
      code === 'TRANSFER_FAILED'
        ? `Could not download the snapshot from ${o.node} (${full}): ${why}. Check that ${o.node}'s agent runs and its transfer port (--transfer-listen / --transfer-url) is reachable from this node.`
        : `The snapshot downloaded from ${o.node} (${full}) ${why}; nothing was kept. The copy on ${o.node} or the transfer is corrupted.`,
      { ...(cause === undefined ? {} : { cause }), details: { node: o.node, url: full } },
    );
  const part = `${o.dest}.part`;
  await rm(part, { force: true });
  const fh = await open(part, 'w', 0o600);
  const acc: Progress = { hash: createHash('sha256'), bytes: 0, writing: Promise.resolve() };
  let attempts = 0;
  const retryForMs = o.retryForMs ?? 60_000;
  try {
    let lastProgress = Date.now();
    let delay = 250;
    for (;;) {
      o.signal?.throwIfAborted();
      attempts += 1;
      const before = acc.bytes;
      try {
        await attempt(o, full, fh, acc, failed);
        break;
      } catch (err) {
        // Bytes written before a cut are kept (and hashed): the next attempt resumes there.
        await acc.writing.catch(() => undefined);
        if (err instanceof Permanent) throw err.error;
        if (o.signal?.aborted) throw new EtcdsnapError('OPERATION_ABORTED', 'The download was cancelled.', { cause: err });
        if (acc.bytes > before) {
          lastProgress = Date.now();
          delay = 250;
        }
        if (Date.now() - lastProgress + delay > retryForMs) throw failed(`${(err as Error).message} (retried for ${Math.round((Date.now() - lastProgress) / 1000)} s)`, 'TRANSFER_FAILED', err);
        await sleep(delay, o.signal);
        delay = Math.min(delay * 2, 5000);
      }
    }
    const bytes = acc.bytes;
    if (bytes !== o.size) throw failed(`is ${bytes} bytes, not the ${o.size} the init node staged`, 'SNAPSHOT_CHECKSUM_MISMATCH');
    const digest = acc.hash.digest('hex');
    if (digest !== o.sha256) throw failed(`has sha256 ${digest}, not ${o.sha256}`, 'SNAPSHOT_CHECKSUM_MISMATCH');
    await fh.sync();
    await fh.close();
    await rename(part, o.dest);
    return { bytes, attempts };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(part, { force: true });
    throw err;
  }
}

interface Progress {
  hash: Hash;
  /** Bytes written (and hashed) so far, over every attempt. */
  bytes: number;
  /** Writes in flight. */
  writing: Promise<void>;
}

/** Writes the body at the running offset, batching chunks; hash and count follow each write. */
class FileSink extends Writable {
  /** A failure retrying cannot fix (too many bytes, disk error). */
  permanent: Permanent | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly acc: Progress,
    private readonly o: DownloadOptions,
    private readonly failed: (why: string, code?: 'TRANSFER_FAILED' | 'SNAPSHOT_CHECKSUM_MISMATCH') => EtcdsnapError,
  ) {
    super({ highWaterMark: 4 * MiB });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.put(chunk, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.put(chunks.length === 1 ? (chunks[0] as { chunk: Buffer }).chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  private put(buf: Buffer, cb: (err?: Error | null) => void): void {
    const { acc, o } = this;
    if (acc.bytes + buf.length > o.size) {
      this.permanent = new Permanent(this.failed(`sent more than the ${o.size} bytes staged`, 'SNAPSHOT_CHECKSUM_MISMATCH'));
      cb(this.permanent);
      return;
    }
    const at = acc.bytes;
    const write = this.fh.write(buf, 0, buf.length, at).then(() => {
      acc.hash.update(buf);
      acc.bytes = at + buf.length;
      o.progress?.(acc.bytes, o.size);
    });
    acc.writing = write.catch(() => undefined);
    write.then(
      () => cb(),
      (err: unknown) => {
        this.permanent = new Permanent(new EtcdsnapError('TARGET_IO', `Could not write ${o.dest}.part: ${(err as Error).message}`, { cause: err }));
        cb(this.permanent);
      },
    );
  }
}

/** One connection: handshake, pin check, request (resuming at `acc.bytes`), body written to `fh`. */
function attempt(o: DownloadOptions, full: string, fh: FileHandle, acc: Progress, failed: (why: string, code?: 'TRANSFER_FAILED' | 'SNAPSHOT_CHECKSUM_MISMATCH') => EtcdsnapError): Promise<void> {
  const url = new URL(full);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 443);
  const offset = acc.bytes;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (err: unknown): void => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve();
    };
    const onAbort = (): void => done(new EtcdsnapError('OPERATION_ABORTED', 'The download was cancelled.'));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    // rejectUnauthorized: false — the pin below is the check; nothing is sent before it.
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) });
    socket.setTimeout(o.idleTimeoutMs ?? 30_000, () => socket.destroy(new Error(`no data for ${Math.round((o.idleTimeoutMs ?? 30_000) / 1000)} s`)));
    socket.once('error', (err) => done(err));
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw as Buffer | undefined;
      const got = raw ? createHash('sha256').update(raw).digest('hex') : 'none';
      if (got !== o.certSha256.toLowerCase()) {
        return done(new Permanent(failed(`the endpoint presented certificate sha256 ${got}, not the certificate the server announced (${o.certSha256}); the token was not sent`)));
      }
      const req = http.request({
        method: 'GET',
        host: url.host,
        path: url.pathname,
        headers: { authorization: `Bearer ${o.token}`, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
        createConnection: () => socket,
      });
      req.once('error', (err) => done(err));
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status === 401) return done(new Permanent(failed('the endpoint refused the transfer token (401)')));
        if (status === 404) return done(new Permanent(failed(`the endpoint does not serve restore ${o.operationId} (404)`)));
        if (status !== (offset > 0 ? 206 : 200)) {
          res.resume();
          const permanent = status >= 400 && status < 500;
          const e = new Error(`the endpoint answered HTTP ${status}`);
          return done(permanent ? new Permanent(failed(e.message)) : e);
        }
        // Written in batches (writev of what arrived meanwhile); hashed and counted only once
        // written, so a cut resumes exactly after the last byte on disk.
        const sink = new FileSink(fh, acc, o, failed);
        pipeline(res, sink).then(
          () => {
            socket.end();
            done(undefined);
          },
          (err: unknown) => done(sink.permanent ?? (res.complete ? err : new Error(`the connection closed after ${acc.bytes} of ${o.size} bytes`))),
        );
      });
      req.end();
    });
  });
}

/** "412 / 1024 MiB" */
export function mib(bytes: number, total: number): string {
  return `${Math.floor(bytes / MiB)} / ${Math.ceil(total / MiB)} MiB`;
}
