/**
 * How the agent reaches etcd. Every EtcdClient the agent opens (member probes, identity,
 * snapshots, and the restore tasks to come) goes through {@link EtcdAccess.connect}, which adds
 * the TLS material of `--etcd-cacert`/`--etcd-cert`/`--etcd-key` — what Kubernetes etcd (RKE2,
 * K3s, kubeadm) needs: its CA and a client certificate for `--client-cert-auth`.
 *
 * The files are checked once at start by parseAgentConfig ({@link readEtcdTls}) and read again
 * whenever they change on disk (mtime, size, inode), so a certificate RKE2 rotated is picked up
 * without restarting the agent. New material that does not check (e.g. a certificate written
 * before its key) is not used: the last good material stays until the files are consistent.
 */
import { readFileSync, statSync } from 'node:fs';
import { EtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { EtcdClient } from '../etcd/client.js';
import { checkEtcdTls, type EtcdTls } from '../etcd/endpoint.js';

/** The agent's TLS settings: file paths, as in AgentConfig. */
export interface EtcdTlsFiles {
  etcdCacert?: string | undefined;
  etcdCert?: string | undefined;
  etcdKey?: string | undefined;
}

const PARTS = [
  { field: 'ca', key: 'etcdCacert', flag: '--etcd-cacert', env: 'ETCDCTL_CACERT' },
  { field: 'cert', key: 'etcdCert', flag: '--etcd-cert', env: 'ETCDCTL_CERT' },
  { field: 'key', key: 'etcdKey', flag: '--etcd-key', env: 'ETCDCTL_KEY' },
] as const;

/** EtcdTls parts → the agent's flags (for checkEtcdTls's messages). */
export const AGENT_ETCD_TLS_FLAGS = { ca: '--etcd-cacert', cert: '--etcd-cert', key: '--etcd-key' } as const;

export function hasEtcdTls(files: EtcdTlsFiles): boolean {
  return PARTS.some((p) => files[p.key] !== undefined);
}

function invalid(flag: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): EtcdsnapError {
  return new EtcdsnapError('INVALID_CONFIG', message, { details: { flag, ...extra }, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Reads and checks the files: INVALID_CONFIG naming the flag (and `$ETCDCTL_*` when the value
 * came from there) for a file that cannot be read or is not PEM, a certificate without its key
 * (or the reverse), and a key that is not the certificate's. Undefined when none is set.
 */
export function readEtcdTls(files: EtcdTlsFiles): EtcdTls | undefined {
  if (!hasEtcdTls(files)) return undefined;
  const tls: EtcdTls = {};
  for (const { field, key, flag, env } of PARTS) {
    const file = files[key];
    if (file === undefined) continue;
    try {
      tls[field] = readFileSync(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'ENOENT'
          ? 'no such file'
          : e.code === 'EACCES'
            ? 'permission denied (run the agent as a user that may read it, e.g. root on the etcd node)'
            : e.code === 'EISDIR'
              ? 'it is a directory'
              : e.message;
      const via = process.env[env] === file ? ` (from $${env})` : '';
      throw invalid(flag, `Invalid agent setting ${flag}: cannot read ${file}${via}: ${why}.`, { file }, err);
    }
  }
  try {
    checkEtcdTls(tls, AGENT_ETCD_TLS_FLAGS);
  } catch (err) {
    const e = toEtcdsnapError(err);
    const named = typeof e.details?.flag === 'string' ? e.details.flag : e.message;
    const flag = /--etcd-(?:cacert|cert|key)/.exec(named)?.[0] ?? '--etcd-cert';
    throw invalid(flag, `Invalid agent setting ${flag}: ${e.message}`, {}, e.cause ?? e);
  }
  return tls;
}

/** What changes when a file is rewritten or replaced. */
function stampOf(files: EtcdTlsFiles): string {
  return PARTS.map(({ key }) => {
    const file = files[key];
    if (file === undefined) return '-';
    try {
      const s = statSync(file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'error';
    }
  }).join('|');
}

const ETCDCTL_FLAG = /(?<![\w-])--(cacert|cert|key)(?![\w-])/g;

/**
 * An etcd error in the agent's words: the etcd layer's advice names etcdctl's
 * `--cacert`/`--cert`/`--key`, which are `--etcd-cacert`/`--etcd-cert`/`--etcd-key` here.
 * Code, details and cause are kept.
 */
export function agentEtcdError(err: unknown): EtcdsnapError {
  const e = toEtcdsnapError(err);
  const message = e.message.replace(ETCDCTL_FLAG, '--etcd-$1');
  if (message === e.message) return e;
  return new EtcdsnapError(e.code, message, { cause: e.cause ?? e, ...(e.details ? { details: e.details } : {}) });
}

export interface EtcdAccessConnectOptions {
  endpoints: readonly string[];
  dialTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** The agent's way to etcd: EtcdClient.connect with the configured TLS material. */
export class EtcdAccess {
  private good: { stamp: string; tls: EtcdTls | undefined } | undefined;
  private warned: string | undefined;

  constructor(
    private readonly files: EtcdTlsFiles = {},
    private readonly logger?: Logger,
  ) {}

  /** Whether any of --etcd-cacert/--etcd-cert/--etcd-key is set. */
  get configured(): boolean {
    return hasEtcdTls(this.files);
  }

  /**
   * The current material (undefined without TLS settings): read again when a file changed.
   * Throws INVALID_CONFIG only when no good material was ever read.
   */
  tls(): EtcdTls | undefined {
    if (!this.configured) return undefined;
    const stamp = stampOf(this.files);
    if (this.good?.stamp === stamp) return this.good.tls;
    try {
      const tls = readEtcdTls(this.files);
      if (this.good) this.logger?.info({ files: this.files }, 'etcd TLS files changed; using the new certificates');
      this.good = { stamp, tls };
      this.warned = undefined;
      return tls;
    } catch (err) {
      if (!this.good) throw err;
      if (this.warned !== stamp) {
        this.warned = stamp;
        this.logger?.warn({ err: toEtcdsnapError(err).message }, 'etcd TLS files changed but do not check; still using the previous certificates');
      }
      return this.good.tls;
    }
  }

  /** EtcdClient.connect with the TLS material; errors name the agent's flags. */
  async connect(o: EtcdAccessConnectOptions): Promise<EtcdClient> {
    try {
      const tls = this.tls();
      return await EtcdClient.connect({
        endpoints: [...o.endpoints],
        ...(o.dialTimeoutMs === undefined ? {} : { dialTimeoutMs: o.dialTimeoutMs }),
        ...(o.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: o.requestTimeoutMs }),
        ...(tls ? { tls } : {}),
      });
    } catch (err) {
      throw agentEtcdError(err);
    }
  }
}
