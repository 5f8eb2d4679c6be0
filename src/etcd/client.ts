/**
 * EtcdClient: what etcdsnap needs from a running etcd cluster — members, per-member status,
 * cluster health, the snapshot stream of one member, and a keys-only range at a revision.
 *
 * Every request goes to one known endpoint through a single-endpoint etcd3 client
 * (see endpoint.ts); calls that may be answered by any member fail over across the
 * configured endpoints in order, starting with the last one that answered.
 */
import type { Readable } from 'node:stream';
import type { Etcd3, IHashKVResponse, IRangeRequest } from 'etcd3';
import { EtcdsnapError, isEtcdsnapError } from '../core/errors.js';
import { checkEtcdTls, deadline, type EtcdTls, hexId, prefixRangeEnd, singleEndpointClient, toNumber, validateEndpoint } from './endpoint.js';
import { isUnreachable, toEtcdError } from './errors.js';
import { checkClusterHealth } from './health.js';
import { openSnapshotStream } from './snapshot-stream.js';
import type { ClusterHealth, EndpointStatus, EtcdClientOptions, HealthOptions, MemberInfo, RangeKeysOptions } from './types.js';

export type { ClusterHealth, EndpointStatus, EtcdClientOptions, HealthOptions, MemberHealth, MemberInfo, RangeKeysOptions } from './types.js';

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const DEFAULT_PAGE_SIZE = 10000;

export interface EtcdConnectOptions extends EtcdClientOptions {
  /**
   * CA and client certificate for https endpoints (etcd with `--client-cert-auth`); checked
   * before any connection (INVALID_ARGUMENT naming --cacert/--cert/--key). http endpoints
   * ignore it.
   */
  tls?: EtcdTls;
}

export class EtcdClient {
  readonly endpoints: readonly string[];
  private readonly requestTimeoutMs: number;
  private readonly tls: EtcdTls | undefined;
  private readonly clients = new Map<string, Etcd3>();
  private preferred = 0;
  private closed = false;

  private constructor(endpoints: string[], requestTimeoutMs: number, tls: EtcdTls | undefined) {
    this.endpoints = endpoints;
    this.requestTimeoutMs = requestTimeoutMs;
    this.tls = tls;
  }

  /**
   * Creates a client and waits until at least one endpoint answers Maintenance/Status, like
   * clientv3's DialTimeout. Throws INVALID_ARGUMENT for malformed endpoints and
   * ETCD_UNREACHABLE when none answers within `dialTimeoutMs` (default 5000 ms).
   */
  static async connect(options: EtcdConnectOptions): Promise<EtcdClient> {
    if (options.endpoints.length === 0) throw new EtcdsnapError('INVALID_ARGUMENT', 'No etcd endpoint given; pass at least one client URL such as http://127.0.0.1:2379.');
    const endpoints = [...new Set(options.endpoints.map(validateEndpoint))];
    if (options.tls) checkEtcdTls(options.tls);
    const client = new EtcdClient(endpoints, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, options.tls);
    const dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    try {
      client.preferred = await Promise.any(
        endpoints.map(async (endpoint, i) => {
          await client.status(endpoint, dialTimeoutMs);
          return i;
        }),
      );
      return client;
    } catch (err) {
      client.close();
      const errors = err instanceof AggregateError ? (err.errors as unknown[]) : [err];
      // A failed TLS handshake says more than "unreachable": the certificates are wrong.
      const tlsFailure = errors.find((e) => isEtcdsnapError(e) && e.details?.tls !== undefined);
      if (tlsFailure) throw tlsFailure;
      const answered = errors.find((e) => !isUnreachable(e));
      if (answered) throw toEtcdError(answered, { operation: 'status', endpoints });
      throw new EtcdsnapError(
        'ETCD_UNREACHABLE',
        `None of the etcd endpoints answered within ${dialTimeoutMs} ms (${endpoints.join(', ')}). Check that the endpoints are right and that etcd is running.`,
        { cause: errors[0], details: { endpoints, errors: errors.map((e) => (e instanceof Error ? e.message : String(e))) } },
      );
    }
  }

