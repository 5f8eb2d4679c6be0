import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { isEtcdsnapError } from '../core/errors.js';
import { DigestStream, TrailerCheckStream } from './digest.js';

/** A fake etcd snapshot stream: DB bytes (multiple of 512) plus the sha256 trailer. */
function etcdStream(dbSize = 512 * 300): Buffer {
  const db = randomBytes(dbSize);
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

function chunks(buf: Buffer, size: number): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return Readable.from(out);
}

async function collect(src: Readable, t: TrailerCheckStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    src,
    t,
    new Writable({
      write(c: Buffer, _e, done) {
        parts.push(c);
        done();
      },
    }),
  );
  return Buffer.concat(parts);
}

test('a valid stream passes through unchanged, in any chunking', async () => {
  const s = etcdStream();
  for (const size of [1, 31, 32, 33, 4096, 32 * 1024, s.length]) {
    const t = new TrailerCheckStream('test');
    const out = await collect(chunks(s, size), t);
    assert.ok(out.equals(s), `chunk size ${size}`);
    assert.equal(t.bytes, s.length);
    assert.equal(t.digests.trailerSha256, s.subarray(-32).toString('hex'));
    assert.equal(t.digests.rawSha256, createHash('sha256').update(s).digest('hex'));
  }
});

test('a flipped byte, a truncation or a missing trailer fails with the given code', async () => {
  const s = etcdStream();
  const flipped = Buffer.from(s);
  flipped[1000] = (flipped[1000] as number) ^ 0xff;
  const cases: Array<[string, Buffer]> = [
    ['flipped', flipped],
    ['truncated', s.subarray(0, s.length - 512)],
    ['no trailer', s.subarray(0, s.length - 32)],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [label, buf] of cases) {
    await assert.rejects(collect(chunks(buf, 4096), new TrailerCheckStream('x', undefined, 'SNAPSHOT_CHECKSUM_MISMATCH')), (e: unknown) => isEtcdsnapError(e, 'SNAPSHOT_CHECKSUM_MISMATCH'), label);
  }
});

test('the held-back trailer is never released for a bad stream', async () => {
  const s = etcdStream();
  const bad = Buffer.from(s);
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  const seen: Buffer[] = [];
  const t = new TrailerCheckStream('x');
  t.on('data', (c: Buffer) => seen.push(c));
  await assert.rejects(pipeline(chunks(bad, 1000), t));
  assert.ok(Buffer.concat(seen).length <= s.length - 32, 'the trailer (or more) is held back');
});

test('DigestStream counts and hashes', async () => {
  const buf = randomBytes(100_000);
  const d = new DigestStream();
  await pipeline(chunks(buf, 777), d, new Writable({ write: (_c, _e, done) => done() }));
  assert.equal(d.bytes, buf.length);
  assert.equal(d.sha256, createHash('sha256').update(buf).digest('hex'));
});
