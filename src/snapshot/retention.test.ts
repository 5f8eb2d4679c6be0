import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metadataFor } from '../../test/contract/fixtures.js';
import type { StoredSnapshot } from '../storage/target.js';
import { selectForPruning } from './retention.js';

/** `<base>-<node>-<unix>` where the node is the word before the time. */
function snap(name: string, withMetadata = true): StoredSnapshot {
  const parts = name.split('-');
  const unix = Number(parts.pop());
  const node = parts.pop() as string;
  const base = parts.join('-');
  const metadata = withMetadata ? metadataFor(name, Buffer.from(name), { base, node, createdAt: new Date(unix * 1000).toISOString() }) : undefined;
  return { name, location: `file:///s/${name}`, size: 1, modifiedAt: new Date(unix * 1000), metadata };
}

const names = (list: StoredSnapshot[]): string[] => list.map((s) => s.name).sort();

test('keeps the newest N per node and base, never another base', () => {
  const all = [
    ...[1, 2, 3, 4, 5, 6, 7].map((t) => snap(`etcd-snapshot-n1-${1700000000 + t}`)),
    ...[1, 2, 3].map((t) => snap(`etcd-snapshot-n2-${1700000000 + t}`)),
    ...[1, 2, 3, 4, 5, 6, 7].map((t) => snap(`on-demand-n1-${1700000000 + t}`)),
  ];
  const doomed = selectForPruning(all, { base: 'etcd-snapshot', keep: 5 });
  assert.deepEqual(names(doomed), ['etcd-snapshot-n1-1700000001', 'etcd-snapshot-n1-1700000002']);
  assert.deepEqual(selectForPruning(all, { base: 'etcd-snapshot', keep: 2, node: 'n2' }).map((s) => s.name), ['etcd-snapshot-n2-1700000001']);
});

test('cluster scope counts across nodes', () => {
  const all = [snap('etcd-snapshot-n1-1700000001'), snap('etcd-snapshot-n2-1700000002'), snap('etcd-snapshot-n3-1700000003')];
  assert.deepEqual(names(selectForPruning(all, { base: 'etcd-snapshot', keep: 1, scope: 'cluster' })), ['etcd-snapshot-n1-1700000001', 'etcd-snapshot-n2-1700000002']);
});

test('a user base with dashes is matched exactly; files without metadata are never pruned', () => {
  const all = [snap('pre-upgrade-n1-1700000001'), snap('pre-upgrade-n1-1700000002'), snap('pre-n1-1700000003'), snap('pre-n1-1700000001', false)];
  assert.deepEqual(names(selectForPruning(all, { base: 'pre-upgrade', keep: 1 })), ['pre-upgrade-n1-1700000001']);
  assert.deepEqual(selectForPruning(all, { base: 'pre', keep: 1 }), []);
});

test('a retention below 1 is refused', () => {
  assert.throws(() => selectForPruning([], { base: 'etcd-snapshot', keep: 0 }), /at least 1/);
});
