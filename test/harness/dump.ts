/**
 * Reading a whole etcd keyspace back, for equality checks in tests.
 */
import { Etcd3 } from 'etcd3';
import { EtcdClient } from '../../src/etcd/client.js';

/** `/registry/<resource>/…` → `<resource>`; anything outside /registry → `(other)`. */
export function resourceOfKey(key: string): string {
  if (!key.startsWith('/registry/')) return '(other)';
  const resource = key.slice('/registry/'.length).split('/')[0];
  return resource ? resource : '(other)';
}

export interface Dump {
  revision: number;
  /** key → value, both utf8 (the harness only writes utf8). */
  kv: Map<string, string>;
}

const PAGE = 500;

/** Every key and value at `revision` (default: the current one, fixed by the first page). */
export async function dumpAll(endpoint: string, options: { revision?: number } = {}): Promise<Dump> {
  const etcd = new Etcd3({ hosts: [endpoint], grpcOptions: { 'grpc.max_receive_message_length': 256 << 20 } });
  try {
    const kv = new Map<string, string>();
    let revision = options.revision ?? 0;
    let key = Buffer.from([0]);
    for (;;) {
      const res = await etcd.kv.range({ key, range_end: Buffer.from([0]), limit: PAGE, revision });
      if (revision === 0) revision = Number(res.header.revision);
      for (const item of res.kvs) kv.set(item.key.toString('utf8'), item.value.toString('utf8'));
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) break;
      key = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { revision, kv };
  } finally {
    etcd.close();
  }
}

export interface KeyCounts {
  revision: number;
  keys: number;
  byResource: Record<string, number>;
}

/** Key counts per resource (the content summary's shape), read with EtcdClient.rangeKeys. */
export async function keyCountsByResource(endpoint: string, options: { revision?: number } = {}): Promise<KeyCounts> {
  const client = await EtcdClient.connect({ endpoints: [endpoint] });
  try {
    const revision = options.revision ?? (await client.status(endpoint)).revision;
    const counts: KeyCounts = { revision, keys: 0, byResource: {} };
    for await (const page of client.rangeKeys({ revision, endpoint })) {
      for (const key of page) {
        const r = resourceOfKey(key.toString('utf8'));
        counts.byResource[r] = (counts.byResource[r] ?? 0) + 1;
        counts.keys += 1;
      }
    }
    return counts;
  } finally {
    client.close();
  }
}
