import type { Readable } from 'node:stream';

/**
 * What the save pipeline needs from etcd. `EtcdClient` (src/etcd/client.ts) implements it;
 * unit tests of pure pipeline logic may hand in a small fake.
 */
export interface SnapshotSource {
  health(): Promise<{ healthy: boolean; reasons: string[]; memberCount: number }>;
  status(endpoint: string): Promise<{ revision: number; version: string; clusterId: string; memberId: string }>;
  snapshotStream(endpoint: string, signal?: AbortSignal): Readable | Promise<Readable>;
  rangeKeys(options: { revision?: number; endpoint?: string }): AsyncIterable<Buffer[]>;
  /** When present, the content summary is computed from counts (cheap for etcd) instead of every key. */
  countRange?(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<number>;
  firstKey?(o: { key: Buffer; rangeEnd: Buffer; revision: number; endpoint: string }): Promise<Buffer | undefined>;
}
