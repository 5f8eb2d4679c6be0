import { X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { EtcdsnapError } from './errors.js';
import { compile } from './schema.js';

const MiB = 1024 * 1024;
/** S3's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * MiB;

/**
 * Settings of the S3 target; the same names in the config file, the API and (as flags, see
 * src/cli/s3-options.ts) the CLI. Defaults live here. Validate with {@link parseS3Config}.
 */
export const S3ConfigSchema = Type.Object(
  {
    /** Bucket name (required). */
    bucket: Type.String({ minLength: 3, maxLength: 255, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$' }),
    /** Region. Default `us-east-1`. */
    region: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9-]+$', default: 'us-east-1' }),
    /** `http(s)://host[:port]` of an S3-compatible store. Default: AWS S3 of `region`. */
    endpoint: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    /** Static credentials. Without them the AWS default chain is used (env, files, web identity, container, EC2 role). */
    accessKeyId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    secretAccessKey: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    sessionToken: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 })),
    /** Key prefix of the snapshots (`<folder>/<name>`); no leading `/`, no `..`. Default `''` (bucket root). */
    folder: Type.String({ maxLength: 512, pattern: '^$|^(?!.*\\.\\.)(?!/)[A-Za-z0-9._/-]+$', default: '' }),
    /** PEM of the CA(s) that signed the endpoint's certificate, trusted besides the system roots. */
    endpointCA: Type.Optional(Type.String({ minLength: 1, maxLength: 1048576 })),
    /** Accept any server certificate. Default false; never implied by other settings. */
    skipTlsVerify: Type.Boolean({ default: false }),
    /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. Default false. */
    forcePathStyle: Type.Boolean({ default: false }),
    /** A request fails with TARGET_TIMEOUT after this long without progress. Default 60 000 ms. */
    timeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }),
    /** Attempts per request for retryable errors (SDK standard retry mode). Default 3. */
    maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
    /** Multipart part size. Default 16 MiB, at least 5 MiB. */
    partSizeBytes: Type.Integer({ minimum: MIN_PART_SIZE, maximum: 5 * 1024 * MiB, default: 16 * MiB }),
    /** Parts uploaded at once (memory: about (queueSize + 1) × partSizeBytes). Default 4. */
    queueSize: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
    /**
     * `when_required` sends plain bodies (many S3-compatible stores mangle `aws-chunked`
     * bodies, see FACTS.md); `when_supported` lets the SDK add CRC checksums. Default `when_required`.
     */
    requestChecksums: Type.Union([Type.Literal('when_required'), Type.Literal('when_supported')], { default: 'when_required' }),
    /** Snapshots kept on S3 by the recurring schedule (per scope). Default 5. */
    retention: Type.Integer({ minimum: 1, maximum: 100_000, default: 5 }),
    /** Retention counts per node (default) or across the whole cluster. */
    retentionScope: Type.Union([Type.Literal('node'), Type.Literal('cluster')], { default: 'node' }),
  },
  { additionalProperties: false },
);

export type S3Config = Readonly<Static<typeof S3ConfigSchema>>;
/** What a caller may give: every defaulted field is optional. */
export type S3ConfigInput = Partial<Static<typeof S3ConfigSchema>> & { bucket: string };

const validator = compile(S3ConfigSchema, 'INVALID_CONFIG');
/** Configs that went through parseS3Config (so a target does not validate twice). */
const parsed = new WeakSet<object>();

export function isParsedS3Config(value: unknown): value is S3Config {
  return typeof value === 'object' && value !== null && parsed.has(value);
}

const SECRET_FIELDS = ['secretAccessKey', 'sessionToken'] as const;

function invalid(field: string, message: string): EtcdsnapError {
  return new EtcdsnapError('INVALID_CONFIG', `Invalid S3 config: /${field} ${message}.`, { details: { field } });
}

function checkEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalid('endpoint', 'is not a URL: use http(s)://host[:port]');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('endpoint', `uses ${url.protocol}: use http:// or https://`);
  // Credentials belong in the key settings, never in a URL that ends up in messages and logs.
  if (url.username || url.password) throw invalid('endpoint', 'must not contain a user or password');
  if (url.search || url.hash) throw invalid('endpoint', 'must not have a query or fragment');
  return endpoint.replace(/\/+$/, '');
}

function checkCA(pem: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw invalid('endpointCA', 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw invalid('endpointCA', `holds a certificate that cannot be read (${(err as Error).message})`);
    }
  }
}

/**
 * Validates S3 settings once: applies defaults, rejects unknown keys and bad values with
 * INVALID_CONFIG (never quoting a secret), normalises `folder` (no trailing `/`) and
 * `endpoint`, and returns a frozen config whose `toJSON`, `toString` and `util.inspect`
 * are redacted.
 */
export function parseS3Config(input: unknown): S3Config {
  // ajv fills defaults in place: work on a copy so the caller's object is left alone.
  const copy: unknown = input !== null && typeof input === 'object' && !Array.isArray(input) ? { ...(input as Record<string, unknown>) } : input;
  const cfg = validator.parse(copy, 'S3 config');
  cfg.folder = cfg.folder.replace(/\/+$/, '');
  if (cfg.folder !== '' && cfg.folder.split('/').some((seg) => seg === '' || seg === '.')) throw invalid('folder', 'has an empty or "." path segment');
  if (cfg.endpoint !== undefined) cfg.endpoint = checkEndpoint(cfg.endpoint);
  if ((cfg.accessKeyId === undefined) !== (cfg.secretAccessKey === undefined)) {
    throw invalid(cfg.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey', 'must be given together with the other key (or neither, for the AWS default credential chain)');
  }
  if (cfg.sessionToken !== undefined && cfg.accessKeyId === undefined) throw invalid('sessionToken', 'needs accessKeyId and secretAccessKey');
  if (cfg.endpointCA !== undefined) checkCA(cfg.endpointCA);
  if (cfg.endpointCA !== undefined && cfg.skipTlsVerify) throw invalid('skipTlsVerify', 'cannot be combined with endpointCA: trust the CA, or skip verification, not both');
  Object.defineProperties(cfg, {
    toJSON: { value: () => redactS3Config(cfg), enumerable: false },
    toString: { value: () => `S3Config ${JSON.stringify(redactS3Config(cfg))}`, enumerable: false },
    [inspect.custom]: { value: () => redactS3Config(cfg), enumerable: false },
  });
  Object.freeze(cfg);
  parsed.add(cfg);
  return cfg;
}

/** Shows only the last 4 characters, like `aws configure list`. */
function mask(value: string): string {
  return value.length <= 8 ? '****' : `****${value.slice(-4)}`;
}

/** A copy safe for logs, errors and the API: secrets replaced, the access key id masked, the CA shortened. */
export function redactS3Config(cfg: S3Config | S3ConfigInput): Record<string, unknown> {
  const out: Record<string, unknown> = { ...cfg };
  for (const f of SECRET_FIELDS) if (out[f] !== undefined) out[f] = '[redacted]';
  if (typeof cfg.accessKeyId === 'string') out.accessKeyId = mask(cfg.accessKeyId);
  if (typeof cfg.endpointCA === 'string') out.endpointCA = `[PEM, ${cfg.endpointCA.length} bytes]`;
  return out;
}

/** Secret strings of a config, for scrubbing foreign error text. */
export function secretsOf(cfg: S3Config): string[] {
  return SECRET_FIELDS.map((f) => cfg[f]).filter((v): v is string => typeof v === 'string' && v.length >= 4);
}

/** `<folder>/` or `''`. */
export function folderPrefix(cfg: S3Config): string {
  return cfg.folder ? `${cfg.folder}/` : '';
}
