import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { EtcdsnapError } from '../core/errors.js';

/** etcd appends the sha256 of the DB bytes as a final 32-byte message. */
export const TRAILER_SIZE = 32;

/** Passes bytes through unchanged, counting them and hashing them with sha256. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  private digestHex: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    done();
  }

  /** sha256 in hex; only once the stream has ended. */
  get sha256(): string {
    if (this.digestHex === undefined) throw new EtcdsnapError('INTERNAL', 'Digest read before the stream ended.');
    return this.digestHex;
  }
}

/**
 * Checks etcd's snapshot trailer while passing every byte through: hashes all but the last
 * 32 bytes (held back), and at the end compares them with the digest. The held-back bytes
 * are only released once they match, so a consumer never sees the end of a bad stream —
 * it sees an error instead. Also hashes the whole stream (trailer included) for `rawSha256`.
 */
export class TrailerCheckStream extends Transform {
  private readonly dbHash = createHash('sha256');
  private readonly fullHash = createHash('sha256');
  private tail: Buffer = Buffer.alloc(0);
  bytes = 0;
  private result: { trailerSha256: string; rawSha256: string } | undefined;

  /** @param onFirstChunk called once, when the first bytes arrive. */
  constructor(
    private readonly source: string,
    private onFirstChunk?: () => void,
    /** SNAPSHOT_STREAM_INVALID for a live stream from etcd, SNAPSHOT_CHECKSUM_MISMATCH for a stored file. */
    private readonly code: 'SNAPSHOT_STREAM_INVALID' | 'SNAPSHOT_CHECKSUM_MISMATCH' = 'SNAPSHOT_STREAM_INVALID',
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.onFirstChunk) {
      this.onFirstChunk();
      this.onFirstChunk = undefined;
    }
    this.bytes += chunk.length;
    this.fullHash.update(chunk);
    const joined = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    if (joined.length <= TRAILER_SIZE) {
      this.tail = joined;
      done();
      return;
    }
    const cut = joined.length - TRAILER_SIZE;
    const out = joined.subarray(0, cut);
    this.dbHash.update(out);
    this.tail = Buffer.from(joined.subarray(cut));
    done(null, out);
  }

  override _flush(done: TransformCallback): void {
    const size = this.bytes;
    if (size < TRAILER_SIZE || size % 512 !== TRAILER_SIZE) {
      done(
        new EtcdsnapError(
          this.code,
          `The snapshot ${this.source} has no etcd sha256 trailer (${size} bytes; a complete one is 32 bytes past a multiple of 512): it is truncated or not an etcd snapshot.`,
          { details: { bytes: size } },
        ),
      );
      return;
    }
    const expected = this.dbHash.digest();
    if (!expected.equals(this.tail)) {
      done(
        new EtcdsnapError(this.code, `The snapshot ${this.source} does not match its etcd sha256 trailer: the data was corrupted. Use another snapshot or take a new one.`, {
          details: { expected: this.tail.toString('hex'), actual: expected.toString('hex') },
        }),
      );
      return;
    }
    this.result = { trailerSha256: this.tail.toString('hex'), rawSha256: this.fullHash.digest('hex') };
    done(null, this.tail);
  }

  /** Digests, once the stream ended with a valid trailer. */
  get digests(): { trailerSha256: string; rawSha256: string } {
    if (!this.result) throw new EtcdsnapError('INTERNAL', 'Trailer read before the stream ended.');
    return this.result;
  }
}
