/**
 * The etcd module against real etcd 3.4 members on loopback (no mocks): client, health,
 * snapshot stream, keys at a revision, member processes, restore, and the harness itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdsnapError, isEtcdsnapError } from '../../src/core/errors.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { startMember, waitMembersHealthy } from '../../src/etcd/member.js';
import { restoreSnapshotFile, snapshotFileStatus } from '../../src/etcd/restore.js';
import { dumpAll, fillKubernetesLike, freePort, keyCountsByResource, kubernetesLikeItems, resourceOfKey, startClusterFromSnapshot, startEtcdCluster, tempDir, type TestCluster } from '../harness/index.js';

/** Rejects with an EtcdsnapError of `code` (and returns it for more checks). */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<EtcdsnapError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EtcdsnapError, `expected an EtcdsnapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

async function collect(iterable: AsyncIterable<Buffer[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const page of iterable) out.push(...page.map((k) => k.toString()));
  return out;
}

describe('EtcdClient on a 3-member cluster', () => {
  let cluster: TestCluster;
  let client: EtcdClient;
  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
    client = await EtcdClient.connect({ endpoints: cluster.endpoints });
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
  });

  test('is healthy with a leader; members and status', async () => {
    const health = await client.health();
    assert.equal(health.healthy, true, health.reasons.join('; '));
    assert.equal(health.memberCount, 3);
    assert.deepEqual(health.reasons, []);
    const members = await client.members();
    assert.equal(members.length, 3);
    assert.deepEqual(members.map((m) => m.name).sort(), ['m1', 'm2', 'm3']);
    assert.ok(members.some((m) => m.id === health.leaderId), 'leader is a member');
    for (const m of members) assert.match(m.id, /^[0-9a-f]+$/);

    const status = await client.status(cluster.endpoints[0]!);
    assert.match(status.version, /^3\.4\.\d+$/);
    assert.ok(status.revision >= 1);
    assert.ok(status.dbSize > 0);
    assert.equal(status.leaderId, health.leaderId);
    assert.equal(status.memberId, members.find((m) => m.name === 'm1')!.id);
  });

  test('rangeKeys at a past revision sees that revision', async () => {
    const etcd = new Etcd3({ hosts: cluster.endpoints });
    try {
      await etcd.put('/t/range/a').value('1');
      // The revision of the write itself: a follower's status may lag the leader's apply.
      const rev = Number((await etcd.put('/t/range/b').value('2').exec()).header.revision);
      await etcd.put('/t/range/c').value('3');
      await etcd.delete().key('/t/range/a');
      assert.deepEqual(await collect(client.rangeKeys({ prefix: '/t/range/', revision: rev, pageSize: 1 })), ['/t/range/a', '/t/range/b']);
      assert.deepEqual(await collect(client.rangeKeys({ prefix: '/t/range/', pageSize: 1, endpoint: cluster.endpoints[2]! })), ['/t/range/b', '/t/range/c']);
      const all = await collect(client.rangeKeys({ revision: rev }));
      assert.ok(all.includes('/t/range/a') && !all.includes('/t/range/c'));
    } finally {
      etcd.close();
    }
  });

  test('a stopped member makes the cluster unhealthy by name; restarting it heals', async () => {
    const stopped = cluster.members[1]!;
    await cluster.stopMember(1);
    const health = await client.health({ timeoutMs: 2000 });
    assert.equal(health.healthy, false);
    const entry = health.members.find((m) => m.name === stopped.name);
    assert.ok(entry && !entry.healthy);
    assert.ok(
      health.reasons.some((r) => r.startsWith(`member ${stopped.name} (${stopped.clientUrl}) is unreachable:`)),
      health.reasons.join('; '),
    );
    assert.equal(health.members.filter((m) => m.healthy).length <= 2, true);

    await cluster.startMember(1);
    const healed = await cluster.waitHealthy(20_000);
    assert.equal(healed.healthy, true);
    assert.equal((await client.health()).healthy, true);
  });

  test('members exiting early fail with their log tail', async () => {
    const root = await tempDir('etcdsnap-member-');
    const blocker = net.createServer((socket) => socket.destroy()); // holds the port only
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const peerUrl = `http://127.0.0.1:${await freePort()}`;
      const member = await startMember({
        name: 'busy',
        dataDir: path.join(root, 'busy.etcd'),
        clientUrl: `http://127.0.0.1:${port}`,
        peerUrl,
        initialCluster: `busy=${peerUrl}`,
        initialClusterState: 'new',
        initialClusterToken: 't',
        logFile: path.join(root, 'busy.log'),
      });
      const err = await rejectsWith(waitMembersHealthy([member], 20_000), 'ETCD_MEMBER_FAILED');
      assert.match(err.message, /address already in use/);
      assert.ok(err.message.includes(path.join(root, 'busy.log')));
      assert.notEqual(await member.exited, 0);

      // Without a log file the tail comes from memory.
      const quiet = await startMember({ name: 'quiet', dataDir: path.join(root, 'quiet.etcd'), clientUrl: `http://127.0.0.1:${port}`, peerUrl, initialCluster: `quiet=${peerUrl}`, initialClusterState: 'new', initialClusterToken: 't' });
      assert.match((await rejectsWith(quiet.failed, 'ETCD_MEMBER_FAILED')).message, /address already in use/);

      const missing = startMember({ name: 'x', dataDir: path.join(root, 'x'), clientUrl: 'http://127.0.0.1:1', peerUrl, initialCluster: `x=${peerUrl}`, initialClusterState: 'new', initialClusterToken: 't', etcdBinary: '/nonexistent/etcd' });
      assert.match((await rejectsWith(missing, 'ETCD_MEMBER_FAILED')).message, /not found/);
    } finally {
      blocker.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  test('with every member down, health throws ETCD_UNREACHABLE naming the endpoints', async () => {
    await Promise.all([0, 1, 2].map((i) => cluster.stopMember(i, { kill: true })));
    const err = await rejectsWith(client.health({ timeoutMs: 2000 }), 'ETCD_UNREACHABLE');
    for (const endpoint of cluster.endpoints) assert.ok(err.message.includes(endpoint), err.message);
    assert.match(err.message, /etcd is running/);
    await rejectsWith(EtcdClient.connect({ endpoints: cluster.endpoints, dialTimeoutMs: 1000 }), 'ETCD_UNREACHABLE');
    const stream = client.snapshotStream(cluster.endpoints[0]!);
    await rejectsWith(pipeline(stream, new Writable({ write: (_chunk, _enc, cb) => cb() })), 'ETCD_UNREACHABLE');
  });
});

