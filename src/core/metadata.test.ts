import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isEtcdsnapError } from './errors.js';
import { allowedRestoreModes, parseMetadata, serializeMetadata } from './metadata.js';

const golden = readFileSync(new URL('../../../test/golden/metadata-v1.json', import.meta.url), 'utf8');

test('the golden v1 metadata parses and serialises back byte for byte', () => {
  const m = parseMetadata(golden);
  assert.equal(m.etcd.revision, 1842);
  assert.equal(serializeMetadata(m), golden);
});

test('metadata with unknown fields, another version or a bad checksum is refused', () => {
  const base = JSON.parse(golden) as Record<string, unknown>;
  const cases: Array<[string, unknown]> = [
    ['unknown field', { ...base, extra: 1 }],
    ['format version 2', { ...base, formatVersion: 2 }],
    ['short sha256', { ...base, sha256: 'abc' }],
    ['negative size', { ...base, rawSize: -1 }],
    ['bad kind', { ...base, kind: 'weekly' }],
    ['bad date', { ...base, createdAt: 'yesterday' }],
  ];
  for (const [label, value] of cases) {
    assert.throws(() => parseMetadata(value), (e: unknown) => isEtcdsnapError(e, 'METADATA_INVALID'), label);
  }
  assert.throws(() => parseMetadata('{not json'), (e: unknown) => isEtcdsnapError(e, 'METADATA_INVALID'));
});

test('restore modes follow from what the snapshot holds', () => {
  assert.deepEqual(allowedRestoreModes({ kubernetesVersion: null, clusterConfig: null }), ['etcd']);
  assert.deepEqual(allowedRestoreModes({ kubernetesVersion: null, clusterConfig: 'x: 1' }), ['etcd']);
  assert.deepEqual(allowedRestoreModes({ kubernetesVersion: 'v1.30.4', clusterConfig: null }), ['etcd', 'kubernetes-version']);
  assert.deepEqual(allowedRestoreModes({ kubernetesVersion: 'v1.30.4', clusterConfig: '' }), ['etcd', 'kubernetes-version', 'all']);
  assert.deepEqual(allowedRestoreModes(undefined), ['etcd']);
});
