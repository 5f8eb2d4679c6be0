/**
 * Instance-role credentials: no keys in the config, the AWS default chain finds a fake
 * IMDSv2 on loopback (AWS_EC2_METADATA_SERVICE_ENDPOINT) serving s3rver's key id. The
 * machine's own AWS environment and files are shut out for the duration of this file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isEtcdsnapError } from '../../src/core/errors.js';
import { parseS3Config } from '../../src/core/s3-config.js';
import { S3Target } from '../../src/storage/s3.js';
import { chunked, metadataFor } from '../contract/fixtures.js';
import { startFakeImds, type FakeImds } from '../harness/imds.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const AWS_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_CONFIG_FILE',
];
const saved = new Map(AWS_ENV.map((k) => [k, process.env[k]]));

let s3: S3rverHandle;
let imds: FakeImds;
const targets: S3Target[] = [];

before(async () => {
  for (const k of AWS_ENV) delete process.env[k];
  // Nonexistent files: neither the machine's ~/.aws nor a profile can answer instead of the IMDS.
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/etcdsnap-test/credentials';
  process.env.AWS_CONFIG_FILE = '/nonexistent/etcdsnap-test/config';
  s3 = await startS3rver();
  await s3.createBucket('role-bucket');
  // Credentials valid for 2 minutes: inside the SDK's 5-minute refresh window, so every use
  // must fetch them again. A target that froze its first credentials would not.
  imds = await startFakeImds({ accessKeyId: s3.accessKeyId, secretAccessKey: 'role-secret', lifetimeMs: 120_000 });
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.endpoint;
});

after(async () => {
  targets.forEach((t) => t.close());
  for (const [k, v] of saved) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await Promise.all([s3?.stop(), imds?.stop()]);
});

function roleTarget(): S3Target {
  const { accessKeyId: _id, secretAccessKey: _secret, ...noKeys } = s3.targetConfig('role-bucket');
  const t = new S3Target(parseS3Config({ ...noKeys, folder: 'role' }));
  targets.push(t);
  return t;
}

describe('S3 target with instance-role credentials (IMDSv2)', () => {
  it('gets its credentials from the instance metadata service and uses them', async () => {
    const t = roleTarget();
    assert.equal(t.config.accessKeyId, undefined);
    const name = 'etcd-snapshot-node-a-1700000001';
    const body = randomBytes(4096);
    await t.put(name, chunked(body), { metadata: () => metadataFor(name, body) });
    const listed = await t.list();
    assert.deepEqual(
      listed.map((s) => s.name),
      [name],
    );
    const paths = imds.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(paths.includes('PUT /latest/api/token 200'), paths.join('\n'));
    assert.ok(paths.includes('GET /latest/meta-data/iam/security-credentials/ 200'), paths.join('\n'));
    assert.ok(paths.includes(`GET /latest/meta-data/iam/security-credentials/${imds.role} 200`), paths.join('\n'));
    assert.ok(!imds.requests.some((r) => r.status === 401), 'every IMDS request carried the token');
  });

  it('fetches expiring credentials again instead of freezing the first ones', async () => {
    const t = roleTarget();
    await t.list();
    const first = imds.credentialsServed();
    await t.list();
    await t.stat('etcd-snapshot-node-a-1700000001');
    // The SDK refreshes credentials inside its 5-minute window in the background (the
    // request goes on with the still-valid ones): wait for that refresh, polling.
    const deadline = Date.now() + 5000;
    while (imds.credentialsServed() <= first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(imds.credentialsServed() > first, `credentials served ${first} then ${imds.credentialsServed()}`);
  });

  it('reports missing credentials as TARGET_ACCESS_DENIED with what to set', async () => {
    await imds.stop();
    const t = roleTarget();
    await assert.rejects(t.list(), (err: unknown) => {
      assert.ok(isEtcdsnapError(err, 'TARGET_ACCESS_DENIED'), String(err));
      assert.match(err.message, /No S3 credentials for ListObjectsV2/);
      return true;
    });
  });
});
