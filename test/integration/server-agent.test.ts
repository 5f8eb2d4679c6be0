import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ClusterNode, JoinInfo, ServerEvent } from '../../src/core/api.js';
import { SimAgent, startTestServer, waitFor, type TestServer } from '../harness/server.js';

describe('server ↔ agent: registration, long-poll plans, reports', () => {
  let server: TestServer;
  let clusterId: string;
  let agent: SimAgent;
  let clock = Date.now();
  const offset = { ms: 0 };

  before(async () => {
    server = await startTestServer({ config: { reportIntervalMs: 1000 }, now: () => Date.now() + offset.ms });
    const c = await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: 'poll', kubernetesVersion: 'v1.30.4', clusterConfig: 'a: 1\n' });
    clusterId = c.body.id;
    const join = await server.api<JoinInfo>('GET', `/api/v1/clusters/${clusterId}/join`);
    agent = new SimAgent(server, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
    clock = Date.now();
  });
  after(() => server.stop());

  test('the first poll answers at once with the plan: cluster, version, config, policy, no tasks', async () => {
    const t0 = Date.now();
    const res = await agent.poll(30, null);
    assert.ok(Date.now() - t0 < 5000, 'not held');
    assert.equal(res.status, 200);
    assert.equal(res.body.apiVersion, 'etcdsnap.io/v1');
    assert.equal(res.body.node, 'n1');
    assert.deepEqual(res.body.cluster, { id: clusterId, name: 'poll' });
    assert.equal(res.body.kubernetesVersion, 'v1.30.4');
    assert.equal(res.body.clusterConfig, 'a: 1\n');
    assert.equal(res.body.policy.schedule, '0 */5 * * *');
    assert.deepEqual(res.body.tasks, []);
    assert.match(res.body.planId, /^[A-Za-z0-9_-]{32}$/);
    // A different `after` (e.g. an agent that applied an older plan) is answered at once too.
    assert.equal((await agent.poll(30, 'older-plan-id')).status, 200);
  });

  test('the planId is stable while nothing changes', async () => {
    const a = (await agent.poll(0, null)).body.planId;
    const b = (await agent.poll(0, null)).body.planId;
    assert.equal(a, b);
  });

  test('with the current planId the poll is held, then answers 204 after `wait`', async () => {
    agent.applied = (await agent.poll(0, null)).body.planId;
    const t0 = Date.now();
    const res = await agent.poll(1);
    const ms = Date.now() - t0;
    assert.equal(res.status, 204);
    assert.ok(ms >= 950 && ms < 8000, `held ${ms} ms`);
  });

  test('a policy change ends the held poll early with the new plan', async () => {
    const before = agent.applied;
    const t0 = Date.now();
    const polling = agent.poll(20);
    await new Promise((r) => setTimeout(r, 300));
    const patch = await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { policy: { retention: 9 } });
    assert.equal(patch.status, 200);
    const res = await polling;
    const ms = Date.now() - t0;
    assert.equal(res.status, 200);
    assert.notEqual(res.body.planId, before);
    assert.equal(res.body.policy.retention, 9);
    assert.ok(ms < 10_000, `answered after ${ms} ms (the wait was 20 s)`);
  });

  test('a change of version or config changes the plan too; a change elsewhere does not', async () => {
    agent.applied = (await agent.poll(0, null)).body.planId;
    const polling = agent.poll(20);
    await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { kubernetesVersion: 'v1.31.1' });
    const res = await polling;
    assert.equal(res.status, 200);
    assert.equal(res.body.kubernetesVersion, 'v1.31.1');
    agent.applied = res.body.planId;
    // Another cluster's change wakes nobody here.
    await server.api('POST', '/api/v1/clusters', { name: 'elsewhere' });
    const other = await server.api<{ id: string }>('GET', '/api/v1/clusters/elsewhere');
    const held = agent.poll(1);
    await server.api('PATCH', `/api/v1/clusters/${other.body.id}`, { policy: { retention: 2 } });
    assert.equal((await held).status, 204);
  });

  test('a report sets the node’s member status; the report answer carries the current planId', async () => {
    const res = await agent.report({ nextScheduledAt: new Date(Date.now() + 60_000).toISOString() });
    assert.equal(res.body.planId, agent.applied);
    const nodes = await server.api<ClusterNode[]>('GET', `/api/v1/clusters/${clusterId}/nodes`);
    assert.equal(nodes.body.length, 1);
    const n = nodes.body[0] as ClusterNode;
    assert.equal(n.name, 'n1');
    assert.equal(n.state, 'healthy');
    assert.equal(n.member.clientUrl, 'http://n1:2379');
    assert.equal(n.agentVersion, 'sim-1');
    assert.ok(n.lastSeenAt);
    const cluster = await server.api<{ nodes: unknown; nextScheduledSnapshotAt: string }>('GET', `/api/v1/clusters/${clusterId}`);
    assert.deepEqual(cluster.body.nodes, { total: 1, healthy: 1, connected: 1 });
  });

  test('an unhealthy member is shown with its error', async () => {
    agent.memberState = 'unhealthy';
    agent.memberError = 'context deadline exceeded';
    await agent.report();
    const n = (await server.api<ClusterNode[]>('GET', `/api/v1/clusters/${clusterId}/nodes`)).body[0] as ClusterNode;
    assert.equal(n.state, 'unhealthy');
    assert.equal(n.error, 'context deadline exceeded');
    agent.memberState = 'healthy';
    agent.memberError = undefined;
    await agent.report();
  });

  test('a node unseen for more than 3 report intervals is disconnected', async () => {
    const events: ServerEvent[] = [];
    const unsubscribe = server.app.etcdsnap.events.subscribe((e) => events.push(e));
    offset.ms = 3500;
    const n = (await server.api<ClusterNode[]>('GET', `/api/v1/clusters/${clusterId}/nodes`)).body[0] as ClusterNode;
    assert.equal(n.state, 'disconnected');
    // Time passing is news too: an open UI gets a node event.
    await waitFor('a node event', async () => events.some((e) => e.type === 'node' && e.node.state === 'disconnected'), 5000);
    unsubscribe();
    // A plan request counts as being seen.
    await agent.poll(0, null);
    const again = (await server.api<ClusterNode[]>('GET', `/api/v1/clusters/${clusterId}/nodes`)).body[0] as ClusterNode;
    assert.equal(again.state, 'healthy');
    offset.ms = 0;
    void clock;
  });

  test('a report with a wrong schema is a 400 naming the field', async () => {
    const res = await server.api<{ code: string; details: { field: string } }>('POST', '/api/v1/agent/report', { apiVersion: 'etcdsnap.io/v1', node: 'n1' }, agent.nodeToken);
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'INVALID_ARGUMENT');
    assert.match(res.body.details.field, /^body\./);
  });

  test('many held polls end promptly when the server closes', async () => {
    const extra = await startTestServer();
    const c = await extra.api<{ id: string }>('POST', '/api/v1/clusters', { name: 'closing' });
    const join = await extra.api<JoinInfo>('GET', `/api/v1/clusters/${c.body.id}/join`);
    const agents = await Promise.all(
      Array.from({ length: 20 }, async (_v, i) => {
        const a = new SimAgent(extra, { registrationToken: join.body.registrationToken, node: `m${i}` });
        await a.register();
        a.applied = (await a.poll(0, null)).body.planId;
        return a;
      }),
    );
    const polls = agents.map((a) => a.poll(60).catch((e: Error) => ({ status: -1, error: e })));
    let stopped = false;
    try {
      await waitFor('20 held polls', async () => extra.app.etcdsnap.plans.waiting === 20);
      const t0 = Date.now();
      await extra.stop();
      stopped = true;
      const results = await Promise.all(polls);
      assert.ok(Date.now() - t0 < 10_000, 'closed promptly (the polls waited 60 s)');
      for (const r of results) assert.ok(r.status === 204 || r.status === 503 || r.status === -1, String(r.status));
    } finally {
      // A failed assertion must not leave a listening server behind (the test process would never exit).
      if (!stopped) await extra.stop();
    }
  });
});
