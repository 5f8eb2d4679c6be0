import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Cluster, Phase } from '../../src/core/api.js';
import type { RestoreRollbackTask, Task } from '../../src/core/plans.js';
import { startTestServer, type TestServer } from '../harness/server.js';
import { kindsOf, simCluster, success, withOverride, type Script } from './server-restore-sim.js';

/**
 * How a restore fails and rolls back, and how it survives a server restart in every phase,
 * driven by scripted agents over HTTP.
 */
describe('server restore: failures, rollback, restarts', () => {
  let server: TestServer;
  const offset = { ms: 0 };
  const get = (): TestServer => server;

  before(async () => {
    server = await startTestServer({ config: { reportIntervalMs: 1000, nodeTimeoutMs: 5000, tickMs: 50 }, now: () => Date.now() + offset.ms });
  });
  after(() => server.stop());

  const cluster = async (id: string): Promise<Cluster> => (await server.api<Cluster>('GET', `/api/v1/clusters/${id}`)).body;
  const failOn = (kind: Task['kind'], node: string, code = 'ETCD_RESTORE_FAILED'): Script =>
    withOverride((n, t) => (t.kind === kind && n === node ? { state: 'failed', code, message: `${kind} broke on ${n}` } : 'default'));

  const phaseOf: Record<string, string> = { 'restore-prepare': 'Started', 'restore-fetch': 'Started', 'restore-stop': 'Shutdown', 'restore-apply': 'Restore', 'restore-start': 'RestartCluster', 'restore-finish': 'RestartCluster' };
  for (const kind of ['restore-prepare', 'restore-fetch', 'restore-stop', 'restore-apply', 'restore-start', 'restore-finish'] as const) {
    test(`a failed ${kind} → rollback on every node → Failed naming the node, rolled back`, async () => {
      const sim = await simCluster(get);
      await sim.record('n1', 'snap.zst');
      const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
      const node = kind === 'restore-prepare' ? 'n1' : 'n2';
      // Rollback tasks are held until every forward task has left the plans.
      let rollbackPlans: Task[][] = [];
      const script = withOverride((n, t) => (t.kind === 'restore-rollback' ? undefined : 'default'), failOn(kind, node, 'SNAPSHOT_CHECKSUM_MISMATCH'));
      const rolling = await sim.until(body.id, 'rolling back', (o) => /rolling back/.test(o.message ?? '') && sim.seen.filter((s) => s.includes('restore-rollback')).length === 3, script);
      assert.equal(rolling.phase, phaseOf[kind], 'the phase stays while rolling back');
      assert.equal(rolling.failure, null);
      assert.match(rolling.message ?? '', new RegExp(`rolling back: .*on (the init )?node ${node} failed: ${kind} broke on ${node}`));
      rollbackPlans = await Promise.all(sim.agents.map((a) => a.sync()));
      for (const plan of rollbackPlans) assert.deepEqual(plan.map((t) => t.kind), ['restore-rollback'], 'only the rollback is left in the plans');
      const rb = rollbackPlans[0]?.[0] as RestoreRollbackTask;
      assert.deepEqual([rb.kubernetesVersion, rb.clusterConfig, rb.timeoutMs], ['v1.31.0', 'kind: Later\n', 180_000]);

      const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed');
      assert.equal(failed.failure?.node, node);
      assert.equal(failed.failure?.code, 'SNAPSHOT_CHECKSUM_MISMATCH');
      assert.equal(failed.failure?.rolledBack, true);
      const changed = !['restore-prepare', 'restore-fetch'].includes(kind);
      assert.match(failed.failure?.message ?? '', changed ? /; rolled back: every member is back on its previous data$/ : /; nothing was changed$/);
      assert.match(failed.message ?? '', new RegExp(`^${phaseOf[kind]}: `));
      assert.deepEqual(failed.steps.find((s) => s.node === node)?.state, 'failed');
      assert.ok(failed.steps.filter((s) => s.node !== node).every((s) => s.state === 'succeeded' && /^rolled back/.test(s.message ?? '')), JSON.stringify(failed.steps));
      for (const a of sim.agents) assert.deepEqual(await a.sync(), [], `${a.node}: plan clean after Failed`);
      assert.equal((await cluster(sim.id)).runningOperationId, null);
    });
  }

  test('a failed restore-cleanup (after every node finished) is reported, never rolled back: Finished with a note', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap.zst');
    const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
    const done = await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished' || o.phase === 'Failed', failOn('restore-cleanup', 'n2', 'TARGET_IO'));
    assert.equal(done.phase, 'Finished');
    assert.equal(done.failure, null);
    assert.ok(!sim.seen.some((s) => s.includes('restore-rollback')), 'no rollback after the commit point');
    assert.match(done.history.map((h) => h.message).join('\n'), /n2: the restore is done, but cleaning up failed \(TARGET_IO: restore-cleanup broke on n2\)/);
  });

  test('mode all undone by a rollback: the cluster’s version and config go back, and the rollback tasks carry the old ones', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'full.zst', { metadata: { kubernetesVersion: 'v1.30.4', clusterConfig: 'kind: Snapshot\n' } });
    const { body } = await sim.restore({ snapshot: 'full.zst', mode: 'all' });
    let rb: RestoreRollbackTask | undefined;
    const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed', (n, t, cur) => {
      if (t.kind === 'restore-apply' && n === 'n3') {
        return { state: 'failed', code: 'ETCD_RESTORE_FAILED', message: 'etcdctl snapshot restore: disk full' };
      }
      if (t.kind === 'restore-rollback') rb = t;
      return success(n, t, cur);
    });
    assert.equal(failed.failure?.rolledBack, true);
    assert.deepEqual([rb?.kubernetesVersion, rb?.clusterConfig], ['v1.31.0', 'kind: Later\n']);
    const c = await cluster(sim.id);
    assert.deepEqual([c.kubernetesVersion, c.clusterConfig], ['v1.31.0', 'kind: Later\n']);
    assert.match(failed.history.map((h) => h.message).join('\n'), /Kubernetes version and config are back to v1\.31\.0/);
  });

  test('a failed rollback → ROLLBACK_INCOMPLETE naming the node and what to do, not rolled back', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap.zst');
    const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
    const script = withOverride((n, t) => (t.kind === 'restore-rollback' && n === 'n2' ? { state: 'failed', code: 'ETCD_MEMBER_FAILED', message: 'etcd did not start on the old data' } : 'default'), failOn('restore-start', 'n1'));
    const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed', script);
    assert.equal(failed.failure?.code, 'ROLLBACK_INCOMPLETE');
    assert.equal(failed.failure?.node, 'n2');
    assert.equal(failed.failure?.rolledBack, false);
    const m = failed.failure?.message ?? '';
    assert.match(m, /^Starting the restored member on node n1 failed: restore-start broke on n1; rollback incomplete on n2 \(its rollback failed \(ETCD_MEMBER_FAILED: etcd did not start on the old data\)\)/);
    assert.ok(m.includes(`<data dir>.pre-restore-${body.id}`), m);
    assert.match(m, /move .* back to the member's data dir, start etcd/);
    assert.equal(failed.steps.find((s) => s.node === 'n2')?.state, 'failed');
  });

  test('a node silent during Restore → NODE_DISCONNECTED; silent through the rollback too → ROLLBACK_INCOMPLETE, and its agent still rolls back when it returns', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap.zst');
    const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
    await sim.until(body.id, 'Restore', (o) => o.phase === 'Restore', withOverride((_n, t) => (t.kind === 'restore-apply' ? undefined : 'default')));
    sim.away.add('n3');
    // In two steps, so n1 and n2 never look silent themselves.
    const holdApply = withOverride((_n, t) => (t.kind === 'restore-apply' || t.kind === 'restore-rollback' ? undefined : 'default'));
    offset.ms += 3000;
    await sim.round(holdApply);
    offset.ms += 3000;
    const rolling = await sim.until(body.id, 'rolling back', (o) => /rolling back/.test(o.message ?? ''), withOverride((_n, t) => (t.kind === 'restore-rollback' ? undefined : 'default')));
    assert.match(rolling.message ?? '', /Node n3 has not reported for \d+ s while restoring the snapshot/);
    offset.ms += 3000;
    await sim.round();
    offset.ms += 3000;
    const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed');
    assert.equal(failed.failure?.code, 'ROLLBACK_INCOMPLETE');
    assert.equal(failed.failure?.node, 'n3');
    assert.match(failed.failure?.message ?? '', /n3 \(its agent has not reported for [\d.]+ s since the rollback began\).*if the agent is down, start it \(it finishes the rollback it was sent\)/);
    for (const a of sim.agents.slice(0, 2)) assert.deepEqual(await a.sync(), []);
    // n3 comes back: its rollback is still in its plan; once done, it leaves the plan.
    sim.away.delete('n3');
    const n3 = sim.agent('n3');
    const plan = await n3.answer((t) => (t.kind === 'restore-rollback' ? { state: 'succeeded', message: 'rolled back' } : undefined));
    assert.deepEqual(plan.map((t) => t.kind), ['restore-rollback']);
    assert.deepEqual(await n3.sync(), []);
  });

  test('a node removed before anything stopped → Failed, the others drop their staged files, nothing was changed', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap.zst');
    const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
    await sim.until(body.id, 'prepare sent', () => sim.seen.some((s) => s.includes('restore-prepare')), withOverride(() => undefined));
    await server.api('DELETE', `/api/v1/clusters/${sim.id}/nodes/${sim.agent('n2').nodeId}`);
    sim.away.add('n2');
    const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed');
    assert.equal(failed.failure?.code, 'NODE_DISCONNECTED');
    assert.equal(failed.failure?.node, 'n2');
    assert.match(failed.failure?.message ?? '', /Node n2 was removed from the cluster during the restore; nothing was changed$/);
    assert.equal(failed.failure?.rolledBack, true);
  });

  // The task kinds held in each phase, so a restart falls in the middle of it.
  const holdIn: Record<string, Task['kind']> = { Started: 'restore-fetch', Shutdown: 'restore-stop', Restore: 'restore-apply', RestartCluster: 'restore-finish' };
  for (const phase of ['Started', 'Shutdown', 'Restore', 'RestartCluster'] as Phase[]) {
    test(`a server restart during ${phase} resumes the restore: same tasks, none sent twice, Finished`, async () => {
      const sim = await simCluster(get);
      await sim.record('n1', 'snap.zst');
      const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
      const hold = withOverride((_n, t) => (t.kind === holdIn[phase] ? { state: 'running', message: `${t.kind} in progress` } : 'default'));
      await sim.until(body.id, `${phase} with ${holdIn[phase]} running`, (o) => o.phase === phase && o.steps.filter((s) => s.message === `${holdIn[phase]} in progress`).length >= 2, hold);
      const before = await Promise.all(sim.agents.map(async (a) => (await a.sync()).map((t) => t.id)));
      server = await server.restart();
      const resumed = await sim.op(body.id);
      assert.equal(resumed.phase, phase);
      const after = await Promise.all(sim.agents.map(async (a) => { a.useServer(server); return (await a.sync()).map((t) => t.id); }));
      assert.deepEqual(after, before, 'the plans hold the same tasks');
      const done = await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished');
      for (const a of sim.agents) {
        const kinds = kindsOf(sim.seen, a.node);
        assert.equal(new Set(kinds).size, kinds.length, `${a.node} got each task once: ${kinds.join(', ')}`);
      }
      assert.deepEqual([...new Set(done.history.map((h) => h.phase))], ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished']);
    });
  }

  test('a server restart while rolling back goes on rolling back', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap.zst');
    const { body } = await sim.restore({ snapshot: 'snap.zst', mode: 'etcd' });
    const held = withOverride((_n, t) => (t.kind === 'restore-rollback' ? { state: 'running', message: 'putting the old data dir back' } : 'default'), failOn('restore-apply', 'n3'));
    await sim.until(body.id, 'rolling back', (o) => /rolling back/.test(o.message ?? '') && o.steps.some((s) => s.message === 'putting the old data dir back'), held);
    server = await server.restart();
    assert.equal((await sim.op(body.id)).phase, 'Restore');
    const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed');
    assert.equal(failed.failure?.rolledBack, true);
    assert.equal(failed.failure?.node, 'n3');
    assert.equal(sim.seen.filter((s) => s.includes('restore-rollback')).length, 3, 'one rollback per node');
  });
});
