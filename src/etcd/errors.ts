/**
 * The one place where gRPC and etcd3 errors become EtcdsnapErrors.
 *
 * etcd3 turns grpc-js errors into its own classes (GRPCUnavailableError, …) and drops the
 * numeric status code on the way, so both the class name and the code are looked at.
 * "Cannot reach this member" (refused, unavailable, deadline) is ETCD_UNREACHABLE and
 * retryable; anything etcd answered with is ETCD_REQUEST_FAILED.
 *
 * A failed TLS handshake (grpc-js reports it as UNAVAILABLE too) stays ETCD_UNREACHABLE — no
 * request reached etcd, and failover across endpoints still applies — but its message says
 * which of --cacert/--cert/--key to check, and `details.tls` names the kind of failure.
 */
import { EtcdsnapError, isAbortError } from '../core/errors.js';

/** gRPC status codes we look at (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
const GRPC_CANCELLED = 1;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

const UNREACHABLE_CLASSES = new Set(['GRPCUnavailableError', 'GRPCDeadlineExceededError', 'GRPCConnectFailedError', 'BrokenCircuitError']);
const UNREACHABLE_TEXT = /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|ETIMEDOUT|No connection established|failed to connect|Deadline exceeded|deadline exceeded/i;

export interface EtcdErrorContext {
  /** What we were doing, e.g. `status`, `snapshot`, `member list`. */
  operation: string;
  /** The endpoint(s) the request went to. */
  endpoints: string | string[];
  /** Whether a client certificate was offered (unknown when omitted): sharpens TLS advice. */
  clientCertificate?: boolean;
}

/**
 * How a TLS handshake failed:
 * - `server-untrusted`: etcd's certificate does not chain to the CA we trust (--cacert);
 * - `server-name`: it does, but is not valid for the endpoint's host;
 * - `client-rejected`: etcd refused our client certificate, or the lack of one (--cert/--key);
 * - `not-tls`: an https endpoint where the member does not speak TLS;
 * - `tls-expected`: an http endpoint where the member answered with something else than
 *   plaintext gRPC, most likely TLS.
 */
export type EtcdTlsFailure = 'server-untrusted' | 'server-name' | 'client-rejected' | 'not-tls' | 'tls-expected';

const SERVER_UNTRUSTED_TEXT =
  /unable to verify the first certificate|self[- ]signed certificate|unable to get (?:local )?issuer certificate|certificate has expired|certificate is not yet valid|unable to get issuer cert|certificate signature failure|CERT_UNTRUSTED|invalid CA certificate/i;
const SERVER_NAME_TEXT = /does not match certificate'?s altnames|ERR_TLS_CERT_ALTNAME_INVALID/i;
const CLIENT_REJECTED_TEXT = /alert (?:bad certificate|certificate required|unknown ca|certificate unknown|unsupported certificate|access denied|certificate revoked|certificate expired)|SSL alert number (?:42|43|44|45|46|48|49|116)\b/i;
const NOT_TLS_TEXT = /disconnected before secure TLS connection was established|wrong version number|packet length too long|unknown protocol|record layer failure/i;

/** The kind of TLS failure behind a gRPC error, if it is one. */
export function tlsFailureOf(err: unknown, endpoints: string | string[]): EtcdTlsFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const text = `${err.message} ${String((err as { code?: unknown }).code ?? '')}`;
  if (CLIENT_REJECTED_TEXT.test(text)) return 'client-rejected';
  if (SERVER_NAME_TEXT.test(text)) return 'server-name';
  if (SERVER_UNTRUSTED_TEXT.test(text)) return 'server-untrusted';
  if (NOT_TLS_TEXT.test(text)) return 'not-tls';
  // grpc-js says only "Failed to connect" when plaintext HTTP/2 met a TLS port (a refused or
  // unreachable port has its own errno in the message).
  const plain = (Array.isArray(endpoints) ? endpoints : [endpoints]).every((e) => e.startsWith('http:'));
  if (plain && /Last error: Failed to connect\b/.test(err.message)) return 'tls-expected';
  return undefined;
}

/** OpenSSL's "…:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:…:SSL alert number 42 (date)" → `TLS alert "bad certificate" (42)`. */
function tlsDetail(detail: string): string {
  const alert = /alert ([a-z ]+?)(?::|$)/i.exec(detail);
  if (!alert?.[1]) return detail;
  const number = /SSL alert number (\d+)/.exec(detail)?.[1];
  return `etcd answered with TLS alert "${alert[1]}"${number ? ` (${number})` : ''}`;
}

