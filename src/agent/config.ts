import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { EtcdsnapError } from '../core/errors.js';
import { LOG_LEVELS } from '../core/log.js';
import { compile } from '../core/schema.js';
import { readEtcdTls } from './etcd-access.js';

/**
 * Settings of `etcdsnap agent`. Flat, one key per CLI flag (`etcdClientUrl` ↔
 * `--etcd-client-url`) so every error names the flag to fix. Defaults live in the schema or,
 * when they depend on another setting (`snapshotDir`, `etcdDataDir`…), in
 * {@link parseAgentConfig}. Durations are milliseconds.
 */
const Label = Type.String({ pattern: '^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$' });
const url = (extra: { default?: string } = {}) => Type.String({ pattern: '^https?://[^\\s/]+(?:/[^\\s]*)?$', maxLength: 2048, ...extra });

export const AgentConfigSchema = Type.Object(
  {
    /** Base URL of the etcdsnap server, e.g. `https://etcdsnap.example:8443`. Required. */
    server: url(),
    /** The cluster's registration (join) token. Required. */
    registrationToken: Type.String({ minLength: 16, maxLength: 256 }),
    /** sha256 (hex) of the server CA certificate (DER); with https the agent trusts only that CA. */
    caChecksum: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    /** This node's name (snapshot names, reports). Required. */
    nodeName: Label,
    /** Agent state (token, last plan, queued reports); created 0700. Required. */
    dataDir: Type.String({ minLength: 1 }),
    /** Local snapshot directory. Default `<dataDir>/snapshots`. */
    snapshotDir: Type.Optional(Type.String({ minLength: 1 })),
    /** `managed` (default): the agent runs etcd; `external`: it only connects to it. */
    mode: Type.Union([Type.Literal('managed'), Type.Literal('external')], { default: 'managed' }),
    /** Member name. Default: the node name. */
    etcdName: Type.Optional(Label),
    /**
     * The member's data dir. Managed: default `<dataDir>/etcd`. External: no default; restores
     * need it (they move it aside and restore into it).
     */
    etcdDataDir: Type.Optional(Type.String({ minLength: 1 })),
    /** Client URL the member listens on and advertises. Default `http://127.0.0.1:2379`. */
    etcdClientUrl: url({ default: 'http://127.0.0.1:2379' }),
    /** Peer URL. Default `http://127.0.0.1:2380`. */
    etcdPeerUrl: url({ default: 'http://127.0.0.1:2380' }),
    /** Managed: `name=peerUrl,…`. Default: this member alone. */
    etcdInitialCluster: Type.Optional(Type.String({ minLength: 3, maxLength: 8192 })),
    /** Managed. Default `new`. */
    etcdInitialClusterState: Type.Union([Type.Literal('new'), Type.Literal('existing')], { default: 'new' }),
    /** Managed. Default `etcd-cluster` (etcd's own default). */
    etcdInitialClusterToken: Type.String({ minLength: 1, maxLength: 256, default: 'etcd-cluster' }),
    /** Managed: the etcd binary. Default `etcd` on PATH. */
    etcdBinary: Type.String({ minLength: 1, default: 'etcd' }),
    /** External: client URLs of the member (the first is the one snapshots stream from). Default: `etcdClientUrl`. */
    etcdEndpoints: Type.Optional(Type.Array(url(), { minItems: 1, maxItems: 16 })),
    /** External: shell command that stops etcd (used by restores). */
    etcdStopCommand: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** External: shell command that starts etcd (used by restores). */
    etcdStartCommand: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /**
     * PEM file of the CA that signed etcd's server certificate (etcdctl's --cacert); default:
     * the system CAs. Applies to https etcd endpoints, in both modes (managed: client side only).
     */
    etcdCacert: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** PEM client certificate for etcd with --client-cert-auth (etcdctl's --cert); needs etcdKey. */
    etcdCert: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** PEM private key of etcdCert (etcdctl's --key). */
    etcdKey: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /**
     * `HOST:PORT` of the restore transfer endpoint (HTTPS, open only while this node serves a
     * restore's snapshot to the other nodes). Port 0: any free port (kept across restarts).
     * Default `0.0.0.0:9280`.
     */
    transferListen: Type.String({ pattern: '^(?:\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]/]+):\\d{1,5}$', maxLength: 300, default: '0.0.0.0:9280' }),
    /** URL the other nodes download from. Default `https://<host of --etcd-peer-url>:<bound port>`. */
    transferUrl: Type.Optional(Type.String({ pattern: '^https://[^\\s/]+/?$', maxLength: 2048 })),
    /** Shell command run before a restore stops the member (e.g. stops kube-apiserver). */
    stopHook: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** Shell command run after a restore (or its rollback) brought the member back. */
    startHook: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** Heartbeat: a report at least this often. Default 10 s. */
    reportIntervalMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
    /** Recurring snapshots start up to this long after their scheduled time (random). Default 5 s. */
    jitterMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5_000 }),
    /** `wait` of the plan long-poll. Default 30 s. */
    pollWaitSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
    /** First retry delay after a failed server call; doubles up to `retryMaxMs`. Default 500 ms. */
    retryInitialMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 500 }),
    /** Longest retry delay. Default 30 s. */
    retryMaxMs: Type.Integer({ minimum: 10, maximum: 600_000, default: 30_000 }),
    /** Deadline of a server call other than the long-poll. Default 30 s. */
    requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
    /** Default `info`. */
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
  },
  { additionalProperties: false },
);

