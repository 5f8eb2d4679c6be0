/**
 * The one place where AWS SDK, TLS and socket errors of the S3 target become EtcdsnapErrors
 * with a stable code and advice. Messages name the S3 call and the object, never a secret.
 */
import { EtcdsnapError, isAbortError } from '../core/errors.js';

export interface S3ErrorContext {
  /** The S3 API call, e.g. `PutObject`. */
  operation: string;
  bucket: string;
  /** Object key, if the call was about one. */
  key?: string;
  region: string;
  /** Custom endpoint, or undefined for AWS. */
  endpoint: string | undefined;
  /** Strings to scrub from any foreign text we quote (secret key, session token). */
  secrets?: readonly string[];
}

/** The fields of SDK, TLS and socket errors we look at. */
interface ForeignError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const DENIED_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired', 'AllAccessDisabled', 'AccountProblem']);
const REGION_NAMES = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']);
const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound']);

/** The IAM action a call needs. */
const ACTIONS: Record<string, string> = {
  HeadObject: 's3:GetObject',
  GetObject: 's3:GetObject',
  PutObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  ListObjectsV2: 's3:ListBucket',
  DeleteObject: 's3:DeleteObject',
};

function fields(err: unknown): ForeignError {
  return err !== null && typeof err === 'object' ? (err as ForeignError) : { message: String(err) };
}

/** The S3 error code (`NoSuchBucket`…) or the error name. */
export function s3ErrorName(err: unknown): string | undefined {
  const e = fields(err);
  return e.Code ?? e.name;
}

export function httpStatusOf(err: unknown): number | undefined {
  return fields(err).$metadata?.httpStatusCode;
}

/** A missing object (not a missing bucket: that is NoSuchBucket, reported as such). */
export function isS3NotFound(err: unknown): boolean {
  const name = s3ErrorName(err);
  return name !== undefined && NOT_FOUND_NAMES.has(name);
}

/** The server does not implement the call (s3rver: AbortMultipartUpload is 405, ListMultipartUploads 501). */
export function isNotImplemented(err: unknown): boolean {
  const status = httpStatusOf(err);
  const name = s3ErrorName(err);
  return status === 405 || status === 501 || name === 'MethodNotAllowed' || name === 'NotImplemented';
}

export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
  return out;
}

/** `s3://bucket/key` (or `s3://bucket` for bucket calls). */
export function s3Url(bucket: string, key?: string): string {
  return key ? `s3://${bucket}/${key}` : `s3://${bucket}`;
}

/** Converts anything the SDK or the network threw during `ctx.operation` into an EtcdsnapError. */
export function convertS3Error(err: unknown, ctx: S3ErrorContext): EtcdsnapError {
  if (err instanceof EtcdsnapError) return err;
  const e = fields(err);
  const where = s3Url(ctx.bucket, ctx.key);
  const endpoint = ctx.endpoint ?? `AWS S3 (${ctx.region})`;
  const name = s3ErrorName(err);
  const status = httpStatusOf(err);
  const text = scrub(e.message ?? '', ctx.secrets).replace(/\.+$/, '');
  const details: Record<string, unknown> = { operation: ctx.operation, bucket: ctx.bucket, endpoint, region: ctx.region };
  if (ctx.key) details.key = ctx.key;
  if (name) details.s3Code = name;
  if (status) details.httpStatus = status;
  if (e.code) details.errno = e.code;
  const make = (code: ConstructorParameters<typeof EtcdsnapError>[0], message: string): EtcdsnapError => new EtcdsnapError(code, message, { cause: err, details });

  if (isAbortError(err)) return make('OPERATION_ABORTED', `${ctx.operation} on ${where} was cancelled.`);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(text)) {
    return make(
      'TARGET_ACCESS_DENIED',
      `No S3 credentials for ${ctx.operation} on ${where}: give an access key and secret key (--s3-access-key, --s3-secret-key), or run where the AWS default chain finds some (AWS_* environment, shared credentials file, web identity token, container or EC2 instance role). ${text}`.trim(),
    );
  }
  if ((e.code && TLS_CODES.has(e.code)) || /certificate|self[- ]signed/i.test(text)) {
    const altname = e.code === 'ERR_TLS_CERT_ALTNAME_INVALID';
    return make(
      'TARGET_TLS_UNTRUSTED',
      altname
        ? `The certificate of ${endpoint} does not name that host (${text}): use the host name the certificate was issued for in --s3-endpoint.`
        : `The certificate of ${endpoint} is not trusted (${text}) during ${ctx.operation} on ${where}: set the custom CA (--s3-endpoint-ca) to the CA that signed the endpoint's certificate.`,
    );
  }
  if (e.code === 'ETIMEDOUT' || (name && TIMEOUT_NAMES.has(name) && !(e.code && UNREACHABLE_CODES.has(e.code)))) {
    return make('TARGET_TIMEOUT', `${ctx.operation} on ${where} at ${endpoint} timed out: check the network to the endpoint, or raise --s3-timeout.`);
  }
  if (e.code && UNREACHABLE_CODES.has(e.code)) {
    const tlsHint = e.code === 'EPROTO' || e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? ' (TLS handshake failed: does the endpoint speak https?)' : '';
    return make('TARGET_UNREACHABLE', `Cannot reach ${endpoint} for ${ctx.operation} on ${where}: ${e.code}${tlsHint}. Check --s3-endpoint and that the store is up.`);
  }
  if (name === 'NoSuchBucket') {
    return make('TARGET_BUCKET_NOT_FOUND', `Bucket ${ctx.bucket} does not exist in region ${ctx.region} at endpoint ${endpoint}: create it or fix the bucket name.`);
  }
  if ((name && DENIED_NAMES.has(name)) || status === 403) {
    const action = ACTIONS[ctx.operation] ?? `s3:${ctx.operation}`;
    const why =
      name === 'InvalidAccessKeyId'
        ? 'the access key id is not known to the endpoint: check the access key'
        : name === 'SignatureDoesNotMatch'
          ? 'the request signature does not match: check the secret key'
          : name === 'ExpiredToken' || name === 'InvalidToken' || name === 'TokenRefreshRequired'
            ? 'the session token is expired or invalid: renew the credentials'
            : `check the access key and that it may ${action}`;
    return make('TARGET_ACCESS_DENIED', `${ctx.operation} on ${where} was denied (${name ?? `HTTP ${status}`}): ${why}.`);
  }
  if (name && REGION_NAMES.has(name)) {
    return make('INVALID_CONFIG', `Bucket ${ctx.bucket} is not in region ${ctx.region} (${name} from ${endpoint}): set --s3-region to the bucket's region.`);
  }
  if (isS3NotFound(err)) return make('SNAPSHOT_NOT_FOUND', `${where} does not exist.`);
  const label = name && name !== 'Error' ? name : e.code ?? 'error';
  return make('TARGET_IO', `${ctx.operation} on ${where} at ${endpoint} failed: ${label}${status ? ` (HTTP ${status})` : ''}${text && text !== 'UnknownError' ? `: ${text}` : ''}.`);
}
