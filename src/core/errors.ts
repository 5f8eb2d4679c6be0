/**
 * Every failure etcdsnap reports has a stable code, an HTTP status (for the API) and a
 * human message that says what is wrong and what to do. Foreign errors (gRPC, AWS SDK, fs)
 * are converted to these at the module boundary that meets them.
 *
 * docs/errors.md lists every code; src/core/errors.test.ts keeps the two in step.
 */
export const ERROR_CODES = {
  INVALID_ARGUMENT: { status: 400, retryable: false },
  INVALID_NAME: { status: 400, retryable: false },
  INVALID_CONFIG: { status: 400, retryable: false },
  CLUSTER_UNHEALTHY: { status: 503, retryable: true },
  ETCD_UNREACHABLE: { status: 503, retryable: true },
  ETCD_REQUEST_FAILED: { status: 502, retryable: true },
  ETCDCTL_NOT_FOUND: { status: 500, retryable: false },
  ETCD_RESTORE_FAILED: { status: 500, retryable: false },
  ETCD_MEMBER_FAILED: { status: 500, retryable: false },
  SERVER_UNREACHABLE: { status: 503, retryable: true },
  SERVER_TLS_UNTRUSTED: { status: 502, retryable: false },
  SERVER_REQUEST_FAILED: { status: 502, retryable: true },
  SERVER_REJECTED: { status: 400, retryable: false },
  SNAPSHOT_NOT_FOUND: { status: 404, retryable: false },
  SNAPSHOT_EXISTS: { status: 409, retryable: false },
  SNAPSHOT_STREAM_INVALID: { status: 502, retryable: true },
  SNAPSHOT_CHECKSUM_MISMATCH: { status: 422, retryable: false },
  SNAPSHOT_CORRUPT: { status: 422, retryable: false },
  METADATA_INVALID: { status: 422, retryable: false },
  METADATA_MISSING: { status: 422, retryable: false },
  CODEC_UNSUPPORTED: { status: 422, retryable: false },
  DATA_DIR_NOT_EMPTY: { status: 409, retryable: false },
  TARGET_IO: { status: 500, retryable: false },
  TARGET_UNREACHABLE: { status: 503, retryable: true },
  TARGET_TIMEOUT: { status: 504, retryable: true },
  TARGET_ACCESS_DENIED: { status: 403, retryable: false },
  TARGET_BUCKET_NOT_FOUND: { status: 404, retryable: false },
  TARGET_TLS_UNTRUSTED: { status: 502, retryable: false },
  TARGET_CLUSTER_MISMATCH: { status: 409, retryable: false },
  OPERATION_ABORTED: { status: 499, retryable: false },
  UNAUTHORIZED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  CONFLICT: { status: 409, retryable: false },
  OPERATION_RUNNING: { status: 409, retryable: false },
  NODE_DISCONNECTED: { status: 503, retryable: true },
  TASK_FAILED: { status: 500, retryable: false },
  SNAPSHOT_FAILED: { status: 409, retryable: false },
  RESTORE_MODE_NOT_ALLOWED: { status: 422, retryable: false },
  RESTORE_VERIFY_FAILED: { status: 500, retryable: false },
  ROLLBACK_INCOMPLETE: { status: 500, retryable: false },
  TRANSFER_FAILED: { status: 502, retryable: true },
  INTERNAL: { status: 500, retryable: false },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  cause?: unknown;
  /** Structured facts for logs and the API (never secrets). */
  details?: Record<string, unknown>;
}

export class EtcdsnapError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EtcdsnapError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
    this.details = options.details;
  }

  /** One line for stderr and logs: `CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isEtcdsnapError(err: unknown, code?: ErrorCode): err is EtcdsnapError {
  return err instanceof EtcdsnapError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into an EtcdsnapError, keeping ours as they are. */
export function toEtcdsnapError(err: unknown, fallback: ErrorCode = 'INTERNAL'): EtcdsnapError {
  if (err instanceof EtcdsnapError) return err;
  if (isAbortError(err)) return new EtcdsnapError('OPERATION_ABORTED', 'The operation was cancelled.', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new EtcdsnapError(fallback, message, { cause: err });
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR');
}
