import type { Readable } from 'node:stream';
import type { SnapshotMetadata } from '../core/metadata.js';

/** A snapshot as a target stores it. */
export interface StoredSnapshot {
  /** Stored name, including the codec suffix. */
  name: string;
  /** `file:///abs/path/name` or `s3://bucket/folder/name`. */
  location: string;
  /** Bytes stored. */
  size: number;
  /** Last modification of the stored object. */
  modifiedAt: Date;
  /** The sidecar, or undefined for a plain file without one (e.g. from `etcdctl snapshot save`). */
  metadata: SnapshotMetadata | undefined;
}

export interface PutOptions {
  /**
   * Called once the whole body has been consumed and before the snapshot becomes visible:
   * returns the final metadata (sizes and checksums are only known then). If it throws, the
   * put fails and nothing is left behind.
   */
  metadata: () => SnapshotMetadata | Promise<SnapshotMetadata>;
  signal?: AbortSignal;
}

export interface OpenedSnapshot {
  stream: Readable;
  size: number;
  metadata: SnapshotMetadata | undefined;
}

/**
 * Where snapshots are kept. One implementation per backend (`local`, `s3`), picked by
 * `createTarget`. Every implementation passes test/contract/target-contract.ts.
 *
 * Invariants: a snapshot is visible (listed, stat-able, openable) only once its bytes and its
 * metadata are both complete; a failed put leaves nothing behind (no partial object, no
 * `.part`, no metadata); names are validated with `validateSnapshotName` before they touch a
 * path or a key.
 */
export interface BackupTarget {
  readonly kind: 'local' | 's3';
  /** Where a snapshot of this name is or would be (`file://…`, `s3://…`). */
  location(name: string): string;
  /** Streams `body` into the target. Fails with SNAPSHOT_EXISTS if the name is taken. */
  put(name: string, body: Readable, options: PutOptions): Promise<StoredSnapshot>;
  /** Opens a snapshot for reading. The caller verifies size and sha256 against the metadata. */
  open(name: string, signal?: AbortSignal): Promise<OpenedSnapshot>;
  /** Every snapshot, newest first (by metadata createdAt, else modification time). */
  list(signal?: AbortSignal): Promise<StoredSnapshot[]>;
  /** One snapshot; throws SNAPSHOT_NOT_FOUND. */
  stat(name: string, signal?: AbortSignal): Promise<StoredSnapshot>;
  /** Deletes the snapshot and its metadata. Throws SNAPSHOT_NOT_FOUND if neither exists. */
  delete(name: string, signal?: AbortSignal): Promise<void>;
}

/** Newest first: metadata time, then modification time, then name. */
export function compareNewestFirst(a: StoredSnapshot, b: StoredSnapshot): number {
  const ta = a.metadata ? Date.parse(a.metadata.createdAt) : a.modifiedAt.getTime();
  const tb = b.metadata ? Date.parse(b.metadata.createdAt) : b.modifiedAt.getTime();
  return tb - ta || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}
