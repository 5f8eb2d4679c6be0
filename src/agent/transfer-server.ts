/**
 * The restore transfer endpoint: HTTPS, listening only while this node serves a staged
 * snapshot (from restore-prepare until restore-finish or -rollback).
 *
 *   GET /v1/restores/<operationId>/snapshot.db       the raw etcd snapshot
 *   GET /v1/restores/<operationId>/snapshot.stored   its stored (compressed) bytes, when served
 *   Authorization: Bearer <transferToken of the restore>
 *
 * 200 with Content-Length (or 206 for `Range: bytes=N-`, a resumed download), 401 for a
 * missing or wrong token (compared in constant time, as sha256 digests), 404 for an operation
 * this node does not serve. The token is never logged nor stored in clear.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { EtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ServedSnapshot } from './state.js';
import type { TransferTls } from './transfer-tls.js';

export const TRANSFER_PATH = /^\/v1\/restores\/([A-Za-z0-9_-]{1,64})\/snapshot\.(db|stored)$/;

export type TransferFile = 'snapshot.db' | 'snapshot.stored';

/** The URL path of an operation's staged snapshot (raw) or its stored bytes. */
export function transferPath(operationId: string, file: TransferFile = 'snapshot.db'): string {
  return `/v1/restores/${operationId}/${file}`;
}

/** sha256 (hex) of a transfer token: what the state keeps and requests are compared with. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface TransferServerOptions {
  host: string;
  /** 0: any free port (then `preferredPort` first, e.g. the one bound before a restart). */
  port: number;
  preferredPort?: () => number | null;
  tls: () => Promise<TransferTls>;
  logger: Logger;
  /** Called with the port once bound (the agent keeps it in its state). */
  onBound?: (port: number) => Promise<void>;
}

export class TransferServer {
  private readonly served = new Map<string, ServedSnapshot>();
  private server: https.Server | undefined;
  private starting: Promise<void> | undefined;
  private boundPort: number | undefined;
  /** Requests answered, by status (tests and logs). */
  readonly answered = new Map<number, number>();

  constructor(private readonly o: TransferServerOptions) {}

  /** The bound port while listening. */
  get port(): number | undefined {
    return this.boundPort;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Serves `s` (replacing an entry of the same operation), listening first if needed. */
  async serve(s: ServedSnapshot): Promise<number> {
    this.served.set(s.operationId, s);
    await this.listen();
    return this.boundPort as number;
  }

  /** Stops serving an operation; closes the listener when nothing is served any more. */
  async unserve(operationId: string): Promise<void> {
    this.served.delete(operationId);
    if (this.served.size === 0) await this.close();
  }

  async close(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const server = this.server;
    this.server = undefined;
    this.boundPort = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    this.o.logger.info('transfer endpoint closed');
  }

  private listen(): Promise<void> {
    if (this.server) return Promise.resolve();
    this.starting ??= this.bind().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async bind(): Promise<void> {
    const tls = await this.o.tls();
    const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    const tryPort = (port: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen(port, this.o.host, () => {
          server.off('error', onError);
          resolve();
        });
      });
    const preferred = this.o.port === 0 ? (this.o.preferredPort?.() ?? 0) : this.o.port;
    try {
      await tryPort(preferred);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (preferred !== 0 && this.o.port === 0 && code === 'EADDRINUSE') {
        await tryPort(0);
      } else {
        throw new EtcdsnapError('INVALID_CONFIG', `The transfer endpoint cannot listen on ${this.o.host}:${preferred} (${code ?? (err as Error).message}); set --transfer-listen to a free HOST:PORT.`, {
          cause: err,
          details: { flag: '--transfer-listen' },
        });
      }
    }
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.o.logger.info({ host: this.o.host, port: this.boundPort }, 'transfer endpoint listening');
    await this.o.onBound?.(this.boundPort);
  }

  private count(status: number): void {
    this.answered.set(status, (this.answered.get(status) ?? 0) + 1);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, message: string): void => {
      this.count(status);
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
      res.end(JSON.stringify({ code: status === 401 ? 'UNAUTHORIZED' : status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT', message }));
    };
    const m = TRANSFER_PATH.exec(new URL(req.url ?? '/', 'https://x').pathname);
    if (req.method !== 'GET' || !m) return fail(404, 'Not found.');
    const op = m[1] as string;
    const entry = this.served.get(op);
    if (!entry) return fail(404, `This node does not serve a snapshot of restore ${op}.`);
    const bearer = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(req.headers.authorization ?? '')?.[1];
    const given = Buffer.from(tokenDigest(bearer ?? ''), 'hex');
    if (!bearer || !timingSafeEqual(given, Buffer.from(entry.tokenSha256, 'hex'))) {
      this.o.logger.warn({ operationId: op, remote: req.socket.remoteAddress, hadToken: Boolean(bearer) }, 'transfer request refused: wrong or missing token');
      return fail(401, 'Missing or wrong transfer token.');
    }
    const file = m[2] === 'stored' ? entry.storedFile : entry.file;
    if (file === undefined) return fail(404, `This node serves only the raw snapshot of restore ${op}.`);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      return fail(404, `The staged snapshot of restore ${op} is gone.`);
    }
    let start = 0;
    const range = req.headers.range;
    if (range !== undefined) {
      const r = /^bytes=(\d+)-$/.exec(range.trim());
      if (!r || Number(r[1]) >= size) {
        this.count(416);
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      start = Number(r[1]);
    }
    const status = start > 0 ? 206 : 200;
    this.count(status);
    res.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': String(size - start),
      'accept-ranges': 'bytes',
      ...(start > 0 ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    this.o.logger.info({ operationId: op, remote: req.socket.remoteAddress, from: start, size }, 'serving the staged snapshot');
    try {
      await pipeline(createReadStream(file, { start, highWaterMark: 1 << 20 }), res);
    } catch (err) {
      this.o.logger.warn({ operationId: op, remote: req.socket.remoteAddress, err: (err as Error).message }, 'snapshot transfer interrupted');
    }
  }
}
