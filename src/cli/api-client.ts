import { Agent, fetch, type Dispatcher } from 'undici';
import { API_PREFIX, type ServerEvent } from '../core/api.js';
import { ERROR_CODES, EtcdsnapError, type ErrorCode } from '../core/errors.js';

export interface ServerConnection {
  /** Base URL, e.g. https://etcdsnap.example:8443. */
  server: string;
  token: string;
  /** PEM of the server's CA (pinned at login); the system roots are used when absent. */
  ca?: string;
  /** Accept any certificate (explicit opt-in only). */
  insecureSkipTlsVerify?: boolean;
}

function serverError(status: number, body: unknown, what: string): EtcdsnapError {
  const b = body as { code?: string; message?: string } | undefined;
  const code = b?.code && b.code in ERROR_CODES ? (b.code as ErrorCode) : status === 401 ? 'INVALID_ARGUMENT' : 'INTERNAL';
  const message = b?.message ?? `${what} failed with HTTP ${status}`;
  const err = new EtcdsnapError(code, status === 401 && !b?.code ? `${message}: the token was refused; run "etcdsnap login" again.` : message);
  return err;
}

function unreachable(server: string, err: unknown): EtcdsnapError {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new EtcdsnapError('TARGET_TLS_UNTRUSTED', `The server ${server} presented a certificate this client does not trust (${code}): log in with --ca-checksum from the join command.`, { cause: err });
  }
  return new EtcdsnapError('TARGET_UNREACHABLE', `Cannot reach the etcdsnap server at ${server} (${cause?.message ?? (err as Error).message}): check the URL and that the server runs.`, { cause: err });
}

/** A typed client of the REST API: bearer token, pinned CA, coded errors. */
export class ApiClient {
  private readonly dispatcher: Dispatcher;
  readonly server: string;

  constructor(private readonly conn: ServerConnection) {
    this.server = conn.server.replace(/\/+$/, '');
    this.dispatcher = new Agent({ connect: { ...(conn.ca ? { ca: conn.ca } : {}), ...(conn.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}) } });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await fetch(`${this.server}${API_PREFIX}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: { authorization: `Bearer ${this.conn.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw unreachable(this.server, err);
    }
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw serverError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** The server's event stream (SSE), until `signal` aborts. */
  async *events(signal: AbortSignal): AsyncGenerator<ServerEvent> {
    let res;
    try {
      res = await fetch(`${this.server}${API_PREFIX}/events`, { dispatcher: this.dispatcher, headers: { authorization: `Bearer ${this.conn.token}`, accept: 'text/event-stream' }, signal });
    } catch (err) {
      if (signal.aborted) return;
      throw unreachable(this.server, err);
    }
    if (!res.ok || !res.body) throw serverError(res.status, await res.json().catch(() => undefined), 'GET /events');
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (data) yield JSON.parse(data) as ServerEvent;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw unreachable(this.server, err);
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