test('the harness kills members and removes temp dirs when a test process dies', async () => {
  const harness = new URL('../harness/index.js', import.meta.url).href;
  const script = `
    const { startEtcdCluster } = await import(${JSON.stringify(harness)});
    const c = await startEtcdCluster({ members: 1 });
    console.log(JSON.stringify({ pid: c.members[0].process.pid, root: c.root }));
    throw new Error('a test that forgot to stop its cluster');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.notEqual(code, 0);
  const { pid, root } = JSON.parse(out.trim().split('\n').pop()!) as { pid: number; root: string };
  const state = await readFile(`/proc/${pid}/status`, 'utf8').then((t) => /State:\s+(\w)/.exec(t)?.[1], () => 'gone');
  const rootLeft = await stat(root).then(() => true, () => false);
  if (state !== 'gone' && state !== 'Z') process.kill(pid, 'SIGKILL'); // don't leak it when this fails
  if (rootLeft) await rm(root, { recursive: true, force: true });
  assert.ok(state === 'gone' || state === 'Z', `etcd ${pid} still running (state ${state})`);
  assert.equal(rootLeft, false, `${root} was left behind`);
});

describe('Kubernetes-like data, snapshots and restore on a 1-member cluster', () => {
  let cluster: TestCluster;
  let client: EtcdClient;
  let dir: string;
  let snapshotFile: string;
  let snapshotRevision: number;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
    client = await EtcdClient.connect({ endpoints: cluster.endpoints });
    dir = await tempDir('etcdsnap-restore-test-');
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('fill 20 MiB; dumpAll and keyCountsByResource agree with what fill reported', async () => {
    const filled = await fillKubernetesLike(cluster.endpoints, { totalBytes: 20 << 20, seed: 7 });
    assert.ok(filled.bytes >= 20 << 20 && filled.bytes < (20 << 20) + (1 << 20));
    assert.ok(filled.byResource['(other)']! > 0 && filled.byResource['pods']! > 0 && filled.byResource['namespaces']! > 0);

    const dump = await dumpAll(cluster.endpoints[0]!);
    assert.equal(dump.kv.size, filled.keys);
    let bytes = 0;
    const byResource: Record<string, number> = {};
    for (const [key, value] of dump.kv) {
      bytes += Buffer.byteLength(value);
      byResource[resourceOfKey(key)] = (byResource[resourceOfKey(key)] ?? 0) + 1;
    }
    assert.equal(bytes, filled.bytes);
    assert.deepEqual(byResource, filled.byResource);
    assert.equal(dump.revision, filled.revision);

    const counts = await keyCountsByResource(cluster.endpoints[0]!);
    assert.deepEqual(counts, { revision: filled.revision, keys: filled.keys, byResource: filled.byResource });

    // Deterministic from the seed: the same items again, and other items for another seed.
    const again = [...kubernetesLikeItems(7, 20 << 20)];
    assert.equal(again.length, filled.keys);
    assert.ok(again.every((item) => dump.kv.get(item.key) === item.value.toString()));
    assert.notDeepEqual([...kubernetesLikeItems(8, 1 << 20)].map((i) => i.key), again.slice(0, 100).map((i) => i.key));
  });

  test('snapshotStream ends with etcd\'s sha256 trailer of the bytes before it', async () => {
    snapshotRevision = (await client.status(cluster.endpoints[0]!)).revision;
    snapshotFile = path.join(dir, 'snap.db');
    await pipeline(client.snapshotStream(cluster.endpoints[0]!), createWriteStream(snapshotFile));
    const bytes = await readFile(snapshotFile);
    assert.ok(bytes.length > 20 << 20);
    assert.equal(bytes.length % 512, 32);
    const digest = createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest();
    assert.deepEqual(bytes.subarray(bytes.length - 32), digest);
    const st = await snapshotFileStatus(snapshotFile);
    assert.equal(st.revision, snapshotRevision);
    assert.ok(st.totalKey >= (await keyCountsByResource(cluster.endpoints[0]!)).keys);
  });

  test('snapshotStream holds back when not read, and aborting ends it with an error', async () => {
    const { dbSize } = await client.status(cluster.endpoints[0]!);
    assert.ok(dbSize > 16 << 20, `needs the filled DB to be meaningful (dbSize ${dbSize})`);
    const ac = new AbortController();
    const stream = client.snapshotStream(cluster.endpoints[0]!, ac.signal);
    const first = await new Promise<Buffer>((resolve, reject) => {
      stream.once('data', (chunk: Buffer) => {
        stream.pause();
        resolve(chunk);
      });
      stream.once('error', reject);
    });
    assert.ok(first.length > 0);
    // Not reading for a while must not pull the 20+ MiB DB into memory (an unbounded reader
    // gets it in well under this window at ~170 MiB/s).
    await delay(400);
    assert.ok(stream.readableLength <= 2 << 20, `buffered ${stream.readableLength} bytes`);
    ac.abort();
    const err = await new Promise<unknown>((resolve) => {
      stream.once('error', resolve);
      stream.once('end', () => resolve(undefined));
      stream.resume();
    });
    assert.ok(isEtcdsnapError(err, 'OPERATION_ABORTED'), String(err));
    assert.ok(stream.destroyed);
    // The member is fine afterwards.
    assert.equal((await client.health()).healthy, true);
  });

  test('restore refuses a non-empty data dir and touches nothing', async () => {
    const dataDir = path.join(dir, 'busy-data');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'keep.txt'), 'precious');
    const err = await rejectsWith(
      restoreSnapshotFile({ file: snapshotFile, dataDir, memberName: 'm1', initialCluster: 'm1=http://127.0.0.1:2380', initialAdvertisePeerUrls: 'http://127.0.0.1:2380', initialClusterToken: 't' }),
      'DATA_DIR_NOT_EMPTY',
    );
    assert.ok(err.message.includes(dataDir));
    assert.deepEqual(await readdir(dataDir), ['keep.txt']);
    assert.equal(await readFile(path.join(dataDir, 'keep.txt'), 'utf8'), 'precious');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.restore-')), []);
  });

  test('a corrupted snapshot fails to restore and leaves no data dir and no temp dir', async () => {
    const bad = path.join(dir, 'corrupt.db');
    const bytes = await readFile(snapshotFile);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    await writeFile(bad, bytes);
    const opts = { file: bad, memberName: 'm1', initialCluster: 'm1=http://127.0.0.1:2380', initialAdvertisePeerUrls: 'http://127.0.0.1:2380', initialClusterToken: 't' };

    const absent = path.join(dir, 'fresh', 'data');
    await rejectsWith(restoreSnapshotFile({ ...opts, dataDir: absent }), 'SNAPSHOT_CHECKSUM_MISMATCH');
    await assert.rejects(stat(path.join(dir, 'fresh')), { code: 'ENOENT' });

    const empty = path.join(dir, 'empty-data');
    await mkdir(empty);
    await rejectsWith(restoreSnapshotFile({ ...opts, dataDir: empty }), 'SNAPSHOT_CHECKSUM_MISMATCH');
    assert.deepEqual(await readdir(empty), []);
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.restore-')), []);

    await rejectsWith(restoreSnapshotFile({ ...opts, file: snapshotFile, dataDir: path.join(dir, 'no-ctl'), etcdctl: '/nonexistent/etcdctl' }), 'ETCDCTL_NOT_FOUND');
    await assert.rejects(stat(path.join(dir, 'no-ctl')), { code: 'ENOENT' });
  });

  test('a good snapshot restores into an empty dir, and into a 3-member cluster equal to the source', async () => {
    const empty = path.join(dir, 'empty-ok');
    await mkdir(empty);
    await restoreSnapshotFile({ file: snapshotFile, dataDir: empty, memberName: 'm1', initialCluster: 'm1=http://127.0.0.1:2380', initialAdvertisePeerUrls: 'http://127.0.0.1:2380', initialClusterToken: 't' });
    assert.ok((await stat(path.join(empty, 'member', 'snap', 'db'))).size > 0);

    const restored = await startClusterFromSnapshot(snapshotFile, { members: 3 });
    try {
      const source = await dumpAll(cluster.endpoints[0]!, { revision: snapshotRevision });
      const copy = await dumpAll(restored.endpoints[2]!);
      assert.equal(copy.revision, snapshotRevision);
      assert.equal(copy.kv.size, source.kv.size);
      assert.deepEqual(copy.kv, source.kv);
      const restoredClient = await EtcdClient.connect({ endpoints: restored.endpoints });
      try {
        const health = await restoredClient.health();
        assert.equal(health.healthy, true);
        assert.equal(health.memberCount, 3);

        // A member dying mid-stream errors the stream (it does not just end).
        const stream = restoredClient.snapshotStream(restored.endpoints[0]!);
        await new Promise((resolve, reject) => {
          stream.once('data', resolve);
          stream.once('error', reject);
        });
        stream.pause();
        await restored.stopMember(0, { kill: true });
        const err = await rejectsWith(pipeline(stream, new Writable({ write: (_chunk, _enc, cb) => cb() })), 'ETCD_UNREACHABLE');
        assert.ok(err.message.includes(restored.endpoints[0]!));
      } finally {
        restoredClient.close();
      }
    } finally {
      await restored.stop();
    }
    await assert.rejects(stat(restored.root), { code: 'ENOENT' });
  });
});