  /** The cluster's members as the first answering endpoint reports them. */
  async members(): Promise<MemberInfo[]> {
    const res = await this.anyEndpoint('member list', (etcd) => etcd.cluster.memberList({}, deadline(this.requestTimeoutMs)));
    return res.members.map((m) => ({
      id: hexId(m.ID),
      name: m.name,
      peerURLs: [...m.peerURLs],
      clientURLs: [...m.clientURLs],
      isLearner: Boolean(m.isLearner),
    }));
  }

  /** Maintenance/Status of the member at `endpoint` (revision from the response header). */
  async status(endpoint: string, timeoutMs = this.requestTimeoutMs): Promise<EndpointStatus> {
    const res = await this.call(endpoint, 'status', (etcd) => etcd.maintenance.status(deadline(timeoutMs)));
    // etcd3's type omits isLearner and dbSizeInUse, which 3.4 sends.
    const extra = res as unknown as { isLearner?: boolean; dbSizeInUse?: string };
    return {
      endpoint,
      memberId: hexId(res.header?.member_id),
      leaderId: hexId(res.leader),
      clusterId: hexId(res.header?.cluster_id),
      revision: toNumber(res.header?.revision),
      dbSize: toNumber(res.dbSize),
      dbSizeInUse: toNumber(extra.dbSizeInUse),
      version: res.version,
      raftTerm: toNumber(res.raftTerm),
      raftIndex: toNumber(res.raftIndex),
      isLearner: Boolean(extra.isLearner),
      errors: [...(res.errors ?? [])],
    };
  }

  /**
   * Health of every member in the member list, reached by its own client URLs. Throws
   * ETCD_UNREACHABLE when no endpoint answers at all.
   */
  async health(options: HealthOptions = {}): Promise<ClusterHealth> {
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return checkClusterHealth(
      {
        endpoints: this.endpoints,
        members: () => this.members(),
        status: (endpoint, t) => this.status(endpoint, t),
        linearizableRead: (endpoint, t) => this.linearizableRead(endpoint, t),
      },
      timeoutMs,
    );
  }

  /**
   * The raw Maintenance/Snapshot byte stream of the member at `endpoint`, trailer included,
   * over a connection of its own. See snapshot-stream.ts for backpressure and cancellation.
   */
  snapshotStream(endpoint: string, signal?: AbortSignal): Readable {
    this.assertOpen();
    const url = validateEndpoint(endpoint);
    return openSnapshotStream(url, singleEndpointClient(url, this.tls), signal);
  }

  /**
   * Keys only (no values), `pageSize` per page, all at one revision: `revision` if given,
   * else the revision of the first page. A compacted revision fails with ETCD_REQUEST_FAILED.
   */
  async *rangeKeys(options: RangeKeysOptions = {}): AsyncIterable<Buffer[]> {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new EtcdsnapError('INVALID_ARGUMENT', `pageSize must be a positive integer, got ${pageSize}.`);
    const prefix = options.prefix === undefined ? Buffer.alloc(0) : Buffer.from(options.prefix);
    const rangeEnd = prefix.length === 0 ? Buffer.from([0]) : prefixRangeEnd(prefix);
    let key = prefix.length === 0 ? Buffer.from([0]) : prefix;
    let revision = options.revision ?? 0;
    for (;;) {
      const req: IRangeRequest = { key, range_end: rangeEnd, limit: pageSize, keys_only: true, revision };
      const res = options.endpoint
        ? await this.call(options.endpoint, 'range', (etcd) => etcd.kv.range(req, deadline(this.requestTimeoutMs)))
        : await this.anyEndpoint('range', (etcd) => etcd.kv.range(req, deadline(this.requestTimeoutMs)));
      if (revision === 0) revision = toNumber(res.header?.revision);
      const keys = res.kvs.map((kv) => kv.key);
      if (keys.length > 0) yield keys;
      if (!res.more || keys.length === 0) return;
      // Next page starts right after the last key: append a zero byte.
      key = Buffer.concat([keys[keys.length - 1]!, Buffer.from([0])]);
    }
  }

