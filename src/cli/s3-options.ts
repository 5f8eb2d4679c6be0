/**
 * The `--s3*` flags of the CLI and their translation into a validated S3Config. Flags win
 * over the usual AWS_* environment variables; defaults come from the config schema.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EtcdsnapError, isEtcdsnapError } from '../core/errors.js';
import { parseS3Config, type S3Config, type S3ConfigInput } from '../core/s3-config.js';

/** What commander gives us for the flags below (all strings: parsing happens here, with flag names in errors). */
export interface S3CliOptions {
  s3?: boolean;
  s3Bucket?: string;
  s3Region?: string;
  s3Endpoint?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  s3SessionToken?: string;
  s3Folder?: string;
  s3EndpointCa?: string;
  s3SkipSslVerify?: boolean;
  s3ForcePathStyle?: boolean;
  s3Retention?: string;
  s3RetentionScope?: string;
  s3Timeout?: string;
  s3PartSize?: string;
  s3Checksums?: string;
}

/** Config field → flag, to name the flag in errors. */
const FLAG_OF: Record<string, string> = {
  bucket: '--s3-bucket',
  region: '--s3-region',
  endpoint: '--s3-endpoint',
  accessKeyId: '--s3-access-key',
  secretAccessKey: '--s3-secret-key',
  sessionToken: '--s3-session-token',
  folder: '--s3-folder',
  endpointCA: '--s3-endpoint-ca',
  skipTlsVerify: '--s3-skip-ssl-verify',
  forcePathStyle: '--s3-force-path-style',
  retention: '--s3-retention',
  retentionScope: '--s3-retention-scope',
  timeoutMs: '--s3-timeout',
  partSizeBytes: '--s3-part-size',
  requestChecksums: '--s3-checksums',
};

export function addS3Options(cmd: Command): Command {
  return cmd
    .option('--s3', 'also use (or, for reads, use) the S3 target')
    .option('--s3-bucket <name>', 'S3 bucket (required with --s3)')
    .option('--s3-region <region>', 'S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint, http(s)://host[:port] (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS)')
    .option('--s3-access-key <id>', 'access key id (default: $AWS_ACCESS_KEY_ID, else the AWS default credential chain incl. the instance role)')
    .option('--s3-secret-key <key>', 'secret access key (default: $AWS_SECRET_ACCESS_KEY; prefer the variable: flags show in ps)')
    .option('--s3-session-token <token>', 'session token of temporary credentials (default: $AWS_SESSION_TOKEN with keys from the environment)')
    .option('--s3-folder <prefix>', 'key prefix of the snapshots, e.g. clusters/prod (default: the bucket root)')
    .option('--s3-endpoint-ca <file>', "PEM file of the CA that signed the endpoint's certificate (trusted besides the system CAs)")
    .option('--s3-skip-ssl-verify', 'do not verify the endpoint certificate (default: verify)')
    .option('--s3-force-path-style', 'path-style URLs (endpoint/bucket/key), needed by most S3-compatible stores (default: virtual-hosted)')
    .option('--s3-retention <n>', 'snapshots kept on S3 by the schedule, per scope (default: 5)')
    .option('--s3-retention-scope <scope>', 'retention per "node" or across the "cluster" (default: node)')
    .option('--s3-timeout <duration>', 'fail a request after this long without progress: 90, 90s, 5m, 1500ms (default: 60s)')
    .option('--s3-part-size <size>', 'multipart part size: bytes or 16MiB, 64M… (default: 16MiB, at least 5MiB)')
    .option('--s3-checksums <mode>', 'request checksums: when_required (plain bodies, works with most S3-compatible stores) or when_supported (default: when_required)');
}

function bad(flag: string, message: string): EtcdsnapError {
  return new EtcdsnapError('INVALID_CONFIG', `Invalid ${flag}: ${message}.`, { details: { flag } });
}

/** `90` (seconds), `90s`, `5m`, `1h`, `1500ms` → milliseconds. */
export function parseDuration(value: string, flag = '--s3-timeout'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value);
  if (!m) throw bad(flag, `"${value}" is not a duration: use seconds (90) or 90s, 5m, 1h, 1500ms`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * factor);
}

/** `16777216`, `16MiB`, `16M`, `512KiB`, `1GiB` (binary units) → bytes. */
export function parseSize(value: string, flag = '--s3-part-size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|ki|kib|kb|m|mi|mib|mb|g|gi|gib|gb)?\s*$/i.exec(value);
  if (!m) throw bad(flag, `"${value}" is not a size: use bytes or 16MiB, 64M, 1GiB`);
  const unit = (m[2] ?? 'b').toLowerCase()[0] as 'b' | 'k' | 'm' | 'g';
  return Math.round(Number(m[1]) * { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit]);
}

