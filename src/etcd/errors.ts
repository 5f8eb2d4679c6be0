/**
 * The one place where gRPC and etcd3 errors become EtcdsnapErrors.
 *
 * etcd3 turns grpc-js errors into its own classes (GRPCUnavailableError, …) and drops the
 * numeric status code on the way, so both the class name and the code are looked at.
 * "Cannot reach this member" (refused, unavailable, deadline) is ETCD_UNREACHABLE and
 * retryable; anything etcd answered with is ETCD_REQUEST_FAILED.
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
  if (isUnreachable(err)) {
    return new EtcdsnapError(
      'ETCD_UNREACHABLE',
      `etcd at ${endpoints} is unreachable (${ctx.operation}: ${detail}). Check that the endpoint is right and that etcd is running and listening there.`,
      { cause: err, details },
    );
  }
  return new EtcdsnapError('ETCD_REQUEST_FAILED', `etcd ${ctx.operation} on ${endpoints} failed: ${detail}. ${advice(detail)}`, { cause: err, details });
}
