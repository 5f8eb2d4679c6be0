/**
 * etcd3 clients bound to exactly one endpoint, and the small conversions every caller needs.
 *
 * We never use etcd3's own host pool: health checks and snapshots must know which member
 * answered, and a down member must fail fast instead of being retried or hidden behind a
 * circuit breaker. Failover across endpoints is done by EtcdClient itself.
 */
import { Etcd3, type IOptions } from 'etcd3';
import { EtcdsnapError } from '../core/errors.js';

/** TLS material for https endpoints (PEM). */
export interface EtcdTls {
  ca: Buffer;
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

/** A new etcd3 client that talks to `endpoint` only, with no retries of its own. */
export function singleEndpointClient(endpoint: string, tls?: EtcdTls): Etcd3 {
  return new Etcd3({
    hosts: [endpoint],
    grpcOptions: { ...CHANNEL_OPTIONS },
    faultHandling: { host: () => passThrough, global: passThrough },
    ...(tls ? { credentials: { rootCertificate: tls.ca, ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) } } : {}),
  });
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