function tlsAdvice(kind: EtcdTlsFailure, clientCertificate: boolean | undefined): string {
  switch (kind) {
    case 'server-untrusted':
      return "etcd's server certificate is not trusted: check --cacert, which must be the CA that signed etcd's certificate (RKE2: /var/lib/rancher/rke2/server/tls/etcd/server-ca.crt; kubeadm: /etc/kubernetes/pki/etcd/ca.crt).";
    case 'server-name':
      return "etcd's certificate is not valid for this host: use a host or IP its certificate names (usually https://127.0.0.1:2379 on the node), and check --cacert.";
    case 'client-rejected':
      if (clientCertificate === false) return 'etcd requires a client certificate (--client-cert-auth) and none was given: pass --cert and --key (RKE2: /var/lib/rancher/rke2/server/tls/etcd/server-client.crt and .key).';
      return 'etcd rejected the client certificate: check --cert and --key (a certificate signed by the CA etcd trusts, with clientAuth usage, and its key).';
    case 'not-tls':
      return 'the member did not complete a TLS handshake: if it serves plain http, use an http:// endpoint; otherwise check --cacert, --cert and --key.';
    case 'tls-expected':
      return 'the member did not answer plaintext gRPC: if etcd serves TLS (Kubernetes etcd does), use an https:// endpoint with --cacert, --cert and --key.';
  }
}

/** True when the error means the endpoint did not answer (as opposed to answering with an error). */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof EtcdsnapError) return err.code === 'ETCD_UNREACHABLE';
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) return true;
  if (UNREACHABLE_CLASSES.has(err.constructor.name) || UNREACHABLE_CLASSES.has(err.name)) return true;
  return UNREACHABLE_TEXT.test(err.message);
}

function isCancelled(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === GRPC_CANCELLED || err.constructor.name === 'GRPCCancelledError' || /Cancelled on client/.test(err.message);
}

/** Short form of a foreign error message, without grpc-js's repeated prefixes. */
export function describeError(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  // grpc-js: "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED …. Resolution note: "
  const last = /Last error: (?:\w*Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(message);
  if (last?.[1]) message = last[1];
  return message.replace(/^(\w+Error: )+/, '').replace(/^\d+ [A-Z_]+: /, '').trim() || 'unknown error';
}

/** Advice for etcd's own error messages, so the user knows what to do next. */
function advice(detail: string): string {
  if (/required revision has been compacted/.test(detail)) return 'The revision was compacted; read at a newer revision.';
  if (/database space exceeded/.test(detail)) return 'The backend quota is full: compact and defragment etcd, or raise --quota-backend-bytes.';
  if (/no leader|leader changed|request timed out|too many requests/.test(detail)) return 'The cluster is electing a leader or overloaded; retry shortly and check `etcdsnap` health.';
  if (/permission denied|invalid auth token|authentication failed|user name not found/.test(detail)) return 'Check the etcd credentials and roles.';
  if (/certificate|tls|ssl/i.test(detail)) return 'Check the TLS settings (CA, client certificate) for etcd.';
  return 'Check the etcd member logs.';
}

/**
 * Converts anything a gRPC/etcd3 call threw into an EtcdsnapError that names the endpoints
 * and says what to do. EtcdsnapErrors pass through unchanged.
 */
export function toEtcdError(err: unknown, ctx: EtcdErrorContext): EtcdsnapError {
  if (err instanceof EtcdsnapError) return err;
  const endpoints = Array.isArray(ctx.endpoints) ? ctx.endpoints.join(', ') : ctx.endpoints;
  const detail = describeError(err);
  const details = { operation: ctx.operation, endpoints: ctx.endpoints, detail };
  if (isAbortError(err) || (err instanceof Error && isCancelled(err))) {
    return new EtcdsnapError('OPERATION_ABORTED', `etcd ${ctx.operation} on ${endpoints} was cancelled.`, { cause: err, details });
  }
  const tls = tlsFailureOf(err, ctx.endpoints);
  if (tls) {
    const short = tlsDetail(detail);
    return new EtcdsnapError('ETCD_UNREACHABLE', `TLS connection to etcd at ${endpoints} failed (${ctx.operation}: ${short}): ${tlsAdvice(tls, ctx.clientCertificate)}`, {
      cause: err,
      details: { ...details, detail: short, tls },
    });
  }
  if (isUnreachable(err)) {
    return new EtcdsnapError(
      'ETCD_UNREACHABLE',
      `etcd at ${endpoints} is unreachable (${ctx.operation}: ${detail}). Check that the endpoint is right and that etcd is running and listening there.`,
      { cause: err, details },
    );
  }
  return new EtcdsnapError('ETCD_REQUEST_FAILED', `etcd ${ctx.operation} on ${endpoints} failed: ${detail}. ${advice(detail)}`, { cause: err, details });
}