function parseCount(value: string, flag: string): number {
  if (!/^\s*\d+\s*$/.test(value)) throw bad(flag, `"${value}" is not a whole number`);
  return Number(value);
}

function readCA(value: string): string {
  if (value.trimStart().startsWith('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw bad('--s3-endpoint-ca', `cannot read ${value} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give the path of a PEM file`);
  }
}

/** Rewrites `/field` and `'field'` of schema messages to the flag names. */
function relabel(err: EtcdsnapError): EtcdsnapError {
  const message = err.message
    .replace(/^Invalid S3 config: /, 'Invalid S3 options: ')
    .replace(/\/([A-Za-z]+)\b/g, (all, f: string) => FLAG_OF[f] ?? all)
    .replace(/'([A-Za-z]+)'/g, (all, f: string) => (FLAG_OF[f] ? `${FLAG_OF[f]}` : all))
    .replace(/\(([A-Za-z]+)\)/g, (all, f: string) => (FLAG_OF[f] ? `(${FLAG_OF[f]})` : all));
  const field = typeof err.details?.field === 'string' ? err.details.field : undefined;
  return new EtcdsnapError('INVALID_CONFIG', message, { cause: err, details: field && FLAG_OF[field] ? { flag: FLAG_OF[field] } : undefined });
}

/**
 * The S3 config the flags ask for, validated and frozen; undefined without `--s3`.
 * Environment fallbacks: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (each, when its flag is
 * absent), AWS_SESSION_TOKEN (only with an access key from the environment),
 * AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
 * A bad value throws INVALID_CONFIG naming the flag.
 */
export function s3ConfigFromOptions(opts: S3CliOptions, env: NodeJS.ProcessEnv = process.env): S3Config | undefined {
  if (!opts.s3) {
    const stray = (Object.keys(opts) as (keyof S3CliOptions)[]).filter((k) => k !== 's3' && k.startsWith('s3') && opts[k] !== undefined);
    if (stray.length > 0) {
      const flag = `--${stray[0]?.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) ?? ''}`;
      throw bad(flag, 'S3 options were given without --s3: add --s3 to use the S3 target');
    }
    return undefined;
  }
  if (!opts.s3Bucket) throw bad('--s3-bucket', 'a bucket is required with --s3');
  const envKey = opts.s3AccessKey === undefined ? env.AWS_ACCESS_KEY_ID || undefined : undefined;
  const input: Partial<S3ConfigInput> = {
    bucket: opts.s3Bucket,
    region: opts.s3Region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined),
    endpoint: opts.s3Endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined),
    accessKeyId: opts.s3AccessKey ?? envKey,
    secretAccessKey: opts.s3SecretKey ?? (env.AWS_SECRET_ACCESS_KEY || undefined),
    sessionToken: opts.s3SessionToken ?? (envKey !== undefined ? env.AWS_SESSION_TOKEN || undefined : undefined),
    folder: opts.s3Folder,
    endpointCA: opts.s3EndpointCa !== undefined ? readCA(opts.s3EndpointCa) : undefined,
    skipTlsVerify: opts.s3SkipSslVerify,
    forcePathStyle: opts.s3ForcePathStyle,
    retention: opts.s3Retention !== undefined ? parseCount(opts.s3Retention, '--s3-retention') : undefined,
    retentionScope: opts.s3RetentionScope as S3ConfigInput['retentionScope'],
    timeoutMs: opts.s3Timeout !== undefined ? parseDuration(opts.s3Timeout) : undefined,
    partSizeBytes: opts.s3PartSize !== undefined ? parseSize(opts.s3PartSize) : undefined,
    requestChecksums: opts.s3Checksums as S3ConfigInput['requestChecksums'],
  };
  // A secret key from the environment without any access key id would only confuse the check.
  if (input.accessKeyId === undefined && opts.s3SecretKey === undefined) delete input.secretAccessKey;
  for (const k of Object.keys(input) as (keyof S3ConfigInput)[]) if (input[k] === undefined) delete input[k];
  try {
    return parseS3Config(input);
  } catch (err) {
    throw isEtcdsnapError(err, 'INVALID_CONFIG') ? relabel(err) : err;
  }
}
