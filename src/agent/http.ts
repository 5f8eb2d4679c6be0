import http from 'node:http';
import https from 'node:https';
import { EtcdsnapError } from '../core/errors.js';

/**
 * JSON over HTTP(S) to the etcdsnap server with node's http/https (Node 20 does not expose
 * undici's Agent, and `fetch` cannot take a private CA without it). With `ca` only that CA is
 * trusted (the system roots are not); `insecure` is for fetching the CA itself, whose content
 * the caller verifies by checksum.
 */
export interface TransportOptions {
  /** PEM of the only CA to trust for https. Default: the system roots. */
  ca?: string;
  /** Accept any certificate (only for GET /cacerts, verified by checksum afterwards). */
  insecure?: boolean;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Deadline of the whole exchange. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  text: string;
}

/** Largest response body read (a plan carries at most a 1 MiB cluster config). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

function isTlsError(err: NodeJS.ErrnoException): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)|ERR_TLS|ERR_SSL/.test(err.code ?? '');
}

export class HttpTransport {
  readonly base: URL;
  private readonly agent: http.Agent;

  constructor(server: string, private readonly options: TransportOptions = {}) {
    this.base = new URL(server.endsWith('/') ? server : `${server}/`);
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ...(options.ca !== undefined ? { ca: options.ca } : {}), rejectUnauthorized: options.insecure !== true })
        : new http.Agent({ keepAlive: true });
  }

  /** `path` is relative to the server URL (`api/v1/agent/plan?after=…`). */
  request(method: string, path: string, o: RequestOptions): Promise<HttpResponse> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    const what = `${method} ${url.origin}${url.pathname}`;
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new EtcdsnapError('OPERATION_ABORTED', `${what} was cancelled.`));
      let settled = false;
      const finish = (err: EtcdsnapError | undefined, res?: HttpResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(res as HttpResponse);
      };
      const req = mod.request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...o.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY_BYTES) finish(new EtcdsnapError('SERVER_REQUEST_FAILED', `${what}: the response is larger than ${MAX_BODY_BYTES} bytes.`));
            else chunks.push(c);
          });
          res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => finish(new EtcdsnapError('SERVER_UNREACHABLE', `${what}: the connection broke: ${err.message}.`, { cause: err })));
        },
      );
      const onAbort = (): void => finish(new EtcdsnapError('OPERATION_ABORTED', `${what} was cancelled.`));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () => finish(new EtcdsnapError('SERVER_UNREACHABLE', `${what}: no answer within ${o.timeoutMs} ms. Check that the server runs and is reachable from this node.`)),
        o.timeoutMs,
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (isTlsError(err)) {
          const pinned = this.options.ca !== undefined ? 'the pinned server CA (--ca-checksum)' : 'the system CAs (pass --ca-checksum for a server with its own CA)';
          finish(new EtcdsnapError('SERVER_TLS_UNTRUSTED', `${what}: the server certificate is not trusted by ${pinned}: ${err.message}.`, { cause: err }));
        } else {
          finish(new EtcdsnapError('SERVER_UNREACHABLE', `${what}: ${err.message}. Check --server and that the server runs.`, { cause: err, details: { errno: err.code } }));
        }
      });
      req.end(payload);
    });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}
