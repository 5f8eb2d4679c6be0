import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashToken, Keyring, loadOrCreateKey, newId, newToken, sameDigest } from './crypto.js';

const key = Buffer.alloc(32, 7);

test('secrets round-trip, are bound to their context, and fail when tampered with', () => {
  const k = new Keyring(key);
  const box = k.encrypt('s3cr3t', 'cluster:c1:s3');
  assert.match(box, /^v1\.[A-Za-z0-9_-]+$/);
  assert.ok(!box.includes('s3cr3t'));
  assert.notEqual(k.encrypt('s3cr3t', 'cluster:c1:s3'), box, 'a fresh IV each time');
  assert.equal(k.decrypt(box, 'cluster:c1:s3'), 's3cr3t');
  assert.throws(() => k.decrypt(box, 'cluster:c2:s3'), /cannot be decrypted/);
  const raw = Buffer.from(box.slice(3), 'base64url');
  raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
  assert.throws(() => k.decrypt(`v1.${raw.toString('base64url')}`, 'cluster:c1:s3'), /cannot be decrypted/);
  assert.throws(() => new Keyring(key).decrypt('plain', 'x'), /unknown format/);
  assert.throws(() => new Keyring(Buffer.alloc(32, 8)).decrypt(box, 'cluster:c1:s3'), /server\.key/);
});

test('plan ids are a keyed digest: stable for a key, different under another', () => {
  const a = new Keyring(key).mac('plan');
  assert.equal(a, new Keyring(key).mac('plan'));
  assert.notEqual(a, new Keyring(Buffer.alloc(32, 9)).mac('plan'));
  assert.match(a, /^[A-Za-z0-9_-]{32}$/);
});

test('tokens carry their kind, are stored as sha256, compare in constant time', () => {
  const t = newToken('admin');
  assert.match(t, /^esa_[A-Za-z0-9_-]{43}$/);
  assert.match(newToken('node'), /^esn_/);
  assert.match(newToken('registration'), /^esr_/);
  assert.match(hashToken(t), /^[0-9a-f]{64}$/);
  assert.ok(sameDigest(hashToken(t), hashToken(t)));
  assert.ok(!sameDigest(hashToken(t), hashToken(`${t}x`)));
  assert.ok(!sameDigest('ab', 'abc'));
  assert.match(newId('op'), /^op_[a-z2-7]{20}$/);
});

test('the server key file is made once, mode 0600, and refused when it is not a key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'etcdsnap-key-'));
  try {
    const file = join(dir, 'server.key');
    const first = await loadOrCreateKey(file);
    assert.equal(first.created, true);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const second = await loadOrCreateKey(file);
    assert.equal(second.created, false);
    assert.deepEqual(second.key, first.key);
    assert.deepEqual(await readFile(file), first.key);
    await writeFile(file, 'short');
    await assert.rejects(loadOrCreateKey(file), /not a server key/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
