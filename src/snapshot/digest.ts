import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { EtcdsnapError } from '../core/errors.js';

/** etcd appends the sha256 of the DB bytes as a final 32-byte message. */
export const TRAILER_SIZE = 32;

/** Passes bytes through unchanged, counting them and hashing them with sha256. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }
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
  /** One pass: sha256 of the DB bytes so far; copied at the end for the DB digest, then fed the trailer for rawSha256. */
  private readonly hash = createHash('sha256');
  /** The newest bytes, held back until more arrive (or checked at the end): at least 32 of them once 32 were seen. */
  private held: Buffer | undefined;
  bytes = 0;
  private result: { trailerSha256: string; rawSha256: string } | undefined;

  /** @param onFirstChunk called once, when the first bytes arrive. */
  constructor(
    private readonly source: string,
    private onFirstChunk?: () => void,
    /** SNAPSHOT_STREAM_INVALID for a live stream from etcd, SNAPSHOT_CHECKSUM_MISMATCH for a stored file. */
    private readonly code: 'SNAPSHOT_STREAM_INVALID' | 'SNAPSHOT_CHECKSUM_MISMATCH' = 'SNAPSHOT_STREAM_INVALID',
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.onFirstChunk) {
      this.onFirstChunk();
      this.onFirstChunk = undefined;
    }
    this.bytes += chunk.length;
    const held = this.held;
    if (held === undefined) {
      this.held = chunk;
      done();
      return;
    }
    if (chunk.length >= TRAILER_SIZE) {
      // The held chunk cannot hold any trailer byte: release it whole, no copy.
      this.hash.update(held);
      this.held = chunk;
      done(null, held);
      return;
    }
    // A chunk smaller than the trailer (etcd's last message is exactly 32 bytes): keep the
    // last 32 bytes of held + chunk, release the rest.
    const joined = Buffer.concat([held, chunk]);
    const cut = Math.max(0, joined.length - TRAILER_SIZE);
    this.held = joined.subarray(cut);
    if (cut === 0) {
      done();
      return;
    }
    const out = joined.subarray(0, cut);
    this.hash.update(out);
    done(null, out);
  }

  override _flush(done: TransformCallback): void {
    const size = this.bytes;
    const held = this.held ?? Buffer.alloc(0);
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
    const dbTail = held.subarray(0, held.length - TRAILER_SIZE);
    const trailer = held.subarray(held.length - TRAILER_SIZE);
    this.hash.update(dbTail);
    const expected = this.hash.copy().digest();
    if (!expected.equals(trailer)) {
      done(
        new EtcdsnapError(this.code, `The snapshot ${this.source} does not match its etcd sha256 trailer: the data was corrupted. Use another snapshot or take a new one.`, {
          details: { expected: trailer.toString('hex'), actual: expected.toString('hex') },
        }),
      );
      return;
    }
    this.hash.update(trailer);
    this.result = { trailerSha256: trailer.toString('hex'), rawSha256: this.hash.digest('hex') };
    done(null, held);
  }

  /** Digests, once the stream ended with a valid trailer. */
  get digests(): { trailerSha256: string; rawSha256: string } {
    if (!this.result) throw new EtcdsnapError('INTERNAL', 'Trailer read before the stream ended.');
    return this.result;
  }
}
