import { PassThrough, type Transform } from 'node:stream';
import { constants as zc, createGunzip, createGzip } from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';
import type { Codec } from '../core/codec.js';

/** Default compression level per codec: fast levels, since a save should cost about what etcdctl does. */
export const DEFAULT_LEVEL: Record<Codec, number> = { none: 0, zstd: 1, gzip: 1 };

/**
 * A streaming compressor. zstd runs with one worker thread, so compression overlaps with
 * receiving and hashing on the main thread.
 */
export function createCompressor(codec: Codec, level = DEFAULT_LEVEL[codec]): Transform {
  switch (codec) {
    case 'none':
      return new PassThrough();
    case 'zstd':
      return new CompressStream({ compressionLevel: level, nbWorkers: 1, checksumFlag: true });
    case 'gzip':
      return createGzip({ level, chunkSize: 256 * 1024 });
  }
}

export function createDecompressor(codec: Codec): Transform {
  switch (codec) {
    case 'none':
      return new PassThrough();
    case 'zstd':
      return new DecompressStream();
    case 'gzip':
      return createGunzip({ chunkSize: 256 * 1024, finishFlush: zc.Z_SYNC_FLUSH });
  }
}
