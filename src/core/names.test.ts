import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEtcdsnapError } from './errors.js';
import { formatName, parseName, validateSnapshotName, type SnapshotName } from './names.js';

// Golden: these strings are what is on disks and in buckets; changing them breaks users.
const GOLDEN: Array<[SnapshotName, string]> = [
  [{ base: 'etcd-snapshot', node: 'node-a', unix: 1700000000, codec: 'none' }, 'etcd-snapshot-node-a-1700000000'],
  [{ base: 'on-demand', node: 'ip-10-0-1-5', unix: 1700000123, codec: 'zstd' }, 'on-demand-ip-10-0-1-5-1700000123.zst'],
  [{ base: 'etcd-snapshot', node: 'cp1.example.com', unix: 1, codec: 'gzip' }, 'etcd-snapshot-cp1.example.com-1.gz'],
  [{ base: 'pre-upgrade', node: 'm1', unix: 1732550400, codec: 'none' }, 'pre-upgrade-m1-1732550400'],
];

test('formatName produces the golden names', () => {
  for (const [n, s] of GOLDEN) assert.equal(formatName(n), s);
});

test('parseName inverts formatName (with the node or base known when both contain "-")', () => {
  for (const [n, s] of GOLDEN) assert.deepEqual(parseName(s, { node: n.node }), n);
  assert.deepEqual(parseName('etcd-snapshot-node-a-1700000000'), GOLDEN[0]?.[0]);
  assert.deepEqual(parseName('on-demand-ip-10-0-1-5-1700000123.zst'), GOLDEN[1]?.[0]);
  assert.deepEqual(parseName('pre-upgrade-m1-1732550400', { bases: ['pre-upgrade'] }), GOLDEN[3]?.[0]);
});

test('parseName rejects names of another shape', () => {
  for (const s of ['snapshot.db', 'etcd-snapshot', 'etcd-snapshot-node-a', '-x-1', 'A-b-1', 'etcd-snapshot--1']) assert.equal(parseName(s), undefined, s);
});

test('names sort by base, node, then time', () => {
  const names = [1700000300, 1700000100, 1700000200].map((unix) => formatName({ base: 'etcd-snapshot', node: 'n1', unix, codec: 'none' }));
  assert.deepEqual([...names].sort(), ['etcd-snapshot-n1-1700000100', 'etcd-snapshot-n1-1700000200', 'etcd-snapshot-n1-1700000300']);
});

test('unsafe names are refused with INVALID_NAME', () => {
  for (const bad of ['../etc/passwd', 'a/b', '..', '.hidden', 'UPPER', 'x y', '', 'a'.repeat(241), 'x.part', 'a..b']) {
    assert.throws(() => validateSnapshotName(bad), (e: unknown) => isEtcdsnapError(e, 'INVALID_NAME'), bad);
  }
  assert.throws(() => formatName({ base: 'bad/base', node: 'n', unix: 1, codec: 'none' }), (e: unknown) => isEtcdsnapError(e, 'INVALID_NAME'));
  assert.throws(() => formatName({ base: 'b', node: '-n', unix: 1, codec: 'none' }), (e: unknown) => isEtcdsnapError(e, 'INVALID_NAME'));
  assert.equal(validateSnapshotName('on-demand-n1-1.zst'), 'on-demand-n1-1.zst');
});
