import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import type { JoinInfo, Operation, SnapshotRecord } from '../../src/core/api.js';
import type { SnapshotTask } from '../../src/core/plans.js';
import { SimAgent, startTestServer, waitFor, type TestServer } from '../harness/server.js';

/**
 * The one-time snapshot operation, driven by scripted agents over HTTP:
 * Started → tasks in plans → reports → RestartCluster → plan acks → Finished, and the ways it fails.
 */
describe('server operations: one-time snapshot', () => {
  let server: TestServer;
  let agents: SimAgent[];
  let clusterId: string;
  const offset = { ms: 0 };
  let n = 0;

  const op = async (id: string): Promise<Operation> => (await server.api<Operation>('GET', `/api/v1/operations/${id}`)).body;
  const phase = (id: string, want: Operation['phase']): Promise<Operation> => waitFor(`operation ${id} in ${want}`, async () => ((await op(id)).phase === want ? op(id) : undefined));
  const snapshotTasks = async (a: SimAgent): Promise<SnapshotTask[]> => (await a.sync()).filter((t): t is SnapshotTask => t.kind === 'snapshot');

  beforeEach(async () => {
    offset.ms = 0;
    server = await startTestServer({ config: { reportIntervalMs: 1000, nodeTimeoutMs: 5000, tickMs: 50 }, now: () => Date.now() + offset.ms });
    const c = await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: `ops${n++}` });
    clusterId = c.body.id;
    const join = await server.api<JoinInfo>('GET', `/api/v1/clusters/${clusterId}/join`);
    agents = ['n1', 'n2', 'n3'].map((node) => new SimAgent(server, { registrationToken: join.body.registrationToken, node }));
    for (const a of agents) {
      await a.register();
      await a.sync();
    }
  });
  afterEach(() => server.stop());
  after(() => undefined);

  test('Started → snapshot tasks in every plan → RestartCluster → every node back on its plan → Finished', async () => {
    const res = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`, { name: 'before-upgrade' });
    assert.equal(res.status, 202);
    assert.equal(res.headers.location, `/api/v1/operations/${res.body.id}`);
    const id = res.body.id;
    assert.equal(res.body.kind, 'snapshot');
    assert.equal(res.body.phase, 'Started');
    assert.deepEqual(res.body.params, { name: 'before-upgrade' });
    assert.deepEqual(
      res.body.steps.map((s) => [s.node, s.state]),
      [
        ['n1', 'pending'],
        ['n2', 'pending'],
        ['n3', 'pending'],
      ],
    );
    const cluster = await server.api<{ runningOperationId: string }>('GET', `/api/v1/clusters/${clusterId}`);
    assert.equal(cluster.body.runningOperationId, id);

    const ids = new Set<string>();
    for (const a of agents) {
      const tasks = await snapshotTasks(a);
      assert.equal(tasks.length, 1);
      const t = tasks[0] as SnapshotTask;
      assert.equal(t.operationId, id);
      assert.equal(t.base, 'before-upgrade');
      ids.add(t.id);
      a.setTask(t.id, 'running');
      await a.report();
    }
    assert.equal(ids.size, 3, 'task ids are unique per node');
    await waitFor('steps running', async () => (await op(id)).steps.every((s) => s.state === 'running'));

    for (const [i, a] of agents.entries()) {
      const t = [...ids][i] as string;
      a.setTask(t, 'succeeded', `saved before-upgrade-${a.node}-1700000000`);
      await a.report({ snapshots: [a.snapshot(`before-upgrade-${a.node}-1700000000`)] });
    }
    const restarting = await phase(id, 'RestartCluster');
    assert.ok(restarting.steps.every((s) => s.state === 'succeeded'));
    // Tasks are gone from the plans; each node applies its normal plan and says so.
    for (const a of agents) assert.deepEqual(await a.sync(), []);
    const done = await phase(id, 'Finished');
    assert.ok(done.finishedAt);
    assert.equal(done.failure, null);
    assert.deepEqual(
      done.history.map((h) => h.phase),
      ['Started', 'Started', 'RestartCluster', 'Finished'],
    );
    assert.ok(done.steps.every((s) => s.state === 'succeeded' && /normal plan/.test(s.message ?? '')));

    const records = await server.api<SnapshotRecord[]>('GET', `/api/v1/clusters/${clusterId}/snapshots`);
    assert.deepEqual(records.body.map((r) => r.node).sort(), ['n1', 'n2', 'n3']);
    const list = await server.api<Operation[]>('GET', `/api/v1/operations?clusterId=${clusterId}`);
    assert.deepEqual(
      list.body.map((o) => o.id),
      [id],
    );
    const cluster2 = await server.api<{ runningOperationId: string | null }>('GET', `/api/v1/clusters/${clusterId}`);
    assert.equal(cluster2.body.runningOperationId, null);
    const metrics = await server.api('GET', '/metrics');
    assert.match(metrics.text, /etcdsnap_operations_total\{kind="snapshot",result="Finished"\} 1/);
  });

  test('a second operation while one runs → 409 OPERATION_RUNNING naming the running one', async () => {
    const first = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    const second = await server.api<{ code: string; message: string; details: { operationId: string } }>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    assert.equal(second.status, 409);
    assert.equal(second.body.code, 'OPERATION_RUNNING');
    assert.equal(second.body.details.operationId, first.body.id);
    assert.ok(second.body.message.includes(first.body.id));
    // Deleting the cluster is refused too while it runs.
    const del = await server.api<{ code: string }>('DELETE', `/api/v1/clusters/${clusterId}`);
    assert.equal(del.status, 409);
    assert.equal(del.body.code, 'OPERATION_RUNNING');
  });

  test('a failing task → Failed naming the node and the reason; every node’s task is removed', async () => {
    const { body } = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    const tasks = await Promise.all(agents.map(async (a) => (await snapshotTasks(a))[0] as SnapshotTask));
    for (const [i, a] of agents.entries()) {
      if (a.node === 'n2') a.setTask(tasks[i]!.id, 'failed', 'etcd member n2: context deadline exceeded', 'CLUSTER_UNHEALTHY');
      else a.setTask(tasks[i]!.id, 'running');
      await a.report();
    }
    const failed = await phase(body.id, 'Failed');
    assert.deepEqual(failed.failure, { node: 'n2', code: 'CLUSTER_UNHEALTHY', message: 'Snapshot on node n2 failed: etcd member n2: context deadline exceeded', rolledBack: false });
    assert.match(failed.message ?? '', /^Started: Snapshot on node n2 failed/);
    assert.equal(failed.steps.find((s) => s.node === 'n2')?.state, 'failed');
    for (const a of agents) assert.deepEqual(await a.sync(), [], `${a.node} still has tasks`);
    // The cluster is free again.
    const again = await server.api('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    assert.equal(again.status, 202);
  });

  test('a disconnected node → Failed before any task is sent', async () => {
    offset.ms = 10_000;
    for (const a of agents.slice(0, 2)) await a.sync();
    const res = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    assert.equal(res.status, 202);
    assert.equal(res.body.phase, 'Failed', 'answered at once');
    assert.equal(res.body.failure?.node, 'n3');
    assert.equal(res.body.failure?.code, 'NODE_DISCONNECTED');
    assert.match(res.body.failure?.message ?? '', /Node n3 is disconnected/);
    for (const a of agents) assert.deepEqual(await a.sync(), []);
    const tasks = await server.app.etcdsnap.db.selectFrom('tasks').selectAll().execute();
    assert.equal(tasks.length, 0);
  });

  test('an unhealthy member → Failed naming its node; a cluster without nodes → Failed', async () => {
    agents[0]!.memberState = 'stopped';
    await agents[0]!.report();
    const res = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    assert.equal(res.body.phase, 'Failed');
    assert.equal(res.body.failure?.node, 'n1');
    assert.equal(res.body.failure?.code, 'CLUSTER_UNHEALTHY');
    assert.match(res.body.failure?.message ?? '', /member n1 on node n1 is stopped/);

    const empty = await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: `empty${n}` });
    const none = await server.api<Operation>('POST', `/api/v1/clusters/${empty.body.id}/snapshots`);
    assert.equal(none.body.phase, 'Failed');
    assert.match(none.body.failure?.message ?? '', /no registered nodes/);
  });

  test('a node that stops reporting during the snapshot → Failed after the node timeout', async () => {
    const { body } = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    for (const a of agents) {
      const [t] = await snapshotTasks(a);
      a.setTask((t as SnapshotTask).id, 'running');
      await a.report();
    }
    offset.ms = 3000;
    await agents[0]!.report();
    await agents[1]!.report();
    offset.ms = 6000;
    await agents[0]!.report();
    const failed = await phase(body.id, 'Failed');
    assert.equal(failed.failure?.node, 'n3');
    assert.equal(failed.failure?.code, 'NODE_DISCONNECTED');
    assert.match(failed.failure?.message ?? '', /has not reported for \d+ s/);
  });

  test('a server restart mid-operation resumes it and it finishes', async () => {
    const { body } = await server.api<Operation>('POST', `/api/v1/clusters/${clusterId}/snapshots`);
    const taskIds = new Map<string, string>();
    for (const a of agents) {
      const [t] = await snapshotTasks(a);
      taskIds.set(a.node, (t as SnapshotTask).id);
      a.setTask((t as SnapshotTask).id, 'running');
      await a.report();
    }
    server = await server.restart();
    for (const a of agents) a.useServer(server);
    assert.equal((await op(body.id)).phase, 'Started');
    // The plans still hold the same tasks: agents do not run them twice.
    for (const a of agents) {
      const [t] = await snapshotTasks(a);
      assert.equal(t?.id, taskIds.get(a.node));
      a.setTask(t!.id, 'succeeded');
      await a.report({ snapshots: [a.snapshot(`on-demand-${a.node}-1700000001`)] });
    }
    await phase(body.id, 'RestartCluster');
    server = await server.restart();
    for (const a of agents) a.useServer(server);
    for (const a of agents) await a.sync();
    const done = await phase(body.id, 'Finished');
    assert.deepEqual(
      done.history.map((h) => h.phase),
      ['Started', 'Started', 'RestartCluster', 'Finished'],
    );
  });
});