export type AgentConfigInput = Partial<Static<typeof AgentConfigSchema>> & Pick<Static<typeof AgentConfigSchema>, 'server' | 'registrationToken' | 'nodeName' | 'dataDir'>;

/** The validated, default-filled, frozen config. */
export type AgentConfig = Readonly<
  Omit<Static<typeof AgentConfigSchema>, 'snapshotDir' | 'etcdName' | 'etcdDataDir' | 'etcdInitialCluster' | 'etcdEndpoints'> & {
    snapshotDir: string;
    etcdName: string;
    /** Managed: always set. External: only with --etcd-data-dir. */
    etcdDataDir: string | undefined;
    etcdInitialCluster: string;
    etcdEndpoints: readonly string[];
    /** `--transfer-listen` split: host (brackets removed) and port (0: any). */
    transferHost: string;
    transferPort: number;
  }
>;

const validator = compile(AgentConfigSchema, 'INVALID_CONFIG');

/** Config keys whose flag is not simply the kebab-case key. */
const FLAG_OF: Record<string, string> = {
  reportIntervalMs: '--report-interval',
  jitterMs: '--jitter',
  pollWaitSeconds: '--poll-wait',
  retryInitialMs: '--retry-initial',
  retryMaxMs: '--retry-max',
  requestTimeoutMs: '--request-timeout',
  etcdEndpoints: '--etcd-endpoint',
};

