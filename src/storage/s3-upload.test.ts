import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { partsOf } from './s3-upload.js';

async function cut(chunks: Buffer[], partSize: number): Promise<{ len: number; last: boolean }[]> {
  const out: { len: number; last: boolean }[] = [];
  for await (const p of partsOf(Readable.from(chunks), partSize)) out.push({ len: p.data.length, last: p.last });
  return out;
}

describe('partsOf', () => {
  it('cuts exact parts and flags the last one', async () => {
    assert.deepEqual(await cut([Buffer.alloc(7), Buffer.alloc(7), Buffer.alloc(7)], 10), [
      { len: 10, last: false },
      { len: 10, last: false },
      { len: 1, last: true },
    ]);
  });

  it('keeps a body of exactly one part in one last part', async () => {
    assert.deepEqual(await cut([Buffer.alloc(4), Buffer.alloc(6)], 10), [{ len: 10, last: true }]);
  });

  it('gives one empty last part for an empty body', async () => {
    assert.deepEqual(await cut([], 10), [{ len: 0, last: true }]);
  });

  it('splits a chunk larger than several parts and keeps the bytes in order', async () => {
    const body = Buffer.from(Array.from({ length: 35 }, (_, i) => i));
    const parts: Buffer[] = [];
    for await (const p of partsOf(Readable.from([body]), 10)) parts.push(p.data);
    assert.deepEqual(parts.map((p) => p.length), [10, 10, 10, 5]);
    assert.ok(Buffer.concat(parts).equals(body));
  });
});
