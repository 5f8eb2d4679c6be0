/**
 * Two clusters sharing one bucket and folder, plain objects without metadata, the listing's
 * metadata cache and pagination, against a real s3rver.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isEtcdsnapError, type ErrorCode } from '../../src/core/errors.js';
import { serializeMetadata } from '../../src/core/metadata.js';
import { createS3Client } from '../../src/storage/s3-client.js';
import { parseS3Config, type S3Config } from '../../src/core/s3-config.js';
import { S3Target } from '../../src/storage/s3.js';
import { chunked, metadataFor, readAll } from '../contract/fixtures.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function failsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isEtcdsnapError(err), String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

let s3: S3rverHandle;
const closers: (() => void)[] = [];
before(async () => {
  s3 = await startS3rver();
});
after(async () => {
  closers.forEach((c) => c());
  await s3?.stop();
});

function config(bucket: string): S3Config {
  return parseS3Config({ ...s3.targetConfig(bucket), folder: 'shared/etcd' });
}

/** A client that counts the commands it sends, by name (a middleware, so the SDK's own retries count once). */
function countingClient(cfg: S3Config): { client: S3Client; counts: Map<string, number> } {
  const client = createS3Client(cfg);
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts.set(context.commandName ?? '?', (counts.get(context.commandName ?? '?') ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'etcdsnapTestCounter' },
  );
  closers.push(() => client.destroy());
  return { client, counts };
}

function target(cfg: S3Config, clusterId?: string, client?: S3Client): S3Target {
  const t = new S3Target(cfg, { clusterId, client });
  closers.push(() => t.close());
  return t;
}

async function putFor(t: S3Target, name: string, cluster: string): Promise<Buffer> {
  const body = randomBytes(1500);
  await t.put(name, chunked(body), { metadata: () => metadataFor(name, body, { cluster: { id: cluster, name: cluster } }) });
  return body;
}

describe('two clusters sharing one bucket and folder', () => {
  let a: S3Target;
  let b: S3Target;
  let all: S3Target;
  before(async () => {
    await s3.createBucket('shared');
    const cfg = config('shared');
    [a, b, all] = [target(cfg, 'cluster-a'), target(cfg, 'cluster-b'), target(cfg)];
    await putFor(a, 'etcd-snapshot-a1-1700000001', 'cluster-a');
    await putFor(a, 'etcd-snapshot-a1-1700000002', 'cluster-a');
    await putFor(b, 'etcd-snapshot-b1-1700000003', 'cluster-b');
    // A plain file copied into the folder by hand (no metadata).
    const admin = s3.client();
    await admin.send(new PutObjectCommand({ Bucket: 'shared', Key: 'shared/etcd/etcd-snapshot-manual-1700000004', Body: Buffer.alloc(10) }));
    admin.destroy();
  });

  it('each lists only its own; the unscoped target lists everything', async () => {
    assert.deepEqual(
      (await a.list()).map((s) => s.name),
      ['etcd-snapshot-a1-1700000002', 'etcd-snapshot-a1-1700000001'],
    );
    assert.deepEqual(
      (await b.list()).map((s) => s.name),
      ['etcd-snapshot-b1-1700000003'],
    );
    const everything = await all.list();
    assert.deepEqual(everything.map((s) => s.name).sort(), ['etcd-snapshot-a1-1700000001', 'etcd-snapshot-a1-1700000002', 'etcd-snapshot-b1-1700000003', 'etcd-snapshot-manual-1700000004']);
    assert.equal(everything.find((s) => s.name === 'etcd-snapshot-manual-1700000004')?.metadata, undefined);
  });

  it("refuses stat, open and delete of the other cluster's snapshot and keeps it", async () => {
    await failsWith(a.stat('etcd-snapshot-b1-1700000003'), 'TARGET_CLUSTER_MISMATCH');
    await failsWith(a.open('etcd-snapshot-b1-1700000003'), 'TARGET_CLUSTER_MISMATCH');
    await failsWith(a.delete('etcd-snapshot-b1-1700000003'), 'TARGET_CLUSTER_MISMATCH');
    await failsWith(b.delete('etcd-snapshot-a1-1700000001'), 'TARGET_CLUSTER_MISMATCH');
    assert.equal((await b.stat('etcd-snapshot-b1-1700000003')).metadata?.cluster?.id, 'cluster-b');
    await readAll((await b.open('etcd-snapshot-b1-1700000003')).stream);
  });

  it('does not show plain objects without metadata to a scoped target', async () => {
    await failsWith(a.stat('etcd-snapshot-manual-1700000004'), 'SNAPSHOT_NOT_FOUND');
    await failsWith(a.delete('etcd-snapshot-manual-1700000004'), 'SNAPSHOT_NOT_FOUND');
    assert.equal((await all.stat('etcd-snapshot-manual-1700000004')).size, 10);
  });

  it("refuses to store a snapshot whose metadata names another cluster, and an existing name of another cluster", async () => {
    const before = await s3.leftovers('shared');
    await failsWith(putFor(a, 'etcd-snapshot-a1-1700000009', 'cluster-b'), 'TARGET_CLUSTER_MISMATCH');
    await failsWith(putFor(a, 'etcd-snapshot-b1-1700000003', 'cluster-a'), 'SNAPSHOT_EXISTS');
    assert.deepEqual(await s3.leftovers('shared'), before);
  });

  it('deletes its own', async () => {
    await a.delete('etcd-snapshot-a1-1700000001');
    assert.deepEqual(
      (await a.list()).map((s) => s.name),
      ['etcd-snapshot-a1-1700000002'],
    );
    assert.equal((await b.list()).length, 1);
  });
});

