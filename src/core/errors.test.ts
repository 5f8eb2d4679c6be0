import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, EtcdsnapError, toEtcdsnapError } from './errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \| (\d{3}) \| (yes|no) \|/gm)].map((m) => ({ code: m[1] as string, status: Number(m[2]), retryable: m[3] === 'yes' }));

test('docs/errors.md lists exactly the codes of ERROR_CODES', () => {
  assert.deepEqual(rows.map((r) => r.code).sort(), Object.keys(ERROR_CODES).sort());
});

test('docs/errors.md states each code’s HTTP status and retryability as the code does', () => {
  for (const r of rows) {
    const def = ERROR_CODES[r.code as keyof typeof ERROR_CODES];
    assert.equal(r.status, def.status, r.code);
    assert.equal(r.retryable, def.retryable, r.code);
  }
});

test('errors carry code, status and a one-line form', () => {
  const e = new EtcdsnapError('CLUSTER_UNHEALTHY', 'member m2 is down');
  assert.equal(e.status, 503);
  assert.equal(e.retryable, true);
  assert.equal(e.toLine(), 'CLUSTER_UNHEALTHY: member m2 is down');
  assert.deepEqual(e.toJSON(), { code: 'CLUSTER_UNHEALTHY', message: 'member m2 is down' });
});

test('foreign errors are wrapped, ours kept, aborts recognised', () => {
  const ours = new EtcdsnapError('SNAPSHOT_NOT_FOUND', 'x');
  assert.equal(toEtcdsnapError(ours), ours);
  assert.equal(toEtcdsnapError(new Error('boom')).code, 'INTERNAL');
  assert.equal(toEtcdsnapError(new Error('boom'), 'TARGET_IO').code, 'TARGET_IO');
  const abort = new Error('aborted');
  abort.name = 'AbortError';
  assert.equal(toEtcdsnapError(abort).code, 'OPERATION_ABORTED');
});
