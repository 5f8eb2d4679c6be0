/**
 * etcd3 clients bound to exactly one endpoint, and the small conversions every caller needs.
 *
 * We never use etcd3's own host pool: health checks and snapshots must know which member
 * answered, and a down member must fail fast instead of being retried or hidden behind a
 * circuit breaker. Failover across endpoints is done by EtcdClient itself.
 */
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { Etcd3, type IOptions } from 'etcd3';
import { EtcdsnapError } from '../core/errors.js';

/**
 * TLS material for https endpoints (PEM), like etcdctl's --cacert/--cert/--key. Without `ca`
 * the system CAs are trusted. `cert` and `key` go together: the client certificate that
 * etcd's `--client-cert-auth` asks for. Used for https endpoints only; http endpoints are
 * plaintext whatever is set here (as with etcdctl).
 */
export interface EtcdTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type GlobalPolicy = NonNullable<FaultHandling['global']>;

const neverAborted = new AbortController().signal;

/**
 * A policy that just runs the call. etcd3 only calls `execute` on its policies; the object is
 * cast because cockatiel's IPolicy also declares events we never need (and cockatiel is not
 * one of our dependencies).
 */
const passThrough = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => fn({ signal: neverAborted }),
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
} as unknown as HostPolicy & GlobalPolicy;

/**
 * grpc channel options for every client we create.
 * - The HTTP/2 window: grpc-js's default 64 KiB halves snapshot throughput (FACTS.md).
 * - A local subchannel pool and short reconnect backoff: a member that was down and came
 *   back is reachable again within a second, instead of sharing a global subchannel that
 *   sits in exponential backoff (up to 2 minutes by default).
 */
export const CHANNEL_OPTIONS = {
  'grpc-node.flow_control_window': 8 << 20,
  'grpc.use_local_subchannel_pool': 1,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.max_receive_message_length': 64 << 20,
} as const;

/**
 * A new etcd3 client that talks to `endpoint` only, with no retries of its own. An https
 * endpoint uses `tls` (or the system CAs and no client certificate without it); an http
 * endpoint ignores `tls` (etcd3 would otherwise speak TLS to every host of the client).
 */
export function singleEndpointClient(endpoint: string, tls?: EtcdTls): Etcd3 {
  const secure = endpoint.startsWith('https:');
  return new Etcd3({
    hosts: [endpoint],
    grpcOptions: { ...CHANNEL_OPTIONS },
    faultHandling: { host: () => passThrough, global: passThrough },
    ...(secure && tls ? { credentials: credentialsOf(tls) } : {}),
  });
}

/**
 * etcd3's `credentials` go to grpc-js's createSsl(rootCerts, privateKey, certChain), where a
 * missing root certificate means the system CAs; etcd3's type wants a Buffer regardless.
 */
function credentialsOf(tls: EtcdTls): NonNullable<IOptions['credentials']> {
  return {
    rootCertificate: tls.ca ?? (null as unknown as Buffer),
    ...(tls.key ? { privateKey: tls.key } : {}),
    ...(tls.cert ? { certChain: tls.cert } : {}),
  };
}

/** Which part of EtcdTls a problem is about, named as etcdctl's (and etcdsnap's) flags. */
export const TLS_FLAGS = { ca: '--cacert', cert: '--cert', key: '--key' } as const;

/**
 * Checks TLS material before any connection: a lone cert or key, PEM that does not parse, a
 * key that does not belong to the certificate. Throws INVALID_ARGUMENT naming the flag;
 * `flags` renames the parts (e.g. for a config file's fields).
 */
export function checkEtcdTls(tls: EtcdTls, flags: Record<keyof EtcdTls, string> = TLS_FLAGS): void {
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    const [given, missing] = tls.cert ? [flags.cert, flags.key] : [flags.key, flags.cert];
    throw new EtcdsnapError('INVALID_ARGUMENT', `${given} was given without ${missing}: a client certificate needs both the certificate (${flags.cert}) and its private key (${flags.key}).`, {
      details: { flag: missing },
    });
  }
  const attempt = (flag: string, what: string, options: SecureContextOptions): void => {
    try {
      createSecureContext(options);
    } catch (err) {
      throw new EtcdsnapError('INVALID_ARGUMENT', `${flag} is not ${what}: ${(err as Error).message}.`, { cause: err, details: { flag } });
    }
  };
  if (tls.ca) {
    if (!tls.ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
      throw new EtcdsnapError('INVALID_ARGUMENT', `${flags.ca} is not a PEM CA certificate (no "-----BEGIN CERTIFICATE-----" in it).`, { details: { flag: flags.ca } });
    }
    attempt(flags.ca, 'a usable PEM CA certificate', { ca: tls.ca });
  }
  if (tls.cert && tls.key) {
    attempt(flags.cert, 'a usable PEM certificate', { cert: tls.cert });
    attempt(flags.key, 'a usable PEM private key', { key: tls.key });
    attempt(`${flags.key} (with ${flags.cert})`, 'the private key of that certificate', { cert: tls.cert, key: tls.key });
  }
}

/** Checks an endpoint is an http(s) URL with a host and port, as etcd prints them. */
export function validateEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new EtcdsnapError('INVALID_ARGUMENT', `"${endpoint}" is not an etcd endpoint URL; use the form http://host:2379 or https://host:2379.`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || (url.pathname !== '/' && url.pathname !== '')) {
    throw new EtcdsnapError('INVALID_ARGUMENT', `"${endpoint}" is not an etcd endpoint URL; use the form http://host:2379 or https://host:2379.`);
  }
  return endpoint.replace(/\/+$/, '');
}

/** etcd's uint64 ids arrive as decimal strings (etcd3 loads protos with `longs: String`). */
export function hexId(id: string | number | bigint | null | undefined): string {
  if (id === null || id === undefined || id === '') return '0';
  return BigInt(id).toString(16);
}

export function toNumber(value: string | number | null | undefined): number {
  if (value === null || value === undefined || value === '') return 0;
  return Number(value);
}

/** Call options with a deadline `timeoutMs` from now. */
export function deadline(timeoutMs: number): { deadline: number } {
  return { deadline: Date.now() + timeoutMs };
}

/** The exclusive end of the range of keys that start with `prefix` (etcd's `GetPrefixRangeEnd`). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): every key from `prefix` on.
  return Buffer.from([0]);
}
