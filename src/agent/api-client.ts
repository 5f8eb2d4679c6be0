import { createHash, X509Certificate } from 'node:crypto';
import { EtcdsnapError, type ErrorCode } from '../core/errors.js';
import { RegistrationResponseSchema, type AgentReport, type RegistrationRequest, type RegistrationResponse } from '../core/plans.js';
import { protocolValidator } from './validate.js';
import { HttpTransport, type HttpResponse } from './http.js';

/**
 * The agent's side of the protocol (src/core/plans.ts): register, long-poll the plan, report.
 * Every failure is an EtcdsnapError: SERVER_UNREACHABLE (network, timeout; retry),
 * UNAUTHORIZED (the node token was refused: register again), SERVER_REJECTED (4xx: the server
 * says the request is wrong; retrying the same request will not help), SERVER_REQUEST_FAILED
 * (5xx or a malformed answer; retry), SERVER_TLS_UNTRUSTED, OPERATION_ABORTED.
 */
export const AGENT_API = 'api/v1/agent';

const registrationValidator = protocolValidator(RegistrationResponseSchema);

export interface ApiClientOptions {
  server: string;
  /** PEM of the pinned server CA (https); default: the system roots. */
  ca?: string | null;
  /** Deadline of every call but the long-poll (which gets its wait on top). */
  requestTimeoutMs: number;
}

function parseJson(res: HttpResponse, what: string): unknown {
  try {
    return JSON.parse(res.text) as unknown;
  } catch {
    throw new EtcdsnapError('SERVER_REQUEST_FAILED', `${what}: the server answered ${res.status} with a body that is not JSON: ${res.text.slice(0, 200)}`);
  }
}

/** Converts a non-2xx answer (body `{code, message}` when the server sends one). */
export function errorForResponse(res: HttpResponse, what: string): EtcdsnapError {
  let detail = res.text.slice(0, 500);
  let serverCode: string | undefined;
  try {
    const body = JSON.parse(res.text) as { code?: unknown; message?: unknown };
    if (typeof body.message === 'string') detail = body.message;
    if (typeof body.code === 'string') serverCode = body.code;
  } catch {
    // not JSON: keep the text
  }
  const code: ErrorCode =
    res.status === 401 ? 'UNAUTHORIZED' : res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429 ? 'SERVER_REJECTED' : 'SERVER_REQUEST_FAILED';
  return new EtcdsnapError(code, `${what}: the server answered ${res.status}${serverCode ? ` ${serverCode}` : ''}: ${detail}`, { details: { status: res.status, serverCode } });
}

export class ApiClient {
  private readonly http: HttpTransport;
  private readonly requestTimeoutMs: number;
  /** Node token for every call after registration. */
  token: string | null = null;

  constructor(o: ApiClientOptions) {
    this.http = new HttpTransport(o.server, o.ca ? { ca: o.ca } : {});
    this.requestTimeoutMs = o.requestTimeoutMs;
  }

  async register(req: RegistrationRequest, signal?: AbortSignal): Promise<RegistrationResponse> {
    const what = 'Registration';
    const res = await this.http.request('POST', `${AGENT_API}/register`, { body: req, timeoutMs: this.requestTimeoutMs, signal });
    if (res.status !== 200 && res.status !== 201) throw errorForResponse(res, what);
    return registrationValidator.parse(parseJson(res, what), 'registration response');
  }

  /**
   * Long-polls for a plan other than `after`: the plan's JSON (validated by the caller, so a
   * bad plan can be skipped by id), or null when nothing changed within `waitSeconds`.
   */
  async plan(after: string | null, waitSeconds: number, signal?: AbortSignal): Promise<unknown> {
    const what = 'Plan poll';
    const query = new URLSearchParams({ wait: String(waitSeconds) });
    if (after !== null) query.set('after', after);
    const res = await this.http.request('GET', `${AGENT_API}/plan?${query.toString()}`, {
      headers: this.auth(),
      timeoutMs: waitSeconds * 1000 + this.requestTimeoutMs,
      signal,
    });
    if (res.status === 204) return null;
    if (res.status !== 200) throw errorForResponse(res, what);
    return parseJson(res, what);
  }

  /** Sends a report; the answer carries the server's current plan id. */
  async report(report: AgentReport, signal?: AbortSignal): Promise<{ planId: string | null }> {
    const what = 'Report';
    const res = await this.http.request('POST', `${AGENT_API}/report`, { body: report, headers: this.auth(), timeoutMs: this.requestTimeoutMs, signal });
    if (res.status < 200 || res.status >= 300) throw errorForResponse(res, what);
    if (res.status === 204 || res.text === '') return { planId: null };
    const body = parseJson(res, what) as { planId?: unknown };
    return { planId: typeof body.planId === 'string' ? body.planId : null };
  }

  close(): void {
    this.http.close();
  }

  private auth(): Record<string, string> {
    if (this.token === null) throw new EtcdsnapError('UNAUTHORIZED', 'The agent has no node token yet: it registers first.');
    return { authorization: `Bearer ${this.token}` };
  }
}

/** sha256 (hex) of a certificate's DER bytes: what `--ca-checksum` holds. */
export function certificateChecksum(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** The PEM blocks of a bundle. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Fetches the server CA from `GET {server}/cacerts` (unauthenticated; the TLS handshake is
 * not verified because the CA is not trusted yet) and returns the one certificate whose DER
 * sha256 is `checksum`. Anything else is refused with SERVER_TLS_UNTRUSTED.
 */
export async function fetchPinnedCA(server: string, checksum: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const http = new HttpTransport(server, { insecure: true });
  try {
    const res = await http.request('GET', 'cacerts', { timeoutMs, signal, headers: { accept: 'application/x-pem-file, text/plain, */*' } });
    if (res.status !== 200) throw errorForResponse(res, 'Fetching the server CA (GET /cacerts)');
    const certs = pemCertificates(res.text);
    if (certs.length === 0) throw new EtcdsnapError('SERVER_TLS_UNTRUSTED', `${server}/cacerts holds no PEM certificate; the agent cannot pin the server CA.`);
    const seen: string[] = [];
    for (const pem of certs) {
      let sum: string;
      try {
        sum = certificateChecksum(pem);
      } catch {
        continue;
      }
      if (sum === checksum) return `${pem}\n`;
      seen.push(sum);
    }
    throw new EtcdsnapError(
      'SERVER_TLS_UNTRUSTED',
      `The CA served by ${server}/cacerts has sha256 ${seen.join(', ') || '(unreadable)'}, but --ca-checksum is ${checksum}. The agent does not trust this server: check the checksum (etcdsnap cluster join-command) and the server URL.`,
      { details: { expected: checksum, served: seen } },
    );
  } finally {
    http.close();
  }
}
