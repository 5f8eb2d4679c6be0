import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isEtcdsnapError } from '../../src/core/errors.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { startMember } from '../../src/etcd/member.js';
import { waitHealthy } from '../../src/etcd/wait.js';
import { fetchVerified } from '../../src/snapshot/fetch.js';
import { saveSnapshot } from '../../src/snapshot/save.js';
import { LocalTarget } from '../../src/storage/local.js';
import { dumpAll, fillKubernetesLike, freePort, keyCountsByResource, startClusterFromSnapshot, startEtcdCluster, tempDir, type TestCluster } from '../harness/index.js';
import { etcdsnap } from '../harness/cli.js';

describe('snapshot engine against real etcd', () => {
  let source: TestCluster;
  let work: string;
  let client: EtcdClient;
  const started: TestCluster[] = [];

  before(async () => {
    source = await startEtcdCluster({ members: 3 });
    work = await tempDir('etcdsnap-engine-');
    await fillKubernetesLike(source.endpoints, { totalBytes: 6 * 1024 * 1024, seed: 7 });
    client = await EtcdClient.connect({ endpoints: source.endpoints });
  });
  after(async () => {
    client?.close();
    for (const c of started) await c.stop();
    await source?.stop();
  });

  for (const codec of ['none', 'zstd', 'gzip'] as const) {
    it(`save (${codec}) → restore into a fresh 3-member cluster: every key and value equal, same revision`, async () => {
      const target = new LocalTarget({ dir: join(work, `save-${codec}`) });
      const result = await saveSnapshot({ source: client, endpoint: source.endpoints[1] as string, targets: [target], node: 'node-b', codec, kubernetesVersion: 'v1.30.4+rke2r1' });
      const m = result.metadata;
      assert.equal(result.failures.length, 0);
      assert.equal(m.codec, codec);
      assert.ok(m.etcd.revisionExact, 'no writes raced the save, so the revision is exact');
      const expected = await dumpAll(source.endpoints[0] as string, { revision: m.etcd.revision });
      assert.equal(m.summary?.keys, expected.kv.size);
      assert.deepEqual(m.summary?.byResource, (await keyCountsByResource(source.endpoints[0] as string, { revision: m.etcd.revision })).byResource);
      if (codec !== 'none') assert.ok(m.storedSize < m.rawSize / 2, `compressed ${m.storedSize} of ${m.rawSize}`);

      const raw = join(work, `raw-${codec}.db`);
      const fetched = await fetchVerified(target, result.name, raw);
      assert.equal(fetched.verifiedWith, 'metadata');
      assert.equal((await stat(raw)).size, m.rawSize);
      const restored = await startClusterFromSnapshot(raw, { members: 3 });
      started.push(restored);
      const got = await dumpAll(restored.endpoints[2] as string);
      assert.equal(got.revision, m.etcd.revision);
      assert.deepEqual(got.kv, expected.kv);
      await restored.stop();
    });
  }

  it('CLI save → ls → inspect → restore into a fresh 1-member cluster via etcdsnap snapshot restore', async () => {
    const dir = join(work, 'cli');
    const cfg = join(work, 'config.yaml');
    await writeFile(cfg, 'cni: canal\n');
    const save = await etcdsnap(['snapshot', 'save', '--endpoints', source.endpoints.join(','), '--dir', dir, '--node', 'cp-1', '--compress', '--kubernetes-version', 'v1.30.4', '--cluster-config', cfg, '-o', 'json']);
    assert.equal(save.code, 0, save.stderr);
    const saved = JSON.parse(save.stdout) as { name: string; metadata: { etcd: { revision: number }; clusterConfig: string } };
    assert.match(saved.name, /^on-demand-cp-1-\d+\.zst$/);
    assert.equal(saved.metadata.clusterConfig, 'cni: canal\n');

    const ls = await etcdsnap(['snapshot', 'ls', '--dir', dir, '-o', 'json']);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = JSON.parse(ls.stdout) as Array<{ name: string; restoreModes: string[] }>;
    assert.deepEqual(rows.map((r) => r.name), [saved.name]);
    assert.deepEqual(rows[0]?.restoreModes, ['etcd', 'kubernetes-version', 'all']);

    const inspect = await etcdsnap(['snapshot', 'inspect', saved.name, '--dir', dir, '-o', 'table']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /pods\s+\d+/);

    const dataDir = join(work, 'cli-restored');
    const [peer, clientPort] = [await freePort(), await freePort()];
    const peerUrl = `http://127.0.0.1:${peer}`;
    const restore = await etcdsnap(['snapshot', 'restore', saved.name, '--dir', dir, '--data-dir', dataDir, '--member-name', 'r1', '--initial-cluster', `r1=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl]);
    assert.equal(restore.code, 0, restore.stderr);
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    const member = await startMember({ name: 'r1', dataDir, clientUrl, peerUrl, initialCluster: `r1=${peerUrl}`, initialClusterState: 'existing', initialClusterToken: 'x', logFile: join(work, 'r1.log') });
    try {
      await waitHealthy([clientUrl], 30_000);
      const got = await dumpAll(clientUrl);
      const expected = await dumpAll(source.endpoints[0] as string, { revision: saved.metadata.etcd.revision });
      assert.equal(got.revision, saved.metadata.etcd.revision);
      assert.deepEqual(got.kv, expected.kv);
    } finally {
      await member.stop();
    }
  });

  it('a flipped byte or a truncated file is refused with a checksum error; the data dir is untouched', async () => {
    const dir = join(work, 'corrupt');
    const target = new LocalTarget({ dir });
    const { name } = await saveSnapshot({ source: client, endpoint: source.endpoints[0] as string, targets: [target], node: 'n1', codec: 'zstd', now: () => new Date(1_700_000_000_000) });
    const { name: plainName } = await saveSnapshot({ source: client, endpoint: source.endpoints[0] as string, targets: [target], node: 'n1', now: () => new Date(1_700_000_001_000) });
    const original = await readFile(target.dataPath(name));
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)] = (flipped[Math.floor(flipped.length / 2)] as number) ^ 0x40;
    const plain = await readFile(target.dataPath(plainName));
    const cases: Array<[string, string, Buffer]> = [
      ['flipped byte (zstd)', name, flipped],
      ['truncated (zstd)', name, original.subarray(0, original.length - 1000)],
      ['flipped byte (plain)', plainName, Buffer.from(plain).fill(7, 5000, 5001)],
      ['truncated (plain)', plainName, plain.subarray(0, 512 * 10 + 32)],
    ];
    const dataDir = join(work, 'must-stay-empty');
    await mkdir(dataDir);
    for (const [label, snapName, bytes] of cases) {
      await writeFile(target.dataPath(snapName), bytes);
      const r = await etcdsnap(['snapshot', 'restore', snapName, '--dir', dir, '--data-dir', dataDir, '--member-name', 'x', '--initial-cluster', 'x=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1']);
      assert.equal(r.code, 1, label);
      assert.match(r.stderr, /^error: SNAPSHOT_CHECKSUM_MISMATCH: /, label);
      assert.deepEqual(await readdir(dataDir), [], `${label}: data dir touched`);
      assert.deepEqual((await readdir(work)).filter((f) => f.includes('.part') || f.startsWith('.etcdsnap-restore')), [], `${label}: staging left behind`);
    }
  });

  it('a plain etcdctl snapshot file (no sidecar) can be inspected and restored, verified by etcd’s checksum', async () => {
    const dir = join(work, 'plain');
    await mkdir(dir);
    const { runEtcdctl } = await import('../../src/etcd/etcdctl.js');
    await runEtcdctl(['--endpoints', source.endpoints[0] as string, 'snapshot', 'save', join(dir, 'backup.db')]);
    const inspect = await etcdsnap(['snapshot', 'inspect', 'backup.db', '--dir', dir, '-o', 'json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const info = JSON.parse(inspect.stdout) as { metadata: null; etcdctlStatus: { revision: number }; unknown: string[] };
    assert.equal(info.metadata, null);
    assert.ok(info.etcdctlStatus.revision > 0);
    assert.ok(info.unknown.includes('kubernetesVersion'));
    const fetched = await fetchVerified(new LocalTarget({ dir }), 'backup.db', join(work, 'plain-raw.db'));
    assert.equal(fetched.verifiedWith, 'trailer');
  });

  it('with a member stopped, save is refused with CLUSTER_UNHEALTHY naming it, and nothing is written', async () => {
    const dir = join(work, 'unhealthy');
    await source.stopMember(2);
    try {
      await assert.rejects(
        saveSnapshot({ source: client, endpoint: source.endpoints[0] as string, targets: [new LocalTarget({ dir })], node: 'n1' }),
        (e: unknown) => isEtcdsnapError(e, 'CLUSTER_UNHEALTHY') && e.message.includes(source.members[2]?.name as string),
      );
      const cli = await etcdsnap(['snapshot', 'save', '--endpoints', source.endpoints[0] as string, '--dir', dir, '--node', 'n1']);
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /^error: CLUSTER_UNHEALTHY: /);
      assert.deepEqual(await readdir(dir).catch(() => []), []);
    } finally {
      await source.startMember(2);
      await source.waitHealthy();
    }
  });

  it('retention keeps exactly the newest N per node and base, and never another base’s files', async () => {
    const dir = join(work, 'retention');
    const target = new LocalTarget({ dir });
    const save = (base: string, node: string, unix: number): Promise<unknown> =>
      saveSnapshot({ source: client, endpoint: source.endpoints[0] as string, targets: [target], node, base, summary: false, now: () => new Date(unix * 1000) });
    for (let i = 1; i <= 4; i++) await save('etcd-snapshot', 'n1', 1_700_000_000 + i);
    for (let i = 1; i <= 3; i++) await save('etcd-snapshot', 'n2', 1_700_000_100 + i);
    for (let i = 1; i <= 3; i++) await save('on-demand', 'n1', 1_700_000_200 + i);
    const prune = await etcdsnap(['snapshot', 'prune', '--dir', dir, '--name', 'etcd-snapshot', '--retention', '2', '-o', 'json']);
    assert.equal(prune.code, 0, prune.stderr);
    assert.deepEqual((JSON.parse(prune.stdout) as { deleted: string[] }).deleted.sort(), ['etcd-snapshot-n1-1700000001', 'etcd-snapshot-n1-1700000002', 'etcd-snapshot-n2-1700000101']);
    const left = (await target.list()).map((s) => s.name).sort();
    assert.deepEqual(left, [
      'etcd-snapshot-n1-1700000003',
      'etcd-snapshot-n1-1700000004',
      'etcd-snapshot-n2-1700000102',
      'etcd-snapshot-n2-1700000103',
      'on-demand-n1-1700000201',
      'on-demand-n1-1700000202',
      'on-demand-n1-1700000203',
    ]);
    assert.deepEqual((await readdir(join(dir, '.metadata'))).length, left.length, 'metadata deleted with its snapshot');
  });

  it('CLI errors: usage → 2, unknown snapshot → 1 with a coded line, unsafe name refused', async () => {
    const dir = join(work, 'cli');
    const usage = await etcdsnap(['snapshot', 'save', '--dir', dir]);
    assert.equal(usage.code, 2);
    const missing = await etcdsnap(['snapshot', 'inspect', 'etcd-snapshot-nope-1', '--dir', dir]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: SNAPSHOT_NOT_FOUND: /);
    const unsafe = await etcdsnap(['snapshot', 'delete', '../../etc/passwd', '--dir', dir]);
    assert.equal(unsafe.code, 1);
    assert.match(unsafe.stderr, /INVALID_NAME/);
    const help = await etcdsnap(['snapshot', 'restore', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--initial-cluster/);
  });
});
