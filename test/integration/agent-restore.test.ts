import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { sweepKeptDataDirs } from '../../src/agent/tasks/restore-sweep.js';
import type { RestorePrepareResult, RestoreStartResult, Task } from '../../src/core/plans.js';
import { dumpAll, fillKubernetesLike } from '../harness/index.js';
import { restoreNodes, restoreTasks, restoreTestLogger, type RestoreNode, type RestoreNodes } from '../harness/restore-nodes.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';

/**
 * The agent's side of a whole-cluster restore on 3 managed members of one cluster: the real
 * handlers with real task contexts, in the order the server sends them, rolled back from
 * every point, re-run after an interruption, and a hold that survives an agent restart.
 */
describe('agent: whole-cluster restore tasks on 3 managed members', () => {
  let cp: FakeControlPlane;
  let c: RestoreNodes;
  let hookLog: string;
  let snapName: string;
  let snapSha: string;
  /** Every key and value when the snapshot was taken. */
  let atSnapshot: Map<string, string>;
  const token = randomBytes(24).toString('base64url');
  const node = (i: number): RestoreNode => c.nodes[i] as RestoreNode;
  const all = <T>(fn: (n: RestoreNode, i: number) => Promise<T>): Promise<T[]> => Promise.all(c.nodes.map(fn));

  const kv = (ops: (etcd: Etcd3) => Promise<unknown>): Promise<void> => c.kv(ops);
  /** Every member's keys and values, which must be the same on all three. */
  const dumps = (): Promise<Map<string, string>> => c.dumps();
  const asides = async (): Promise<string[]> =>
    (await Promise.all(c.nodes.map(async (n) => (await readdir(dirname(n.config.etcdDataDir!))).filter((e) => e.includes('.pre-restore-'))))).flat();
  const restoresLeft = async (): Promise<string[]> => (await Promise.all(c.nodes.map(async (n) => readdir(join(n.config.dataDir, 'restores')).catch(() => [])))).flat();

  const tasks = restoreTasks(() => c, {
    token,
    snapshot: () => ({ name: snapName, sha256: snapSha }),
    finish: { kubernetesVersion: 'v1.29.9+rke2r1', clusterConfig: 'restored: true\n' },
    rollback: { kubernetesVersion: 'v1.30.4+rke2r1', clusterConfig: null },
  });

  /** prepare on node-1, fetch on the others: what every later step needs. */
  const stage = async (op: string): Promise<RestorePrepareResult> => {
    const t = tasks(op);
    const p = (await node(0).run(t.prepare())).result as RestorePrepareResult;
    await Promise.all([1, 2].map((i) => node(i).run(t.fetch(p))));
    return p;
  };
  const stopAll = (op: string): Promise<unknown> => all((n) => n.run(tasks(op).stop()));
  const rollbackAll = (op: string): Promise<unknown> => all((n) => n.run(tasks(op).rollback()));
  /** After a rollback: data as before, members healthy, nothing left of the restore. */
  const assertRolledBack = async (before: Map<string, string>): Promise<void> => {
    await c.waitHealthy();
    assert.deepEqual(await dumps(), before);
    assert.deepEqual(await asides(), []);
    assert.deepEqual(await restoresLeft(), []);
    for (const n of c.nodes) {
      assert.equal(n.state.state.hold, null, `${n.name}: hold released`);
      assert.deepEqual(n.state.state.staged, {});
      assert.deepEqual(n.state.state.serving, {});
      assert.equal(n.transfer.server.listening, false);
    }
  };
  const hooks = async (name: string): Promise<string[]> => (await readFile(join(hookLog, name), 'utf8').catch(() => '')).split('\n').filter(Boolean);

  before(async () => {
    cp = await FakeControlPlane.start({ policy: { enabled: false } });
    hookLog = join(await import('node:os').then((os) => os.tmpdir()), `etcdsnap-hooks-${randomBytes(4).toString('hex')}`);
    await mkdir(hookLog);
    const hook = (name: string): string => `echo "$ETCDSNAP_PHASE $ETCDSNAP_OPERATION_ID \${ETCDSNAP_KUBERNETES_VERSION:-none} $(cat "\${ETCDSNAP_CLUSTER_CONFIG_FILE:-/dev/null}")" >> ${join(hookLog, name)}`;
    c = await restoreNodes(3, (name) => ({ registrationToken: cp.registrationToken, stopHook: hook(name), startHook: hook(name), reportIntervalMs: 500 }), cp.url);
    await kv(async (etcd) => {
      await etcd.put('k/a').value('1');
      await etcd.put('k/b').value('1');
      await etcd.put('k/c').value('1');
    });
    await fillKubernetesLike(c.endpoints, { totalBytes: 256 * 1024, seed: 5 });
    atSnapshot = (await dumpAll(c.endpoints[0]!)).kv;
    const out = await node(0).snapshots.take(c.plan, { base: 'on-demand', kind: 'on-demand', retention: false });
    const stored = out.reports.find((r) => r.state === 'successful');
    assert.ok(stored?.metadata, JSON.stringify(out.reports));
    snapName = stored.name;
    snapSha = stored.metadata.sha256;
    // After the snapshot: a change, a new key, a deletion.
    await kv(async (etcd) => {
      await etcd.put('k/a').value('2');
      await etcd.put('k/d').value('after');
      await etcd.delete().key('k/b');
    });
  });
  after(async () => {
    await c?.close();
    await cp?.close();
    const { rm } = await import('node:fs/promises');
    if (hookLog) await rm(hookLog, { recursive: true, force: true });
  });

  it('prepare refuses a copy whose sha256 is not the recorded one, before anything is stopped', async () => {
    const bad: Task = { id: 'x-prepare', kind: 'restore-prepare', operationId: 'opx', source: { storage: 'local', name: snapName, sha256: 'f'.repeat(64) }, transferToken: token };
    await assert.rejects(node(0).run(bad), (e: Error & { code?: string }) => e.code === 'SNAPSHOT_CHECKSUM_MISMATCH');
    assert.equal(node(0).member.running(), true);
    assert.deepEqual(node(0).state.state.staged, {});
  });

  it('rollback after stop: the data as before, members healthy, hooks run, holds released', async () => {
    const before = await dumps();
    assert.equal(before.get('k/d'), 'after');
    const p = await stage('op1');
    assert.ok(p.rawSize > 256 * 1024 && p.revision > 0, JSON.stringify(p));
    assert.match(p.transferUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(node(1).progress.some((m) => /^downloading zstd \d+ \/ \d+ MiB from node-1$/.test(m)), node(1).progress.join('; '));
    await stopAll('op1');
    for (const n of c.nodes) {
      assert.equal(n.member.running(), false);
      assert.deepEqual(n.state.state.hold && { op: n.state.state.hold.operationId, was: n.state.state.hold.memberWasRunning }, { op: 'op1', was: true });
    }
    // restore-stop again (a crash re-run) keeps the first memberWasRunning.
    await node(0).run(tasks('op1').stop());
    assert.equal(node(0).state.state.hold?.memberWasRunning, true);
    await rollbackAll('op1');
    await assertRolledBack(before);
    assert.deepEqual((await hooks('node-2')).slice(-2), ['stop op1 none ', 'start op1 v1.30.4+rke2r1 ']);
  });

  it('rollback after apply on some nodes (apply run twice on node-1, with an interrupted etcdctl left over)', async () => {
    const before = await dumps();
    const t = tasks('op2');
    const p = await stage('op2');
    await stopAll('op2');
    const n1 = node(0);
    await n1.run(t.apply(n1, p));
    const leftover = join(dirname(n1.config.etcdDataDir!), `.${'etcd'}.restore-999-dead`);
    await mkdir(join(leftover, 'member'), { recursive: true });
    await n1.run(t.apply(n1, p)); // as after a crash mid-apply: the same end state
    await node(1).run(t.apply(node(1), p));
    await assert.rejects(stat(leftover), 'stale etcdctl temp dirs are removed');
    const aside = `${n1.config.etcdDataDir}.pre-restore-op2`;
    assert.ok((await stat(join(aside, 'member', 'wal'))).isDirectory(), 'the old data dir is kept aside');
    assert.ok((await stat(join(n1.config.etcdDataDir!, 'member', 'snap', 'db'))).isFile(), 'a restored data dir is in place');
    assert.equal((await asides()).length, 2, 'moved aside on nodes 1 and 2 only');
    await rollbackAll('op2');
    await assertRolledBack(before);
  });

  it('rollback after start: the restored cluster ran, the old data comes back', async () => {
    const before = await dumps();
    const t = tasks('op3');
    const p = await stage('op3');
    await stopAll('op3');
    await all((n) => n.run(t.apply(n, p)));
    const started = await all(async (n) => (await n.run(t.start(p))).result as RestoreStartResult);
    assert.deepEqual((await dumpAll(c.endpoints[0]!)).kv, atSnapshot, 'the restored cluster has the snapshot data');
    assert.equal(new Set(started.map((s) => s.hashKv)).size, 1);
    await rollbackAll('op3');
    await assertRolledBack(before);
  });

  it('rollback after finish on two nodes (the third one\'s start hook failed): every node back on its old data', async () => {
    const before = await dumps();
    const t = tasks('op3f');
    const p = await stage('op3f');
    await stopAll('op3f');
    await all((n) => n.run(t.apply(n, p)));
    await all((n) => n.run(t.start(p)));
    await node(0).run(t.finish());
    await node(1).run(t.finish());
    assert.equal((await asides()).length, 3, 'finish keeps the old data dirs (cleanup removes them)');
    for (const n of c.nodes) assert.equal(n.state.state.hold?.operationId, 'op3f', 'finish keeps the hold');
    await rollbackAll('op3f');
    await assertRolledBack(before);
  });

  it('restore prepare → fetch → stop → apply → start → finish: every member has exactly the snapshot; old data dirs removed (keep 0)', async () => {
    const t = tasks('op4');
    const p = await stage('op4');
    await stopAll('op4');
    await all((n) => n.run(t.apply(n, p)));
    const started = await all(async (n) => (await n.run(t.start(p))).result as RestoreStartResult);
    console.log(`# restore-start results: ${JSON.stringify(started)}; prepare: revision ${p.revision}, totalKey ${p.totalKey}`);
    assert.equal(new Set(started.map((s) => s.hashKv)).size, 1, 'HashKV equal on every member');
    assert.ok(started.every((s) => s.keys === atSnapshot.size && s.revision >= p.revision), JSON.stringify(started));
    await all((n) => n.run(t.finish()));
    await all((n) => n.run(t.cleanup(0)));
    const now = await dumps();
    assert.deepEqual(now, atSnapshot);
    assert.equal(now.get('k/a'), '1');
    assert.equal(now.get('k/b'), '1');
    assert.equal(now.has('k/d'), false);
    assert.deepEqual(await asides(), []);
    assert.deepEqual(await restoresLeft(), []);
    for (const n of c.nodes) {
      assert.equal(n.state.state.hold, null);
      assert.deepEqual(n.state.state.keptDataDirs, []);
      assert.equal(n.transfer.server.listening, false);
    }
    assert.deepEqual((await hooks('node-3')).slice(-2), ['stop op4 none ', 'start op4 v1.29.9+rke2r1 restored: true']);
    // The restored cluster takes writes.
    await kv(async (etcd) => etcd.put('k/e').value('after-restore'));
  });

  it('keep 1 day: the old data dirs stay, recorded with their expiry, and the sweep removes them once expired', async () => {
    const t = tasks('op5');
    const p = await stage('op5');
    await stopAll('op5');
    await all((n) => n.run(t.apply(n, p)));
    await all((n) => n.run(t.start(p)));
    await all((n) => n.run(t.finish()));
    await all((n) => n.run(t.cleanup(1)));
    assert.deepEqual(await dumps(), atSnapshot);
    assert.equal((await asides()).length, 3);
    for (const n of c.nodes) {
      const [k] = n.state.state.keptDataDirs;
      assert.equal(k?.path, `${n.config.etcdDataDir}.pre-restore-op5`);
      const left = Date.parse(k.expiresAt) - Date.now();
      assert.ok(left > 23 * 3_600_000 && left <= 24 * 3_600_000, k.expiresAt);
      assert.deepEqual(await sweepKeptDataDirs(n.state, restoreTestLogger()), [], 'not expired yet');
      assert.deepEqual(await sweepKeptDataDirs(n.state, restoreTestLogger(), Date.now() + 2 * 86_400_000), [k.path]);
      assert.deepEqual(n.state.state.keptDataDirs, []);
    }
    assert.deepEqual(await asides(), []);
  });

  it('a hold survives an agent restart: the managed member is not started, recurring snapshots are skipped; a rollback task through the agent releases it', async () => {
    const n3 = node(2);
    await n3.run(tasks('op6').stop());
    await n3.release(); // the agent stops (its state says: held)
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const agent = new Agent(n3.config, { logger: pino({ level: 'info' }, sink) });
    try {
      await agent.start();
      assert.equal(agent.status().memberRunning, false, 'the held member is not started');
      await waitFor('node-3 registered', () => cp.nodes.has('node-3'));
      cp.setPolicy({ enabled: true, schedule: '@every 1s' });
      const skipped = (): number => lines.filter((l) => l.includes('recurring snapshot skipped')).length;
      await waitFor('two recurring snapshots skipped', () => skipped() >= 2, 15_000);
      assert.deepEqual((await readdir(n3.config.snapshotDir)).filter((f) => !f.startsWith('.')), [], 'no snapshot taken');
      assert.equal(agent.status().memberRunning, false);
      cp.setPolicy({ enabled: false });
      cp.addTask('node-3', tasks('op6').rollback());
      const status = await waitFor('the rollback task', () => {
        const s = cp.taskStatus('node-3', 'op6-rollback');
        return s && s.state !== 'running' ? s : undefined;
      }, 40_000);
      assert.equal(status.state, 'succeeded', status.message);
      assert.equal(agent.state.state.hold, null);
      assert.equal(agent.status().memberRunning, true);
      await c.waitHealthy();
      assert.deepEqual(cp.invalid, []);
      assert.ok(!lines.some((l) => l.includes(token)), 'the transfer token never reaches a log');
    } finally {
      await agent.stop();
    }
  });
});
