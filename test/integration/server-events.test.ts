import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { JoinInfo, ServerEvent } from '../../src/core/api.js';
import type { SnapshotTask } from '../../src/core/plans.js';
import { SimAgent, startTestServer, waitFor, type TestServer } from '../harness/server.js';

interface Stream {
  status: number;
  events: ServerEvent[];
  comments: string[];
  close(): void;
}

/** A minimal EventSource over node:http: collects `event:`/`data:` frames and comment lines. */
function openStream(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const stream: Stream = { status: res.statusCode ?? 0, events: [], comments: [], close: () => req.destroy() };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            if (line.startsWith('data: ')) stream.events.push(JSON.parse(line.slice(6)) as ServerEvent);
          }
        }
      });
      res.on('error', () => undefined);
      resolve(stream);
    });
    req.on('error', reject);
  });
}

describe('server-sent events', () => {
  let server: TestServer;
  let clusterId: string;
  let agent: SimAgent;

  before(async () => {
    server = await startTestServer({ config: { sseHeartbeatMs: 100 } });
    clusterId = (await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: 'live' })).body.id;
    const join = await server.api<JoinInfo>('GET', `/api/v1/clusters/${clusterId}/join`);
    agent = new SimAgent(server, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
    await agent.sync();
  });
  after(() => server.stop());

  test('without a token the stream is refused (401); a node token is refused (403)', async () => {
    const none = await openStream(`${server.url}/api/v1/events`);
    assert.equal(none.status, 401);
    none.close();
    const node = await openStream(`${server.url}/api/v1/events`, { authorization: `Bearer ${agent.nodeToken}` });
    assert.equal(node.status, 403);
    node.close();
  });

  test('a client receives operation phases, snapshot records, cluster and node changes, and heartbeats', async () => {
    const stream = await openStream(`${server.url}/api/v1/events`, { authorization: `Bearer ${server.adminToken}` });
    // EventSource cannot set headers: ?token= works too, and filters by cluster.
    const filtered = await openStream(`${server.url}/api/v1/events?clusterId=live&token=${server.adminToken}`);
    const other = await openStream(`${server.url}/api/v1/events?clusterId=elsewhere&token=${server.adminToken}`).catch(() => undefined);
    assert.equal(stream.status, 200);
    assert.equal(filtered.status, 200);
    assert.equal(other?.status, 404, 'an unknown cluster filter is refused');
    other?.close();

    const op = (await server.api<{ id: string }>('POST', `/api/v1/clusters/${clusterId}/snapshots`)).body;
    const [task] = (await agent.sync()) as SnapshotTask[];
    agent.setTask(task!.id, 'succeeded');
    await agent.report({ snapshots: [agent.snapshot('on-demand-n1-1700000000')] });
    await agent.sync();
    await waitFor('Finished event', async () => stream.events.some((e) => e.type === 'operation' && e.operation.id === op.id && e.operation.phase === 'Finished'));
    await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { policy: { retention: 3 } });
    await waitFor('cluster event', async () => stream.events.some((e) => e.type === 'cluster'));

    const phases = stream.events.filter((e): e is Extract<ServerEvent, { type: 'operation' }> => e.type === 'operation').map((e) => e.operation.phase);
    assert.deepEqual([...new Set(phases)], ['Started', 'RestartCluster', 'Finished']);
    const snap = stream.events.find((e): e is Extract<ServerEvent, { type: 'snapshot' }> => e.type === 'snapshot');
    assert.equal(snap?.snapshot.name, 'on-demand-n1-1700000000');
    assert.equal(snap?.change, 'upsert');
    assert.ok(stream.events.some((e) => e.type === 'cluster' && e.cluster.policy.retention === 3));
    await waitFor('filtered events', async () => filtered.events.some((e) => e.type === 'cluster'));
    assert.ok(filtered.events.every((e) => (e.type === 'cluster' ? e.cluster.id : e.type === 'operation' ? e.operation.clusterId : e.type === 'snapshot' ? e.snapshot.clusterId : e.node.clusterId) === clusterId));
    await waitFor('a heartbeat', async () => stream.comments.includes('heartbeat'));
    assert.equal(server.app.etcdsnap.events.size, 2);
    stream.close();
    filtered.close();
    await waitFor('streams released', async () => server.app.etcdsnap.events.size === 0);
  });

  test('closing the server ends open streams', async () => {
    const extra = await startTestServer();
    let stopped = false;
    try {
      const stream = await openStream(`${extra.url}/api/v1/events`, { authorization: `Bearer ${extra.adminToken}` });
      assert.equal(stream.status, 200);
      const t0 = Date.now();
      await extra.stop();
      stopped = true;
      assert.ok(Date.now() - t0 < 10_000, 'the open stream did not hold the server');
    } finally {
      if (!stopped) await extra.stop();
    }
  });
});
