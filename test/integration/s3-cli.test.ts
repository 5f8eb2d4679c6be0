import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { dumpAll, fillKubernetesLike, startClusterFromSnapshot, startEtcdCluster, tempDir, type TestCluster } from '../harness/index.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { etcdsnap } from '../harness/cli.js';

/**
 * The S3 target through the CLI as an operator uses it, against real etcd and s3rver over
 * HTTPS with a private CA: save to local + S3 at once, restore from S3 with no local copy,
 * failures that keep the local copy, clusters sharing a bucket, corruption in S3.
 */
describe('CLI with the S3 target (s3rver over HTTPS, real etcd)', () => {
  let etcd: TestCluster;
  let s3: S3rverHandle;
  let work: string;
  let caFile: string;
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' };
  const s3Flags = (folder: string, extra: string[] = []): string[] => ['--s3', '--s3-bucket', 'snaps', '--s3-endpoint', s3.endpoint, '--s3-endpoint-ca', caFile, '--s3-force-path-style', '--s3-folder', folder, ...extra];

  before(async () => {
    etcd = await startEtcdCluster({ members: 1 });
    await fillKubernetesLike(etcd.endpoints, { totalBytes: 2 * 1024 * 1024, seed: 3 });
    s3 = await startS3rver({ https: true });
    await s3.createBucket('snaps');
    work = await tempDir('etcdsnap-s3cli-');
    caFile = join(work, 'ca.pem');
    await writeFile(caFile, s3.ca as string);
  });
  after(async () => {
    await s3?.stop();
    await etcd?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('saves to local and S3 from one stream, then restores from S3 on a node with an empty local dir', async () => {
    const local = join(work, 'node-a');
    const save = await etcdsnap(['snapshot', 'save', '--endpoints', etcd.endpoints[0] as string, '--dir', local, '--node', 'node-a', '--compress', '--cluster-id', 'c1', '-o', 'json', ...s3Flags('prod')], env);
    assert.equal(save.code, 0, save.stderr);
    const saved = JSON.parse(save.stdout) as { name: string; stored: string[]; metadata: { etcd: { revision: number } } };
    assert.deepEqual(saved.stored, [`file://${local}/${saved.name}`, `s3://snaps/prod/${saved.name}`]);

    const ls = await etcdsnap(['snapshot', 'ls', '--cluster-id', 'c1', '-o', 'json', ...s3Flags('prod')], env);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as Array<{ name: string }>).map((r) => r.name), [saved.name]);

    // Another machine: no local snapshot at all.
    const dataDir = join(work, 'restored-member');
    const raw = join(work, 'from-s3.db');
    const restore = await etcdsnap(
      ['snapshot', 'restore', saved.name, '--cluster-id', 'c1', '--data-dir', dataDir, '--member-name', 'm1', '--initial-cluster', 'm1=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1', ...s3Flags('prod')],
      env,
    );
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /verified with the metadata sha256/);
    assert.deepEqual(await readdir(dataDir), ['member']);

    // The restored data is the snapshot's: fetch the same object raw and start a cluster on it.
    const { fetchVerified } = await import('../../src/snapshot/fetch.js');
    const { createS3Target } = await import('../../src/storage/s3.js');
    const target = createS3Target({ ...s3.targetConfig('snaps'), folder: 'prod', endpointCA: s3.ca }, { clusterId: 'c1' });
    await fetchVerified(target, saved.name, raw);
    target.close();
    const restored = await startClusterFromSnapshot(raw, { members: 1 });
    try {
      const got = await dumpAll(restored.endpoints[0] as string);
      const want = await dumpAll(etcd.endpoints[0] as string, { revision: saved.metadata.etcd.revision });
      assert.deepEqual(got.kv, want.kv);
    } finally {
      await restored.stop();
    }
  });

  const failures: Array<[string, () => string[], RegExp]> = [
    ['a wrong access key id', () => s3Flags('denied', ['--s3-access-key', 'WRONG']), /TARGET_ACCESS_DENIED/],
    ['a missing bucket', () => ['--s3', '--s3-bucket', 'no-such-bucket', '--s3-endpoint', s3.endpoint, '--s3-endpoint-ca', caFile, '--s3-force-path-style'], /TARGET_BUCKET_NOT_FOUND/],
    ['an endpoint that is down', () => ['--s3', '--s3-bucket', 'snaps', '--s3-endpoint', 'https://127.0.0.1:9', '--s3-force-path-style'], /TARGET_UNREACHABLE/],
    ['an untrusted certificate (no CA given)', () => ['--s3', '--s3-bucket', 'snaps', '--s3-endpoint', s3.endpoint, '--s3-force-path-style', '--s3-folder', 'tls'], /TARGET_TLS_UNTRUSTED/],
  ];
  for (const [label, flags, code] of failures) {
    it(`with ${label}, the local copy is kept, the exit code says partial, and no object is left in S3`, async () => {
      const before = await s3.leftovers('snaps');
      const local = join(work, `partial-${label.replace(/\W+/g, '-')}`);
      const r = await etcdsnap(['snapshot', 'save', '--endpoints', etcd.endpoints[0] as string, '--dir', local, '--node', 'n1', ...flags()], env);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stdout, code);
      assert.match(r.stdout, /saved file:\/\//);
      const files = (await readdir(local)).filter((f) => f !== '.metadata');
      assert.equal(files.length, 1);
      assert.deepEqual(await s3.leftovers('snaps'), before);
    });
  }

  it('a save to S3 alone that S3 refuses fails with the S3 error, not a generic one', async () => {
    const r = await etcdsnap(['snapshot', 'save', '--endpoints', etcd.endpoints[0] as string, '--node', 'n1', ...s3Flags('denied', ['--s3-access-key', 'WRONG'])], env);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^error: TARGET_ACCESS_DENIED: /);
  });

  it('two clusters sharing a bucket and folder each list, prune and restore only their own', async () => {
    const save = async (cluster: string, node: string): Promise<string> => {
      const r = await etcdsnap(['snapshot', 'save', '--endpoints', etcd.endpoints[0] as string, '--node', node, '--name', 'etcd-snapshot', '--cluster-id', cluster, '--no-summary', '-o', 'json', ...s3Flags('shared')], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { name: string }).name;
    };
    const a1 = await save('cluster-a', 'a1');
    const a2 = await save('cluster-a', 'a2');
    const b1 = await save('cluster-b', 'b1');
    const list = async (cluster: string): Promise<string[]> => {
      const r = await etcdsnap(['snapshot', 'ls', '--cluster-id', cluster, '-o', 'json', ...s3Flags('shared')], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as Array<{ name: string }>).map((x) => x.name).sort();
    };
    assert.deepEqual(await list('cluster-a'), [a1, a2].sort());
    assert.deepEqual(await list('cluster-b'), [b1]);

    const prune = await etcdsnap(['snapshot', 'prune', '--name', 'etcd-snapshot', '--retention', '1', '--scope', 'cluster', '--cluster-id', 'cluster-b', '-o', 'json', ...s3Flags('shared')], env);
    assert.equal(prune.code, 0, prune.stderr);
    assert.deepEqual((JSON.parse(prune.stdout) as { deleted: string[] }).deleted, []);
    assert.deepEqual(await list('cluster-a'), [a1, a2].sort(), 'cluster b’s prune touched cluster a');

    const restore = await etcdsnap(
      ['snapshot', 'restore', a1, '--cluster-id', 'cluster-b', '--data-dir', join(work, 'wrong-cluster'), '--member-name', 'm', '--initial-cluster', 'm=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1', ...s3Flags('shared')],
      env,
    );
    assert.equal(restore.code, 1);
    assert.match(restore.stderr, /TARGET_CLUSTER_MISMATCH/);
    await assert.rejects(readdir(join(work, 'wrong-cluster')));
  });

  it('a corrupted object in S3 is refused before anything is touched', async () => {
    const r = await etcdsnap(['snapshot', 'save', '--endpoints', etcd.endpoints[0] as string, '--node', 'n9', '--compress', '-o', 'json', ...s3Flags('corrupt')], env);
    assert.equal(r.code, 0, r.stderr);
    const name = (JSON.parse(r.stdout) as { name: string }).name;
    const client = s3.client();
    const obj = await client.send(new GetObjectCommand({ Bucket: 'snaps', Key: `corrupt/${name}` }));
    const bytes = Buffer.from(await (obj.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] as number) ^ 0xff;
    await client.send(new PutObjectCommand({ Bucket: 'snaps', Key: `corrupt/${name}`, Body: bytes }));
    client.destroy();
    const dataDir = join(work, 'not-touched');
    const restore = await etcdsnap(['snapshot', 'restore', name, '--data-dir', dataDir, '--member-name', 'm', '--initial-cluster', 'm=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1', ...s3Flags('corrupt')], env);
    assert.equal(restore.code, 1, restore.stderr);
    assert.match(restore.stderr, /^error: SNAPSHOT_CHECKSUM_MISMATCH: /);
    await assert.rejects(readdir(dataDir), 'the data dir must not exist');
    assert.deepEqual((await readdir(work)).filter((f) => f.startsWith('.etcdsnap-restore') || f.endsWith('.part')), []);
  });
});