/** `etcdClientUrl` → `--etcd-client-url`. */
export function flagOf(key: string): string {
  return FLAG_OF[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function invalid(key: string, message: string): EtcdsnapError {
  return new EtcdsnapError('INVALID_CONFIG', `Invalid agent setting ${flagOf(key)}: ${message}.`, { details: { flag: flagOf(key) } });
}

/** `SHA256:AB:CD…`, `sha256:abcd…` and `abcd…` all become 64 lowercase hex digits. */
export function normalizeChecksum(value: string): string {
  return value
    .trim()
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toLowerCase();
}

const URL_HINT = 'must be an http(s) URL such as http://127.0.0.1:2379';
const NAME_HINT = 'must be 1-63 lowercase letters, digits, "." or "-", starting and ending with a letter or digit';
/** Plain words for pattern failures (ajv would quote the regular expression). */
const HINTS: Record<string, string> = {
  server: 'must be an http(s) URL such as https://etcdsnap.example:8443',
  etcdClientUrl: URL_HINT,
  etcdPeerUrl: 'must be an http(s) URL such as http://127.0.0.1:2380',
  etcdEndpoints: 'must be http(s) URLs such as https://10.0.0.1:2379, comma separated',
  nodeName: NAME_HINT,
  etcdName: NAME_HINT,
  caChecksum: 'must be the 64 hex digits of a sha256 (as printed by etcdsnap cluster join-command)',
  registrationToken: 'must be 16 to 256 characters (as printed by etcdsnap cluster join-command)',
  mode: 'must be managed or external',
  transferListen: 'must be HOST:PORT such as 0.0.0.0:9280 (port 0: any free port)',
  transferUrl: 'must be an https URL without a path, such as https://10.0.0.11:9280',
  etcdInitialClusterState: 'must be new or existing',
  logLevel: `must be one of ${LOG_LEVELS.join(', ')}`,
};

/** ajv's "Invalid agent config: /etcdClientUrl must match pattern …" → one sentence naming the flag. */
function explain(ajvMessage: string): EtcdsnapError {
  const extra = /must NOT have additional properties \((\w+)\)/.exec(ajvMessage);
  if (extra) return new EtcdsnapError('INVALID_CONFIG', `Unknown agent setting ${flagOf(extra[1] as string)}.`, { details: { flag: flagOf(extra[1] as string) } });
  const m = /: \/(\w+)(?:\/\d+)? ([^;]*?)\.?(?:;|$)/.exec(ajvMessage);
  if (!m) return new EtcdsnapError('INVALID_CONFIG', ajvMessage);
  const key = m[1] as string;
  const raw = m[2] as string;
  const bound = /^must be ([<>]=) (\d+)$/.exec(raw);
  let why = /^must (match|NOT have|be equal to constant|match a schema)/.test(raw) ? (HINTS[key] ?? raw) : raw;
  if (bound && key.endsWith('Ms')) why = `must be ${bound[1] === '>=' ? 'at least' : 'at most'} ${bound[2]} ms`;
  return invalid(key, why);
}

function checkInitialCluster(initial: string, name: string, peerUrl: string): void {
  const entries = initial.split(',').map((e) => e.trim());
  for (const e of entries) {
    if (!/^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?=https?:\/\/\S+$/.test(e)) throw invalid('etcdInitialCluster', `"${e}" is not name=http(s)://host:port`);
  }
  if (!entries.includes(`${name}=${peerUrl}`)) {
    throw invalid('etcdInitialCluster', `it must list this member as ${name}=${peerUrl} (--etcd-name=--etcd-peer-url)`);
  }
}

/**
 * Validates once: applies defaults, refuses unknown keys and bad values with INVALID_CONFIG
 * naming the flag, checks combinations (mode-specific flags), and freezes.
 */
export function parseAgentConfig(input: AgentConfigInput): AgentConfig {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined) copy[k] = Array.isArray(v) ? [...(v as unknown[])] : v;
  if (typeof copy.caChecksum === 'string') copy.caChecksum = normalizeChecksum(copy.caChecksum);
  if (typeof copy.server === 'string') copy.server = copy.server.replace(/\/+$/, '');
  let cfg: Static<typeof AgentConfigSchema>;
  try {
    cfg = validator.parse(copy, 'agent config');
  } catch (err) {
    throw explain((err as EtcdsnapError).message);
  }
  const dataDir = path.resolve(cfg.dataDir);
  const etcdName = cfg.etcdName ?? cfg.nodeName;
  const managed = cfg.mode === 'managed';
  if (managed) {
    for (const key of ['etcdEndpoints', 'etcdStopCommand', 'etcdStartCommand'] as const) {
      if (cfg[key] !== undefined) throw invalid(key, 'is for --mode external (in managed mode the agent runs etcd itself)');
    }
  } else {
    for (const key of ['etcdInitialCluster'] as const) {
      if (cfg[key] !== undefined) throw invalid(key, 'is for --mode managed (in external mode etcd is run by someone else)');
    }
  }
  const etcdInitialCluster = cfg.etcdInitialCluster ?? `${etcdName}=${cfg.etcdPeerUrl}`;
  if (managed) checkInitialCluster(etcdInitialCluster, etcdName, cfg.etcdPeerUrl);
  if (cfg.retryInitialMs > cfg.retryMaxMs) throw invalid('retryInitialMs', `is larger than ${flagOf('retryMaxMs')} (${cfg.retryMaxMs} ms)`);
  if (cfg.caChecksum !== undefined && !cfg.server.startsWith('https:')) throw invalid('caChecksum', `pins the CA of an https server, but --server is ${cfg.server}`);
  const tlsFiles = {
    ...(cfg.etcdCacert === undefined ? {} : { etcdCacert: path.resolve(cfg.etcdCacert) }),
    ...(cfg.etcdCert === undefined ? {} : { etcdCert: path.resolve(cfg.etcdCert) }),
    ...(cfg.etcdKey === undefined ? {} : { etcdKey: path.resolve(cfg.etcdKey) }),
  };
  // Read and checked here, once (missing file, lone cert or key, key not the cert's); the agent
  // reads them again when they change (EtcdAccess).
  readEtcdTls(tlsFiles);
  const listen = /^\[?(.*?)\]?:(\d+)$/.exec(cfg.transferListen) as RegExpExecArray;
  const transferPort = Number(listen[2]);
  if (transferPort > 65535) throw invalid('transferListen', `port ${transferPort} is larger than 65535`);
  const out: AgentConfig = {
    ...cfg,
    ...tlsFiles,
    dataDir,
    snapshotDir: path.resolve(cfg.snapshotDir ?? path.join(dataDir, 'snapshots')),
    etcdName,
    etcdDataDir: cfg.etcdDataDir !== undefined ? path.resolve(cfg.etcdDataDir) : managed ? path.join(dataDir, 'etcd') : undefined,
    etcdInitialCluster,
    etcdEndpoints: Object.freeze([...(cfg.etcdEndpoints ?? [cfg.etcdClientUrl])]),
    ...(cfg.transferUrl !== undefined ? { transferUrl: cfg.transferUrl.replace(/\/+$/, '') } : {}),
    transferHost: listen[1] as string,
    transferPort,
  };
  return Object.freeze(out);
}
