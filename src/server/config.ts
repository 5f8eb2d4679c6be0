import { Type, type Static } from '@sinclair/typebox';
import { EtcdsnapError } from '../core/errors.js';
import { LOG_LEVELS } from '../core/log.js';
import { compile } from '../core/schema.js';

/**
 * Settings of `etcdsnap server`. One schema, defaults in it, unknown keys refused; parsed once
 * at the edge (flags → {@link parseServerConfig}) and frozen. Durations are milliseconds.
 */
export const ServerConfigSchema = Type.Object(
  {
    /** Directory of the database, the server key and the TLS files (created 0700). Required. */
    dataDir: Type.String({ minLength: 1 }),
    /** `host:port` to listen on. Default `0.0.0.0:8443` (agents on other nodes must reach it). */
    listen: Type.String({ minLength: 3, default: '0.0.0.0:8443' }),
    /** Serve plain HTTP instead of HTTPS. Default false; only for tests and trusted networks. */
    insecureHttp: Type.Boolean({ default: false }),
    /** PEM certificate (chain) and key to serve instead of the server's own CA-signed one. */
    tlsCert: Type.Optional(Type.String({ minLength: 1 })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    /** PEM of the CA that signed `tlsCert`: served at /cacerts and pinned in the join command. */
    tlsCA: Type.Optional(Type.String({ minLength: 1 })),
    /** DNS names and IPs for the generated certificate; the first one names the server in join commands. */
    hostnames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [] }),
    /** URL agents use to reach the server (behind a load balancer). Default: from the first hostname and the port. */
    url: Type.Optional(Type.String({ pattern: '^https?://' })),
    /** Default `info`. */
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    /** How often agents report (their heartbeat). A node unseen for 3 intervals is disconnected. Default 30 s. */
    reportIntervalMs: Type.Integer({ minimum: 100, default: 30_000 }),
    /** An operation fails when one of its nodes has not been seen for this long. Default 10 min. */
    nodeTimeoutMs: Type.Integer({ minimum: 100, default: 600_000 }),
    /** Longest long-poll of the plan route (its `wait` is capped here). Default 300 s. */
    maxPlanWaitMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 300_000 }),
    /** Operation tick (and retry) period. Default 1 s. */
    tickMs: Type.Integer({ minimum: 10, default: 1000 }),
    /** S3 listing reconciliation period; 0 turns the loop off (on-demand only). Default 60 s. */
    reconcileIntervalMs: Type.Integer({ minimum: 0, default: 60_000 }),
    /** Failed snapshot records are removed after this long. Default 24 h. */
    failedRecordTtlMs: Type.Integer({ minimum: 1000, default: 86_400_000 }),
    /** Comment line on idle event streams. Default 15 s. */
    sseHeartbeatMs: Type.Integer({ minimum: 10, default: 15_000 }),
    /** Restores: days the agents keep each member's old data dir after a restore finished (0: removed at once). Default 0. */
    restoreKeepOldDataDays: Type.Integer({ minimum: 0, maximum: 365, default: 0 }),
    /** Restores: how long a member may take to become healthy after a restore or a rollback. Default 180 s. */
    restoreStartTimeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 180_000 }),
    /** Largest request body. Default 16 MiB (reports may carry 1000 snapshot metadata documents). */
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 16 * 1024 * 1024 }),
  },
  { additionalProperties: false },
);

export type ServerConfig = Readonly<Static<typeof ServerConfigSchema>>;
export type ServerConfigInput = Partial<Static<typeof ServerConfigSchema>> & { dataDir: string };

const validator = compile(ServerConfigSchema, 'INVALID_CONFIG');

/** Splits `host:port` (IPv6 as `[::1]:8443`). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new EtcdsnapError('INVALID_CONFIG', `Invalid listen address "${listen}": use host:port, e.g. 127.0.0.1:8443 or [::1]:8443.`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Validates, applies defaults, checks combinations, freezes. */
export function parseServerConfig(input: ServerConfigInput): ServerConfig {
  const copy = { ...input, hostnames: input.hostnames ? [...input.hostnames] : undefined };
  if (copy.hostnames === undefined) delete copy.hostnames;
  for (const [k, v] of Object.entries(copy)) if (v === undefined) delete (copy as Record<string, unknown>)[k];
  const cfg = validator.parse(copy, 'server config');
  parseListen(cfg.listen);
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined)) {
    throw new EtcdsnapError('INVALID_CONFIG', 'Invalid server config: --tls-cert and --tls-key go together (or neither, for the server’s own CA).');
  }
  if (cfg.insecureHttp && cfg.tlsCert !== undefined) throw new EtcdsnapError('INVALID_CONFIG', 'Invalid server config: --insecure-http cannot be combined with --tls-cert.');
  if (cfg.tlsCA !== undefined && cfg.tlsCert === undefined) throw new EtcdsnapError('INVALID_CONFIG', 'Invalid server config: --tls-ca needs --tls-cert and --tls-key.');
  if (cfg.url !== undefined) {
    const scheme = new URL(cfg.url).protocol;
    if ((scheme === 'http:') !== cfg.insecureHttp) throw new EtcdsnapError('INVALID_CONFIG', `Invalid server config: --url ${cfg.url} uses ${scheme} but the server serves ${cfg.insecureHttp ? 'HTTP' : 'HTTPS'}.`);
  }
  Object.freeze(cfg.hostnames);
  return Object.freeze(cfg);
}

/** The URL agents and the CLI use: `--url`, else scheme + first hostname (or the listen host) + port. */
export function publicUrl(cfg: ServerConfig, fallbackHost: string, port?: number): string {
  if (cfg.url) return cfg.url.replace(/\/+$/, '');
  const listen = parseListen(cfg.listen);
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  const host = cfg.hostnames[0] ?? (wildcard ? fallbackHost : listen.host);
  const shown = host.includes(':') ? `[${host}]` : host;
  return `${cfg.insecureHttp ? 'http' : 'https'}://${shown}:${port ?? listen.port}`;
}
