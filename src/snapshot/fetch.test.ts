import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { isEtcdsnapError } from '../core/errors.js';
import { createCompressor } from './codecs.js';
import { decompressVerified } from './fetch.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** decompressVerified: a peer's stored (compressed) copy back to the raw etcd snapshot. */
describe('decompressVerified', () => {
  let dir: string;
  // An etcd snapshot's shape: DB bytes, then their sha256 (the trailer).
  const db = randomBytes(200 * 1024);
  const raw = Buffer.concat([db, createHash('sha256').update(db).digest()]);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'etcdsnap-decompress-'));
    await writeFile(join(dir, 'stored.zst'), await buffer(Readable.from([raw]).pipe(createCompressor('zstd'))));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes the raw snapshot when its size and sha256 are the expected ones', async () => {
    const dest = join(dir, 'ok.db');
    const r = await decompressVerified(join(dir, 'stored.zst'), 'zstd', dest, { rawSha256: sha(raw), rawSize: raw.length });
    assert.equal(r.rawSize, raw.length);
    assert.ok((await readFile(dest)).equals(raw));
  });

  it('refuses other raw bytes than expected (SNAPSHOT_CHECKSUM_MISMATCH) and leaves nothing', async () => {
    const dest = join(dir, 'bad.db');
    await assert.rejects(decompressVerified(join(dir, 'stored.zst'), 'zstd', dest, { rawSha256: sha(Buffer.from('other')), rawSize: raw.length }), (e: unknown) => isEtcdsnapError(e, 'SNAPSHOT_CHECKSUM_MISMATCH'));
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('bad.db')), []);
  });

  it('refuses bytes that are not of the codec, and leaves nothing', async () => {
    await writeFile(join(dir, 'garbage.zst'), randomBytes(4096));
    const dest = join(dir, 'garbage.db');
    await assert.rejects(decompressVerified(join(dir, 'garbage.zst'), 'zstd', dest, { rawSha256: sha(raw), rawSize: raw.length }), (e: unknown) => isEtcdsnapError(e, 'SNAPSHOT_CHECKSUM_MISMATCH'));
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('garbage.db')), []);
  });
});
