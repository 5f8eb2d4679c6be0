import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseName } from '../../src/core/names.js';
import { fillKubernetesLike } from '../harness/index.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';
import { agentNodes, type AgentNodes } from './agent-nodes.js';

/**
 * The recurring schedule on three agents with their own members: a per-second schedule,
 * retention per node (on-demand snapshots untouched), and the schedule going on while the
 * server is down — reports queued on disk and delivered when it is back, also across an agent
 * restart.
 */
describe('agent: recurring schedule, retention, server outage', () => {
  let cp: FakeControlPlane;
  let nodes: AgentNodes;
  const recurringFiles = async (i: number): Promise<string[]> => (await nodes.files(i)).filter((f) => f.startsWith('etcd-snapshot-'));
  const appliedEverywhere = (): boolean => nodes.names.every((n) => cp.lastReport(n)?.planId === cp.node(n).plan.planId);

  before(async () => {
    cp = await FakeControlPlane.start({ policy: { enabled: false, compression: 'gzip' } });
    nodes = await agentNodes(cp, 3, {}, 'etcdsnap-agent-sched-');
    await Promise.all([0, 1, 2].map((i) => nodes.start(i)));
    await waitFor('healthy members', () => nodes.names.every((n) => cp.nodes.has(n) && cp.lastReport(n)?.member.state === 'healthy'), 30_000);
    await fillKubernetesLike(nodes.endpoints, { totalBytes: 256 * 1024, seed: 5 });
  });
  after(async () => {
    await nodes?.close();
    await cp?.close();
  });

  it('a per-second schedule fires on every node; retention keeps 2 per node; on-demand snapshots are kept', async () => {
    for (const n of nodes.names) cp.addTask(n, { id: `od-${n}`, kind: 'snapshot', operationId: 'od' });
    await waitFor('on-demand snapshots', () => nodes.names.every((n) => cp.taskStatus(n, `od-${n}`)?.state === 'succeeded'));
    cp.setPolicy({ enabled: true, schedule: '*/2 * * * * *', retention: 2 });
    const t0 = Date.now();
    const recurring = (n: string) => cp.snapshotsOf(n).filter((s) => s.state === 'successful' && s.metadata?.kind === 'recurring');
    await waitFor('4 recurring snapshots and 2 deletions per node', () => nodes.names.every((n) => recurring(n).length >= 4 && cp.deletedOf(n).length >= 2), 25_000);
    console.log(`# 4 recurring snapshots per node after ${Date.now() - t0} ms`);
    const scheduled = cp.reports.filter((r) => r.report.nextScheduledAt !== null).map((r) => Date.parse(r.report.nextScheduledAt!) - r.at);
    assert.ok(scheduled.length > 0 && scheduled.every((d) => d > -1000 && d <= 2100), `nextScheduledAt within the next 2 s: ${scheduled.join(', ')}`);

    cp.setPolicy({ enabled: false });
    await waitFor('the schedule off everywhere', appliedEverywhere);
    for (const [i, n] of nodes.names.entries()) {
      const names = recurring(n).map((s) => s.name);
      for (const name of names) assert.equal((parseName(name, { node: n })?.unix ?? 1) % 2, 0, `${name} fires on even seconds`);
      assert.ok(names.every((name) => name.endsWith('.gz')));
      await waitFor(`2 recurring files on ${n}`, async () => (await recurringFiles(i)).length === 2);
      const files = await nodes.files(i);
      assert.equal(files.filter((f) => f.startsWith('on-demand-')).length, 1, 'the on-demand snapshot is never pruned by the schedule');
      // The newest two survive; everything reported and not kept was reported deleted.
      const kept = await recurringFiles(i);
      assert.deepEqual(kept, names.slice(-2).sort());
      const deleted = new Set(cp.deletedOf(n));
      for (const s of recurring(n)) {
        if (kept.includes(s.name)) continue;
        assert.ok(deleted.has(s.location), `${s.location} reported deleted`);
        assert.equal(existsSync(fileURLToPath(s.location)), false);
      }
      assert.equal(cp.lastReport(n)?.nextScheduledAt, null);
    }
    assert.deepEqual(cp.invalid, []);
  });

  it('server down: snapshots go on, reports queue on disk and arrive when it is back, across an agent restart', async () => {
    cp.setPolicy({ enabled: true, schedule: '@every 2s', retention: 3 });
    await waitFor('the new schedule applied', appliedEverywhere);
    await cp.down();
    const tDown = Date.now();
    await waitFor('2 snapshots queued per agent', () => [0, 1, 2].every((i) => nodes.agent(i).state.state.outbox.snapshots.filter((q) => q.report.state === 'successful').length >= 2), 15_000);
    const queuedBefore = nodes.agent(0).state.state.outbox.snapshots.map((q) => q.report.name);

    // node-1 restarts while the server is away: it resumes the schedule from its saved plan.
    await nodes.stop(0);
    await nodes.start(0);
    await waitFor('node-1 snapshots again after its restart, still offline', () => {
      const names = nodes.agent(0).state.state.outbox.snapshots.filter((q) => q.report.state === 'successful').map((q) => q.report.name);
      return names.some((n) => !queuedBefore.includes(n));
    }, 20_000);
    const expected = nodes.names.map((_, i) => nodes.agent(i).state.state.outbox.snapshots.map((q) => q.report.name));
    assert.ok(expected[0]!.length > queuedBefore.length);
    assert.ok(queuedBefore.every((n) => expected[0]!.includes(n)), 'the queue survived the restart');
    const downFor = Date.now() - tDown;

    await cp.up();
    const tUp = Date.now();
    await waitFor('every queue delivered', () => [0, 1, 2].every((i) => nodes.agent(i).status().queued === 0), 15_000);
    console.log(`# server down ${downFor} ms; queues delivered ${Date.now() - tUp} ms after it came back`);
    for (const [i, n] of nodes.names.entries()) {
      const got = new Set(cp.snapshotsOf(n).map((s) => `${s.name} ${s.location}`));
      const names = new Set(cp.snapshotsOf(n).map((s) => s.name));
      for (const name of expected[i]!) assert.ok(names.has(name), `${name} of ${n} reached the server`);
      assert.ok(got.size > 0);
      const offline = cp.snapshotsOf(n).filter((s) => Date.parse(s.createdAt) > tDown && Date.parse(s.createdAt) < tUp && s.state === 'successful');
      assert.ok(offline.length >= 2, `${n}: ${offline.length} snapshots taken while the server was down`);
    }
    cp.setPolicy({ enabled: false });
    await waitFor('schedule off', appliedEverywhere);
    assert.deepEqual(cp.invalid, []);
  });
});
