import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { codecOfName, type Codec } from '../core/codec.js';
import { EtcdsnapError, isEtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import type { SnapshotMetadata } from '../core/metadata.js';
import type { BackupTarget } from '../storage/target.js';
import { createDecompressor } from './codecs.js';
import { DigestStream, TrailerCheckStream } from './digest.js';

export interface FetchResult {
  /** The sidecar, if the snapshot has one. */
  metadata: SnapshotMetadata | undefined;
  /** Raw etcd snapshot bytes written to the destination. */
  rawSize: number;
  rawSha256: string;
  /** What was checked: the sidecar's sha256 and size (and etcd's trailer), or only etcd's trailer. */
  verifiedWith: 'metadata' | 'trailer';
}

function mismatch(name: string, what: string): EtcdsnapError {
  return new EtcdsnapError('SNAPSHOT_CHECKSUM_MISMATCH', `Snapshot ${name} failed verification: ${what}. It is corrupted or truncated; nothing was restored. Use another snapshot.`);
}

/** Makes a fully written `.part` durable (fsync) and puts it at `dest` in one rename. */
async function commitPart(part: string, dest: string): Promise<void> {
  const fh = await open(part, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(part, dest);
}

/**
 * Reads a snapshot from a target into `dest` as a raw etcd snapshot file, in one pass:
 * stored bytes are hashed, decompressed, checked against etcd's trailer, written to a
 * `.part`, fsynced, and renamed only when the size and sha256 match the metadata. On any
 * failure nothing is left at `dest`.
 */
export async function fetchVerified(target: BackupTarget, name: string, dest: string, signal?: AbortSignal): Promise<FetchResult> {
  const snap = await target.stat(name, signal);
  const metadata = snap.metadata;
  if (metadata && snap.size !== metadata.storedSize) {
    throw mismatch(name, `it is ${snap.size} bytes but its metadata says ${metadata.storedSize}`);
  }
  const codec = metadata?.codec ?? codecOfName(name);
  const part = `${dest}.${randomBytes(4).toString('hex')}.part`;
  const opened = await target.open(name, signal);
  const stored = new DigestStream();
  const trailer = new TrailerCheckStream(name, undefined, 'SNAPSHOT_CHECKSUM_MISMATCH');
  try {
    try {
      await pipeline(opened.stream, stored, createDecompressor(codec), trailer, createWriteStream(part, { flags: 'wx' }), signal ? { signal } : {});
    } catch (err) {
      if (isEtcdsnapError(err) && err.code !== 'SNAPSHOT_CHECKSUM_MISMATCH') throw err;
      if (isEtcdsnapError(err) || metadata) throw mismatch(name, (err as Error).message);
      if (codec !== 'none') throw new EtcdsnapError('SNAPSHOT_CORRUPT', `Snapshot ${name} could not be decompressed (${(err as Error).message}): it is corrupted.`, { cause: err });
      throw toEtcdsnapError(err, 'TARGET_IO');
    }
    if (metadata) {
      if (stored.bytes !== metadata.storedSize) throw mismatch(name, `read ${stored.bytes} bytes, its metadata says ${metadata.storedSize}`);
      if (stored.sha256 !== metadata.sha256) throw mismatch(name, `sha256 ${stored.sha256} differs from ${metadata.sha256} in its metadata`);
      if (trailer.bytes !== metadata.rawSize || trailer.digests.rawSha256 !== metadata.rawSha256) throw mismatch(name, 'the decompressed bytes differ from the metadata');
    }
    await commitPart(part, dest);
    return { metadata, rawSize: trailer.bytes, rawSha256: trailer.digests.rawSha256, verifiedWith: metadata ? 'metadata' : 'trailer' };
  } catch (err) {
    opened.stream.destroy();
    await rm(part, { force: true });
    throw err;
  }
}

/**
 * Decompresses a stored snapshot file that was already verified (its sha256 and size) into
 * `dest` as a raw etcd snapshot, checking etcd's trailer on the way and the raw bytes against
 * `expect`: `.part`, fsync, rename; on any failure nothing is left at `dest`.
 */
export async function decompressVerified(file: string, codec: Codec, dest: string, expect: { rawSha256: string; rawSize: number }, signal?: AbortSignal): Promise<{ rawSize: number; rawSha256: string }> {
  const part = `${dest}.${randomBytes(4).toString('hex')}.part`;
  const trailer = new TrailerCheckStream(file, undefined, 'SNAPSHOT_CHECKSUM_MISMATCH');
  try {
    try {
      await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), createDecompressor(codec), trailer, createWriteStream(part, { flags: 'wx' }), signal ? { signal } : {});
    } catch (err) {
      if (isEtcdsnapError(err) && err.code !== 'SNAPSHOT_CHECKSUM_MISMATCH') throw err;
      throw mismatch(file, (err as Error).message);
    }
    if (trailer.bytes !== expect.rawSize || trailer.digests.rawSha256 !== expect.rawSha256) {
      throw mismatch(file, `decompressed to ${trailer.bytes} bytes with sha256 ${trailer.digests.rawSha256}, not ${expect.rawSize} bytes with ${expect.rawSha256}`);
    }
    await commitPart(part, dest);
    return { rawSize: trailer.bytes, rawSha256: trailer.digests.rawSha256 };
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
}

/**
 * Copies a snapshot's stored bytes verbatim from a target into `dest` (no decompression), checking
 * their size and sha256 against its metadata: `.part`, fsync, rename; nothing left on failure.
 * For a node that serves the compressed bytes to others and decompresses them itself after.
 */
export async function fetchStored(target: BackupTarget, name: string, dest: string, signal?: AbortSignal): Promise<SnapshotMetadata> {
  const snap = await target.stat(name, signal);
  const metadata = snap.metadata;
  if (!metadata) throw new EtcdsnapError('METADATA_MISSING', `Snapshot ${name} has no metadata: its stored bytes cannot be verified on their own.`);
  if (snap.size !== metadata.storedSize) throw mismatch(name, `it is ${snap.size} bytes but its metadata says ${metadata.storedSize}`);
  const part = `${dest}.${randomBytes(4).toString('hex')}.part`;
  const opened = await target.open(name, signal);
  const digest = new DigestStream();
  try {
    await pipeline(opened.stream, digest, createWriteStream(part, { flags: 'wx' }), signal ? { signal } : {});
    if (digest.bytes !== metadata.storedSize) throw mismatch(name, `read ${digest.bytes} bytes, its metadata says ${metadata.storedSize}`);
    if (digest.sha256 !== metadata.sha256) throw mismatch(name, `sha256 ${digest.sha256} differs from ${metadata.sha256} in its metadata`);
    await commitPart(part, dest);
    return metadata;
  } catch (err) {
    opened.stream.destroy();
    await rm(part, { force: true });
    throw isEtcdsnapError(err) ? err : toEtcdsnapError(err, 'TARGET_IO');
  }
}
