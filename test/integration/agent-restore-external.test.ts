import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import type { RestorePrepareResult, RestoreStartResult } from '../../src/core/plans.js';
import { dumpAll, fillKubernetesLike } from '../harness/index.js';
import { restoreNodes, restoreTasks, type RestoreNode, type RestoreNodes } from '../harness/restore-nodes.js';

/**
 * The restore tasks on agents in external mode — etcd run by someone else, as on a distribution
 * that runs etcd itself: the agent stops and starts it only through --etcd-stop-command and
 * --etcd-start-command and knows its data dir from --etcd-data-dir. A whole restore, and a
 * rollback after some nodes replaced their data dir.
 */
describe('agent: restore tasks with external etcd members (stop/start commands)', () => {
  let c: RestoreNodes;
  let snapName: string;
  let snapSha: string;
  let atSnapshot: Map<string, string>;
  const token = randomBytes(24).toString('base64url');
  const node = (i: number): RestoreNode => c.nodes[i] as RestoreNode;
  const all = <T>(fn: (n: RestoreNode) => Promise<T>): Promise<T[]> => Promise.all(c.nodes.map(fn));
  const kv = (ops: (etcd: Etcd3) => Promise<unknown>): Promise<void> => c.kv(ops);
  /** Every member's keys and values, which must be the same on all three. */
  const dumps = (): Promise<Map<string, string>> => c.dumps();
  const asides = async (): Promise<string[]> => (await readdir(dirname(node(0).config.etcdDataDir as string))).filter((e) => e.includes('.pre-restore-'));
  // Raw transfer here (the managed-mode test takes the stored bytes): both paths are covered.
  const tasks = restoreTasks(() => c, { token, snapshot: () => ({ name: snapName, sha256: snapSha }), stored: false });
  const stage = async (op: string): Promise<RestorePrepareResult> => {
    const p = (await node(0).run(tasks(op).prepare())).result as RestorePrepareResult;
    await Promise.all([1, 2].map((i) => node(i).run(tasks(op).fetch(p))));
    return p;
  };

  before(async () => {
    c = await restoreNodes(3, {}, undefined, { external: true });
    assert.equal(node(0).member.mode, 'external');
    await kv(async (etcd) => {
      await etcd.put('k/a').value('1');
      await etcd.put('k/b').value('1');
    });
    await fillKubernetesLike(c.endpoints, { totalBytes: 128 * 1024, seed: 7 });
    atSnapshot = (await dumpAll(c.endpoints[0] as string)).kv;
    const out = await node(0).snapshots.take(c.plan, { base: 'on-demand', kind: 'on-demand', retention: false });
    const stored = out.reports.find((r) => r.state === 'successful');
    assert.ok(stored?.metadata, JSON.stringify(out.reports));
    snapName = stored.name;
    snapSha = stored.metadata.sha256;
  });
  after(async () => {
    await c?.close();
  });

  it('rollback after apply on two nodes: the stop command ran, the old data dirs are back, the start command brought etcd back with the data it had', async () => {
    await kv(async (etcd) => etcd.put('k/after').value('kept'));
    const before = await dumps();
    const t = tasks('ext1');
    const p = await stage('ext1');
    await all((n) => n.run(t.stop()));
    for (const n of c.nodes) assert.notEqual((await n.member.status(500)).state, 'healthy', `${n.name}: etcd stopped by its command`);
    await node(0).run(t.apply(node(0), p));
    await node(1).run(t.apply(node(1), p));
    assert.equal((await asides()).length, 2);
    await all((n) => n.run(t.rollback()));
    await c.waitHealthy();
    assert.deepEqual(await dumps(), before);
    assert.deepEqual(await asides(), []);
    for (const n of c.nodes) assert.equal(n.state.state.hold, null);
  });

  it('a whole restore: every member on the snapshot, old data dirs removed', async () => {
    await kv(async (etcd) => {
      await etcd.put('k/a').value('2');
      await etcd.delete().key('k/b');
    });
    const t = tasks('ext2');
    const p = await stage('ext2');
    await all((n) => n.run(t.stop()));
    await all((n) => n.run(t.apply(n, p)));
    const started = await all(async (n) => (await n.run(t.start(p))).result as RestoreStartResult);
    assert.equal(new Set(started.map((s) => s.hashKv)).size, 1, 'HashKV equal on every member');
    await all((n) => n.run(t.finish()));
    await all((n) => n.run(t.cleanup()));
    assert.deepEqual(await dumps(), atSnapshot);
    assert.deepEqual(await asides(), []);
    for (const n of c.nodes) assert.equal(n.state.state.hold, null);
  });
});
