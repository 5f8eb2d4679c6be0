import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Cluster, Operation, SnapshotRecord } from '../../src/core/api.js';
import { fillKubernetesLike, tempDir } from '../harness/index.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { startStack, type Stack } from '../harness/stack.js';
import { until } from '../harness/until.js';


async function snapshotFiles(dir: string): Promise<string[]> {
  // Completed snapshots only: a save in progress is a `.part`.
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => !f.startsWith('.') && !f.endsWith('.part')).sort();
}

/**
 * The control plane end to end, from the real CLI: `etcdsnap server`, three `etcdsnap agent`
 * processes each supervising its etcd member, and the user's commands.
 */
describe('server + 3 agents + 3 managed etcd members (real processes)', () => {
  let dir: string;
  let stack: Stack;
  let s3: S3rverHandle;

  const json = async <T>(args: string[]): Promise<T> => {
    const r = await stack.cli([...args, '-o', 'json']);
    assert.equal(r.code, 0, `etcdsnap ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const cluster = (): Promise<Cluster> => json<Cluster[]>(['cluster', 'ls']).then((l) => l.find((c) => c.name === 'prod') as Cluster);
  const records = (): Promise<SnapshotRecord[]> => json<SnapshotRecord[]>(['snapshot', 'ls', 'prod']);
  const healthy = (): Promise<boolean> => cluster().then((c) => c.nodes.healthy === 3);

  before(async () => {
    dir = await tempDir('etcdsnap-e2e-');
    stack = await startStack({ dir, nodes: 3 });
    await stack.join('prod', ['--kubernetes-version', 'v1.30.4+rke2r1', '--no-enabled']);
    await until('3 healthy nodes', healthy, 60_000);
    await fillKubernetesLike(stack.nodes.map((n) => n.clientUrl), { totalBytes: 2 * 1024 * 1024 });
  });
  after(async () => {
    await stack?.stop();
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a one-time snapshot goes Started → RestartCluster → Finished and leaves a file on every node', async () => {
    const r = await stack.cli(['snapshot', 'save', 'prod', '--wait']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const phases = r.stdout.split('\n').map((l) => l.split(/\s+/)[1]).filter(Boolean);
    const order = phases.filter((p, i) => p !== phases[i - 1]);
    assert.deepEqual(order, ['Started', 'RestartCluster', 'Finished']);
    const recs = (await records()).filter((x) => x.name.startsWith('on-demand-'));
    assert.deepEqual(recs.map((x) => x.node).sort(), ['node-1', 'node-2', 'node-3']);
    for (const rec of recs) {
      assert.equal(rec.state, 'successful');
      assert.deepEqual(rec.restoreModes, ['etcd', 'kubernetes-version']);
      const node = stack.nodes.find((n) => n.name === rec.node);
      assert.ok(node && (await snapshotFiles(node.snapshotDir)).includes(rec.name), `${rec.name} on ${rec.node}`);
    }
  });

  it('of two operations started at once, never both run: the other gets 409 with the running one’s id', async () => {
    const [a, b] = await Promise.all([stack.cli(['snapshot', 'save', 'prod', '-o', 'json']), stack.cli(['snapshot', 'save', 'prod', '-o', 'json'])]);
    const ok = [a, b].filter((r) => r.code === 0).map((r) => JSON.parse(r.stdout) as Operation);
    assert.ok(ok.length >= 1, a.stderr + b.stderr);
    for (const op of ok) await until(`operation ${op.id} to end`, async () => (await json<Operation>(['operation', 'show', op.id])).phase === 'Finished');
    if (ok.length === 2) {
      // The CLI processes did not start together (a loaded machine): the first had finished.
      const [x, y] = await Promise.all(ok.map((op) => json<Operation>(['operation', 'show', op.id])));
      const [first, second] = Date.parse(x?.createdAt as string) < Date.parse(y?.createdAt as string) ? [x, y] : [y, x];
      assert.ok(Date.parse(first?.finishedAt as string) <= Date.parse(second?.createdAt as string), 'two operations overlapped');
      return;
    }
    const lost = a.code === 0 ? b : a;
    assert.equal(lost.code, 1, lost.stdout);
    assert.match(lost.stderr, /^error: OPERATION_RUNNING: /);
    assert.ok(lost.stderr.includes((ok[0] as Operation).id), lost.stderr);
  });

  it('with a member stopped, the one-time snapshot ends Failed naming it, and nothing is half-written', async () => {
    const before = await Promise.all(stack.nodes.map((n) => snapshotFiles(n.snapshotDir)));
    await stack.stopAgent(2); // the agent stops its etcd member with it
    try {
      const r = await stack.cli(['snapshot', 'save', 'prod', '--wait']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /Failed/);
      assert.match(r.stdout, /node-3/);
      const afterFiles = await Promise.all(stack.nodes.map((n) => readdir(n.snapshotDir).catch(() => [] as string[])));
      for (const files of afterFiles) assert.deepEqual(files.filter((f) => f.endsWith('.part')), []);
      assert.deepEqual(await Promise.all(stack.nodes.map((n) => snapshotFiles(n.snapshotDir))), before);
    } finally {
      await stack.startAgent(2);
      await until('3 healthy nodes again', healthy, 60_000);
    }
  });

  it('the schedule fires on every node and retention keeps N per node', async () => {
    const edit = await stack.cli(['cluster', 'edit', 'prod', '--enabled', '--schedule', '*/2 * * * * *', '--retention', '2']);
    assert.equal(edit.code, 0, edit.stderr);
    try {
      await until(
        'more recurring snapshots than the retention, then pruned to 2 per node',
        async () => {
          const recs = (await records()).filter((x) => x.name.startsWith('etcd-snapshot-') && x.state === 'successful');
          const per = stack.nodes.map((n) => recs.filter((x) => x.node === n.name).length);
          const files = await Promise.all(stack.nodes.map(async (n) => (await snapshotFiles(n.snapshotDir)).filter((f) => f.startsWith('etcd-snapshot-')).length));
          return per.every((c) => c === 2) && files.every((c) => c === 2) && (await cluster()).lastSuccessfulSnapshot !== null;
        },
        45_000,
      );
      const ondemand = await Promise.all(stack.nodes.map(async (n) => (await snapshotFiles(n.snapshotDir)).filter((f) => f.startsWith('on-demand-')).length));
      assert.ok(ondemand.every((c) => c >= 1), 'on-demand snapshots are never pruned by the schedule');
    } finally {
      await stack.cli(['cluster', 'edit', 'prod', '--no-enabled']);
    }
  });

  it('with the server stopped, recurring snapshots go on and appear after its restart', async () => {
    const edit = await stack.cli(['cluster', 'edit', 'prod', '--enabled', '--schedule', '*/2 * * * * *', '--retention', '50']);
    assert.equal(edit.code, 0, edit.stderr);
    await until('agents on the new plan', async () => (await cluster()).nextScheduledSnapshotAt !== null);
    await stack.stopServer();
    const stoppedAt = Math.floor(Date.now() / 1000);
    const taken = await until(
      'recurring snapshots on every node while the server is down',
      async () => {
        const names = await Promise.all(stack.nodes.map(async (n) => (await snapshotFiles(n.snapshotDir)).filter((f) => f.startsWith('etcd-snapshot-') && Number(f.split('-').pop()?.split('.')[0]) > stoppedAt + 1)));
        return names.every((l) => l.length > 0) ? names.flat() : undefined;
      },
      30_000,
    );
    await stack.startServer();
    let missing: string[] = [];
    await until(
      'the snapshots taken while the server was down to be recorded',
      async () => {
        const recs = new Set((await records()).map((x) => x.name));
        missing = taken.filter((name) => !recs.has(name));
        return missing.length === 0;
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; not recorded: ${missing.join(', ')}`);
    });
    await stack.cli(['cluster', 'edit', 'prod', '--no-enabled']);
  });

  it('with S3 configured, the one-time snapshot is on every node and in S3', async () => {
    s3 = await startS3rver({ https: true });
    await s3.createBucket('backups');
    const caFile = join(dir, 's3-ca.pem');
    await writeFile(caFile, s3.ca as string);
    const edit = await stack.cli([
      'cluster', 'edit', 'prod', '--s3', '--s3-bucket', 'backups', '--s3-endpoint', s3.endpoint, '--s3-endpoint-ca', caFile, '--s3-force-path-style',
      '--s3-folder', 'prod', '--s3-access-key', 'S3RVER', '--s3-secret-key', 'S3RVER-SECRET-NEVER-SHOWN',
    ]);
    assert.equal(edit.code, 0, edit.stderr);
    const shown = await stack.cli(['cluster', 'show', 'prod', '-o', 'json']);
    assert.ok(!shown.stdout.includes('S3RVER-SECRET-NEVER-SHOWN'), 'the S3 secret is never returned');
    await until('agents on the S3 plan', async () => {
      const r = await stack.cli(['snapshot', 'save', 'prod', '--wait', '--name', 'with-s3']);
      return r.code === 0;
    }, 60_000);
    const recs = (await records()).filter((x) => x.name.startsWith('with-s3-'));
    const s3recs = recs.filter((x) => x.storage === 's3');
    assert.deepEqual(s3recs.map((x) => x.node).sort(), ['node-1', 'node-2', 'node-3']);
    for (const rec of s3recs) assert.match(rec.location, /^s3:\/\/backups\/prod\/with-s3-node-\d-\d+\.zst$/);
    assert.equal(recs.filter((x) => x.storage === 'local').length, 3);
  });
});