describe('listing', () => {
  it('reads each metadata object once, then only new or changed ones', async () => {
    await s3.createBucket('cache');
    const cfg = config('cache');
    const writer = target(cfg, 'cluster-1');
    for (let i = 0; i < 5; i++) await putFor(writer, `etcd-snapshot-n-170000001${i}`, 'cluster-1');

    const { client, counts } = countingClient(cfg);
    const reader = target(cfg, 'cluster-1', client);
    assert.equal((await reader.list()).length, 5);
    assert.equal(counts.get('GetObjectCommand'), 5, 'first listing reads every metadata object');
    assert.equal(counts.get('HeadObjectCommand'), undefined, 'no request per snapshot body');

    counts.clear();
    assert.equal((await reader.list()).length, 5);
    assert.equal(counts.get('GetObjectCommand'), undefined, 'second listing reads no metadata again');
    assert.equal(counts.get('ListObjectsV2Command'), 2, 'one listing of the folder and one of .metadata/');

    // A rewritten sidecar (new ETag) is read again; a new snapshot is read once.
    const name = 'etcd-snapshot-n-1700000010';
    const changed = { ...metadataFor(name, Buffer.alloc(1500)), kubernetesVersion: 'v1.31.0', cluster: { id: 'cluster-1', name: 'one' }, storedSize: 1500 };
    const admin = s3.client();
    await admin.send(new PutObjectCommand({ Bucket: 'cache', Key: `shared/etcd/.metadata/${name}.json`, Body: serializeMetadata(changed) }));
    admin.destroy();
    await putFor(writer, 'etcd-snapshot-n-1700000020', 'cluster-1');
    counts.clear();
    const listed = await reader.list();
    assert.equal(listed.length, 6);
    assert.equal(listed.find((s) => s.name === name)?.metadata?.kubernetesVersion, 'v1.31.0');
    assert.equal(counts.get('GetObjectCommand'), 2);

    // put() itself fills the cache: a snapshot written through the reader needs no read.
    await putFor(reader, 'etcd-snapshot-n-1700000030', 'cluster-1');
    counts.clear();
    assert.equal((await reader.list()).length, 7);
    assert.equal(counts.get('GetObjectCommand'), undefined);
  });

  it('shows a snapshot with a broken sidecar as a plain object (unscoped) or not at all (scoped), warning once', async () => {
    await s3.createBucket('broken');
    const cfg = config('broken');
    const admin = s3.client();
    closers.push(() => admin.destroy());
    await admin.send(new PutObjectCommand({ Bucket: 'broken', Key: 'shared/etcd/etcd-snapshot-x-1700000001', Body: 'data' }));
    await admin.send(new PutObjectCommand({ Bucket: 'broken', Key: 'shared/etcd/.metadata/etcd-snapshot-x-1700000001.json', Body: '{"not":"metadata"}' }));
    const warnings: string[] = [];
    const unscoped = new S3Target(cfg, { onWarning: (m) => warnings.push(m) });
    closers.push(() => unscoped.close());
    for (let i = 0; i < 2; i++) {
      const listed = await unscoped.list();
      assert.deepEqual(
        listed.map((x) => [x.name, x.metadata]),
        [['etcd-snapshot-x-1700000001', undefined]],
      );
    }
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /Invalid metadata s3:\/\/broken\/shared\/etcd\/\.metadata\/etcd-snapshot-x-1700000001\.json/);
    await failsWith(unscoped.stat('etcd-snapshot-x-1700000001'), 'METADATA_INVALID');
    assert.deepEqual(await target(cfg, 'cluster-1').list(), []);
    await unscoped.delete('etcd-snapshot-x-1700000001');
    assert.deepEqual(await s3.leftovers('broken'), []);
  });

  it('follows pagination past 1000 objects', async () => {
    await s3.createBucket('many');
    const cfg = config('many');
    const admin = s3.client();
    closers.push(() => admin.destroy());
    const names = Array.from({ length: 1100 }, (_, i) => `etcd-snapshot-p-${1_700_000_000 + i}`);
    const queue = [...names];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
          await admin.send(new PutObjectCommand({ Bucket: 'many', Key: `shared/etcd/${n}`, Body: 'x' }));
        }
      }),
    );
    const listed = await target(cfg).list();
    assert.deepEqual(listed.map((s) => s.name).sort(), names.sort());
    for (let i = 1; i < listed.length; i++) {
      assert.ok((listed[i - 1]?.modifiedAt.getTime() ?? 0) >= (listed[i]?.modifiedAt.getTime() ?? 0), 'newest first');
    }
  });
});
