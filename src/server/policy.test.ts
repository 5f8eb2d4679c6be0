import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPolicyPatch, defaultPolicy, fullPolicy, policyView, type S3Secrets, type StoredPolicy } from './policy.js';

const s3 = { bucket: 'bkt', endpoint: 'http://127.0.0.1:9000', accessKeyId: 'AK1', secretAccessKey: 'SECRET-1', sessionToken: 'SESSION-1' };

function withS3(): { policy: StoredPolicy; secrets: S3Secrets | null } {
  return applyPolicyPatch({ policy: defaultPolicy(), secrets: null }, { s3 });
}

test('defaults: enabled, every 5 hours, 5 kept, zstd, no S3', () => {
  assert.deepEqual(defaultPolicy(), { enabled: true, schedule: '0 */5 * * *', retention: 5, compression: 'zstd', s3: null });
});

test('the stored policy holds no secret; they go apart', () => {
  const { policy, secrets } = withS3();
  assert.ok(!JSON.stringify(policy).includes('SECRET-1'));
  assert.ok(!JSON.stringify(policy).includes('SESSION-1'));
  assert.deepEqual(secrets, { secretAccessKey: 'SECRET-1', sessionToken: 'SESSION-1' });
  assert.equal(policy.s3?.region, 'us-east-1', 'defaults filled');
});

test('a secret left out is kept (with a key id); the session token only for the same key id; null clears', () => {
  const cur = withS3();
  const same = applyPolicyPatch(cur, { s3: { bucket: 'bkt2', accessKeyId: 'AK1' } });
  assert.deepEqual(same.secrets, { secretAccessKey: 'SECRET-1', sessionToken: 'SESSION-1' });
  const newKey = applyPolicyPatch(cur, { s3: { bucket: 'bkt2', accessKeyId: 'AK2' } });
  assert.deepEqual(newKey.secrets, { secretAccessKey: 'SECRET-1' });
  const cleared = applyPolicyPatch(cur, { s3: { bucket: 'bkt2', accessKeyId: 'AK1', sessionToken: null } });
  assert.deepEqual(cleared.secrets, { secretAccessKey: 'SECRET-1' });
  const chain = applyPolicyPatch(cur, { s3: { bucket: 'bkt2' } });
  assert.equal(chain.secrets, null, 'no key id: the default credential chain, no stored secret');
  const removed = applyPolicyPatch(cur, { s3: null });
  assert.equal(removed.policy.s3, null);
  assert.equal(removed.secrets, null);
  const untouched = applyPolicyPatch(cur, { retention: 3 });
  assert.deepEqual(untouched.secrets, cur.secrets);
  assert.deepEqual(untouched.policy.s3, cur.policy.s3);
});

test('bad schedules and S3 settings are INVALID_CONFIG', () => {
  assert.throws(() => applyPolicyPatch(withS3(), { schedule: 'every day' }), (e: Error & { code?: string }) => e.code === 'INVALID_CONFIG');
  assert.throws(() => applyPolicyPatch(withS3(), { s3: 'bucket' }), /must be an object/);
  assert.throws(() => applyPolicyPatch(withS3(), { s3: { bucket: 'b', colour: 1 } }), (e: Error & { code?: string }) => e.code === 'INVALID_CONFIG');
  assert.equal(applyPolicyPatch(withS3(), { schedule: ' @every 1h ' }).policy.schedule, '@every 1h');
});

test('the view says which secrets are set; the full policy (for agents) has them', () => {
  const { policy, secrets } = withS3();
  const view = policyView(policy, secrets);
  assert.equal(view.s3?.hasSecretAccessKey, true);
  assert.equal(view.s3?.hasSessionToken, true);
  assert.ok(!JSON.stringify(view).includes('SECRET-1'));
  const full = fullPolicy(policy, secrets);
  assert.equal(full.s3?.secretAccessKey, 'SECRET-1');
  assert.ok(JSON.stringify(full).includes('SECRET-1'), 'a plain object, not the redacting parsed config');
});