  /** Number of keys in [key, rangeEnd) at `revision` (count_only: etcd reads its index, no values). */
  async countRange(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<number> {
    const res = await this.call(o.endpoint, 'range', (etcd) => etcd.kv.range({ key: o.key, range_end: o.rangeEnd, count_only: true, revision: o.revision }, deadline(this.requestTimeoutMs)));
    return toNumber(res.count);
  }

  /**
   * etcd's HashKV of the member at `endpoint`: the hash of its MVCC keys up to `revision`
   * (0: the current one). Members restored from the same snapshot agree at its revision.
   */
  async hashKv(endpoint: string, revision = 0): Promise<{ hash: number; compactRevision: number; revision: number }> {
    // etcd3's maintenance.hashKV asks grpc for `hashKV`, but the loaded service names it
    // `HashKV` (and `hashKv`): call the connection pool with the proto's own method name.
    const res = await this.call(endpoint, 'hashkv', (etcd) => {
      const pool = (etcd.maintenance as unknown as { client: { exec(service: string, method: string, req: unknown, options: unknown): Promise<IHashKVResponse> } }).client;
      return pool.exec('Maintenance', 'HashKV', { revision }, deadline(this.requestTimeoutMs));
    });
    return { hash: toNumber(res.hash), compactRevision: toNumber(res.compact_revision), revision: toNumber(res.header?.revision) };
  }

  /** The first key in [key, rangeEnd) at `revision`, or undefined. */
  async firstKey(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<Buffer | undefined> {
    const res = await this.call(o.endpoint, 'range', (etcd) => etcd.kv.range({ key: o.key, range_end: o.rangeEnd, limit: 1, keys_only: true, revision: o.revision }, deadline(this.requestTimeoutMs)));
    return res.kvs[0]?.key;
  }

  /** Closes every connection. Streams already handed out keep their own connection. */
  close(): void {
    this.closed = true;
    for (const etcd of this.clients.values()) etcd.close();
    this.clients.clear();
  }

  private async linearizableRead(endpoint: string, timeoutMs: number): Promise<void> {
    try {
      await this.call(endpoint, 'linearizable read', (etcd) => etcd.kv.range({ key: Buffer.from('health') }, deadline(timeoutMs)));
    } catch (err) {
      // Like etcdctl: a member that refuses for lack of permission did answer through raft.
      if (err instanceof EtcdsnapError && /permission denied/.test(err.message)) return;
      throw err;
    }
  }

  private clientFor(endpoint: string): Etcd3 {
    this.assertOpen();
    let etcd = this.clients.get(endpoint);
    if (!etcd) {
      etcd = singleEndpointClient(validateEndpoint(endpoint), this.tls);
      this.clients.set(endpoint, etcd);
    }
    return etcd;
  }

  private async call<T>(endpoint: string, operation: string, fn: (etcd: Etcd3) => Promise<T>): Promise<T> {
    try {
      return await fn(this.clientFor(endpoint));
    } catch (err) {
      // Whether a client certificate was offered sharpens the advice of a TLS failure.
      throw toEtcdError(err, { operation, endpoints: endpoint, ...(endpoint.startsWith('https:') ? { clientCertificate: Boolean(this.tls?.cert) } : {}) });
    }
  }

  /** Runs `fn` on the preferred endpoint, failing over to the others while they are unreachable. */
  private async anyEndpoint<T>(operation: string, fn: (etcd: Etcd3) => Promise<T>): Promise<T> {
    const failures: EtcdsnapError[] = [];
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.preferred + n) % this.endpoints.length;
      const endpoint = this.endpoints[i]!;
      try {
        const result = await this.call(endpoint, operation, fn);
        this.preferred = i;
        return result;
      } catch (err) {
        if (!(err instanceof EtcdsnapError) || err.code !== 'ETCD_UNREACHABLE') throw err;
        failures.push(err);
      }
    }
    throw new EtcdsnapError(
      'ETCD_UNREACHABLE',
      `No etcd endpoint answered the ${operation} (${this.endpoints.join(', ')}). Check that the endpoints are right and that etcd is running.`,
      { cause: failures[0], details: { endpoints: [...this.endpoints], detail: failures.map((f) => f.details?.detail ?? f.message).join('; ') } },
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new EtcdsnapError('INTERNAL', 'The etcd client was used after close().');
  }
}
