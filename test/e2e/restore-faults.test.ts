import assert from 'node:assert/strict';
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Operation, Phase, SnapshotRecord } from '../../src/core/api.js';
import { dumpAll, fillKubernetesLike, tempDir, type Dump } from '../harness/index.js';
import { assertSameData, cliJson, dumpMembers, fetchCa, healthyNodes, mutate, OperationWatch, phasesOf, sameData, until } from '../harness/restore-e2e.js';
import { startStack, type Stack } from '../harness/stack.js';

/**
 * Restores that go wrong, end to end (server, three agents, three managed etcd members): a
 * corrupted copy on a peer, an agent killed with SIGKILL, the server killed with SIGKILL in every
 * phase, and a cluster whose members are all down. In every case the cluster must end healthy
 * with either exactly the snapshot's data (the restore finished) or exactly the data it had
 * (the restore failed and rolled back): no key lost, never a mix.
 */
describe('restore under faults (real processes)', () => {
  let dir: string;
  let stack: Stack;
  let watch: OperationWatch;
  let base: SnapshotRecord;
  let atSnapshot: Dump;
  let round = 0;

  const endpoints = (): string[] => stack.nodes.map((n) => n.clientUrl);
  const restoreOps = async (): Promise<Operation[]> => (await cliJson<Operation[]>(stack, ['operation', 'ls', 'prod'])).filter((o) => o.kind === 'restore');
  const ended = (id: string): Promise<Operation> =>
    until(
      `restore ${id} to end`,
      async () => {
        const op = await cliJson<Operation>(stack, ['operation', 'show', id]);
        return op.phase === 'Finished' || op.phase === 'Failed' ? op : undefined;
      },
      240_000,
    );
  /** Starts a restore of `base` (mode etcd) without waiting; returns its id. */
  const startRestore = async (): Promise<string> => {
    const op = await cliJson<Operation>(stack, ['snapshot', 'restore', 'prod', base.name, '--mode', 'etcd', '--yes']);
    return op.id;
  };
  /** Data changed after the snapshot; returns the keyspace as it is before the restore. */
  const changeData = async (): Promise<Dump> => {
    round++;
    await mutate(endpoints(), `round-${round}`);
    return dumpAll(stack.nodes[0]?.clientUrl as string);
  };
  /** Finished → the snapshot's data; Failed → rolled back to `before`. Either way healthy, the same on every member. */
  const assertConsistent = async (op: Operation, before: Dump): Promise<void> => {
    await healthyNodes(stack, 'prod');
    const dumps = await dumpMembers(stack);
    if (op.phase === 'Finished') assertSameData(dumps, atSnapshot, `restore ${op.id} finished`);
    else {
      assert.equal(op.failure?.rolledBack, true, `a failed restore rolls back: ${JSON.stringify(op.failure)}`);
      assertSameData(dumps, before, `restore ${op.id} rolled back`);
    }
    for (const n of stack.nodes) {
      const left = (await readdir(n.dataDir)).filter((f) => f.includes('pre-restore'));
      assert.deepEqual(left, [], `no old data dir left on ${n.name} after ${op.phase}`);
    }
  };
  const restartAgent = async (i: number, args: string[]): Promise<void> => {
    await stack.stopAgent(i);
    (stack.nodes[i] as { extraArgs: string[] }).extraArgs = args;
    await stack.startAgent(i);
    await healthyNodes(stack, 'prod');
  };

  before(async () => {
    dir = await tempDir('etcdsnap-e2e-restore-faults-');
    stack = await startStack({ dir, nodes: 3 });
    await stack.join('prod', ['--kubernetes-version', 'v1.30.4+rke2r1', '--no-enabled']);
    await healthyNodes(stack, 'prod');
    await fillKubernetesLike(endpoints(), { totalBytes: 4 * 1024 * 1024 });
    const saved = await stack.cli(['snapshot', 'save', 'prod', '--wait', '--name', 'base']);
    assert.equal(saved.code, 0, saved.stderr);
    atSnapshot = await dumpAll(stack.nodes[0]?.clientUrl as string);
    base = (await cliJson<SnapshotRecord[]>(stack, ['snapshot', 'ls', 'prod'])).find((r) => r.name.startsWith('base-node-1-')) as SnapshotRecord;
    watch = new OperationWatch(stack, await fetchCa(stack.url));
    watch.start();
  });
  after(async () => {
    watch?.close();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a copy corrupted on a peer after its download → Failed on that node, rolled back, data as before', async () => {
    // node-3's stop hook flips bytes of its staged copy: the restore fails after Shutdown, where rollback matters.
    const staged = join(stack.nodes[2]?.dataDir as string, 'restores');
    const hook = `for f in ${staged}/*/snapshot.db; do printf 'CORRUPTCORRUPT' | dd of="$f" bs=1 seek=4096 conv=notrunc 2>/dev/null; done`;
    await restartAgent(2, ['--stop-hook', hook]);
    try {
      const before = await changeData();
      const r = await stack.cli(['snapshot', 'restore', 'prod', base.name, '--mode', 'etcd', '--yes', '--wait']);
      assert.notEqual(r.code, 0, 'the CLI reports the failure');
      const op = (await restoreOps()).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0] as Operation;
      assert.equal(op.phase, 'Failed');
      assert.equal(op.failure?.node, 'node-3');
      assert.match(op.failure?.code ?? '', /SNAPSHOT_CHECKSUM_MISMATCH|SNAPSHOT_CORRUPT|ETCD_RESTORE_FAILED/);
      assert.ok(phasesOf(op).includes('Shutdown'), 'it failed after the members were stopped');
      assert.match(r.stderr + r.stdout, /rolled back/i);
      await assertConsistent(op, before);
    } finally {
      await restartAgent(2, []);
    }
  });

  it('an agent killed with SIGKILL during Restore and started again: the restore completes or rolls back', async () => {
    const before = await changeData();
    const cur: { id?: string } = {};
    const inRestore = watch.phase('Restore', () => cur.id);
    const id = (cur.id = await startRestore());
    await inRestore;
    await stack.stopAgent(1, 'SIGKILL');
    await stack.startAgent(1);
    await assertConsistent(await ended(id), before);
  });

  for (const phase of ['Started', 'Shutdown', 'Restore', 'RestartCluster'] as Phase[]) {
    it(`the server killed with SIGKILL during ${phase} and started again: the restore completes or rolls back`, async () => {
      const before = await changeData();
      const cur: { id?: string } = {};
      const reached = watch.phase(phase, () => cur.id);
      const id = (cur.id = await startRestore());
      const seen = await reached;
      process.kill(stack.serverPid as number, 'SIGKILL');
      await stack.stopServer();
      await stack.startServer();
      const op = await ended(id);
      assert.ok(phasesOf(op).includes(seen.phase), `the operation went through ${seen.phase}`);
      await assertConsistent(op, before);
    });
  }

  it('disaster recovery: every member down (data dirs destroyed) → the restore brings the cluster back', async () => {
    await Promise.all(stack.nodes.map((_, i) => stack.stopAgent(i)));
    for (const n of stack.nodes) {
      // A destroyed disk: etcd cannot start on this (the agent keeps trying).
      const fh = await open(join(n.dataDir, 'etcd', 'member', 'snap', 'db'), 'r+');
      await fh.truncate(100);
      await fh.close();
    }
    for (let i = 0; i < stack.nodes.length; i++) await stack.startAgent(i);
    await until('every member reported down', async () => (await cliJson<{ nodes: { connected: number; healthy: number } }[]>(stack, ['cluster', 'ls']))[0]?.nodes.connected === 3 && (await cliJson<{ nodes: { healthy: number } }[]>(stack, ['cluster', 'ls']))[0]?.nodes.healthy === 0);
    const r = await stack.cli(['snapshot', 'restore', 'prod', base.name, '--mode', 'etcd', '--yes', '--wait']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    await healthyNodes(stack, 'prod');
    assertSameData(await dumpMembers(stack), atSnapshot, 'after disaster recovery');
    assert.ok(sameData(await dumpMembers(stack), atSnapshot));
  });
});
