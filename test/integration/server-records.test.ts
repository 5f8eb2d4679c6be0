import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { JoinInfo, ServerEvent, SnapshotRecord } from '../../src/core/api.js';
import type { DeleteSnapshotsTask, SnapshotReport } from '../../src/core/plans.js';
import { createS3Target, type S3Target } from '../../src/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { fakeMetadata, SimAgent, startTestServer, waitFor, type TestServer } from '../harness/server.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const HOUR = 3_600_000;

describe('snapshot records', () => {
  let server: TestServer;
  let s3: S3rverHandle;
  let clusterId: string;
  let agent: SimAgent;
  const offset = { ms: 0 };
  const events: ServerEvent[] = [];
  let firstReport: SnapshotReport[] = [];
  const list = async (): Promise<SnapshotRecord[]> => (await server.api<SnapshotRecord[]>('GET', `/api/v1/clusters/${clusterId}/snapshots`)).body;

  before(async () => {
    s3 = await startS3rver();
    await s3.createBucket('records');
    server = await startTestServer({ config: { reconcileIntervalMs: 0 }, now: () => Date.now() + offset.ms });
    server.app.etcdsnap.events.subscribe((e) => events.push(e));
    clusterId = (await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: 'records' })).body.id;
    const join = await server.api<JoinInfo>('GET', `/api/v1/clusters/${clusterId}/join`);
    agent = new SimAgent(server, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
    await agent.sync();
  });
  after(async () => {
    await server?.stop();
    await s3?.stop();
  });

  test('reported snapshots appear newest first, with storage, restore modes and metadata', async () => {
    const t = Date.now();
    firstReport = [
      agent.snapshot('etcd-snapshot-n1-1000', { createdAt: new Date(t - 2 * HOUR).toISOString(), durationMs: 1500 }),
      agent.snapshot('etcd-snapshot-n1-2000', { createdAt: new Date(t - HOUR).toISOString(), durationMs: 2500 }),
      agent.snapshot('etcd-snapshot-n1-3000', { state: 'failed', createdAt: new Date(t).toISOString(), message: 'etcd member n1 is unhealthy' }),
    ];
    await agent.report({ snapshots: firstReport });
    const records = await list();
    assert.deepEqual(
      records.map((r) => [r.name, r.state]),
      [
        ['etcd-snapshot-n1-3000', 'failed'],
        ['etcd-snapshot-n1-2000', 'successful'],
        ['etcd-snapshot-n1-1000', 'successful'],
      ],
    );
    const ok = records[1] as SnapshotRecord;
    assert.equal(ok.id, `${clusterId}.local.etcd-snapshot-n1-2000`);
    assert.equal(ok.storage, 'local');
    assert.equal(ok.node, 'n1');
    assert.equal(ok.location, 'file:///var/lib/etcdsnap-agent/snapshots/etcd-snapshot-n1-2000');
    assert.equal(ok.kubernetesVersion, 'v1.30.4');
    assert.deepEqual(ok.restoreModes, ['etcd', 'kubernetes-version', 'all']);
    assert.equal(ok.metadata?.name, 'etcd-snapshot-n1-2000');
    const failed = records[0] as SnapshotRecord;
    assert.equal(failed.message, 'etcd member n1 is unhealthy');
    assert.deepEqual(failed.restoreModes, []);
    const cluster = await server.api<{ lastSuccessfulSnapshot: { name: string } }>('GET', `/api/v1/clusters/${clusterId}`);
    assert.equal(cluster.body.lastSuccessfulSnapshot.name, 'etcd-snapshot-n1-2000');
    const metrics = (await server.api('GET', '/metrics')).text;
    assert.match(metrics, /etcdsnap_last_successful_snapshot_timestamp_seconds\{cluster="records"\} \d+/);
    assert.match(metrics, /etcdsnap_last_successful_snapshot_size_bytes\{cluster="records"\} 1000/);
    assert.match(metrics, /etcdsnap_snapshot_save_duration_seconds_count\{cluster="records",storage="local"\} 2/);
    assert.match(metrics, /etcdsnap_connected_agents\{cluster="records"\} 1/);
    const filtered = await server.api<SnapshotRecord[]>('GET', `/api/v1/clusters/${clusterId}/snapshots?state=failed`);
    assert.equal(filtered.body.length, 1);
  });

  test('a resent report is idempotent: same records, no new events', async () => {
    const before = (await list()).length;
    const seen = events.length;
    // An agent that lost the server's answer sends the same report again, after reconnecting.
    await agent.report({ snapshots: firstReport });
    await agent.report({ snapshots: firstReport.slice(0, 2) });
    assert.equal((await list()).length, before);
    assert.equal(events.filter((e, i) => i >= seen && e.type === 'snapshot').length, 0);
    const metrics = (await server.api('GET', '/metrics')).text;
    assert.match(metrics, /etcdsnap_snapshot_save_duration_seconds_count\{cluster="records",storage="local"\} 2/, 'a resend is not a new save');
  });

  test('failed records expire after a day; successful ones stay', async () => {
    offset.ms = 25 * HOUR;
    await agent.report({ snapshots: [agent.snapshot('etcd-snapshot-n1-4000', { state: 'failed', createdAt: new Date(Date.now() + offset.ms).toISOString() })] });
    assert.equal(await server.app.etcdsnap.expireFailedRecords(), 1);
    const names = (await list()).map((r) => r.name);
    assert.deepEqual(names, ['etcd-snapshot-n1-4000', 'etcd-snapshot-n1-2000', 'etcd-snapshot-n1-1000']);
    assert.ok(events.some((e) => e.type === 'snapshot' && e.change === 'delete' && e.snapshot.name === 'etcd-snapshot-n1-3000'));
    offset.ms = 0;
  });

  test('snapshots the agent deleted (retention) leave the list', async () => {
    await agent.report({ deleted: ['file:///var/lib/etcdsnap-agent/snapshots/etcd-snapshot-n1-1000'] });
    assert.ok(!(await list()).some((r) => r.name === 'etcd-snapshot-n1-1000'));
  });

  test('deleting a local snapshot goes through its node: a delete-snapshots task, then the record goes', async () => {
    const id = `${clusterId}.local.etcd-snapshot-n1-2000`;
    const res = await server.api<{ deleted: boolean; node: string; taskId: string }>('DELETE', `/api/v1/clusters/${clusterId}/snapshots/${id}`);
    assert.equal(res.status, 202);
    assert.equal(res.body.deleted, false);
    assert.equal(res.body.node, 'n1');
    const tasks = (await agent.sync()) as DeleteSnapshotsTask[];
    assert.deepEqual(tasks, [{ id: res.body.taskId, kind: 'delete-snapshots', names: ['etcd-snapshot-n1-2000'] }]);
    assert.ok((await list()).some((r) => r.id === id), 'the record stays until the agent reports');
    agent.setTask(res.body.taskId, 'succeeded');
    await agent.report({ deleted: ['file:///var/lib/etcdsnap-agent/snapshots/etcd-snapshot-n1-2000'] });
    assert.ok(!(await list()).some((r) => r.id === id));
    assert.deepEqual(await agent.sync(), [], 'the finished task left the plan');
    // A file already gone counts as deleted.
    await agent.report({ snapshots: [agent.snapshot('etcd-snapshot-n1-5000')] });
    const again = await server.api<{ taskId: string }>('DELETE', `/api/v1/clusters/${clusterId}/snapshots/${clusterId}.local.etcd-snapshot-n1-5000`);
    await agent.sync();
    agent.setTask(again.body.taskId, 'failed', 'not found', 'SNAPSHOT_NOT_FOUND');
    await agent.report();
    assert.ok(!(await list()).some((r) => r.name === 'etcd-snapshot-n1-5000'));
    const missing = await server.api<{ code: string }>('DELETE', `/api/v1/clusters/${clusterId}/snapshots/${clusterId}.local.nope`);
    assert.equal(missing.status, 404);
  });

  describe('S3 (s3rver)', () => {
    let target: S3Target;
    const put = async (t: S3Target, name: string, node: string, cluster = clusterId): Promise<void> => {
      const body = Buffer.from(`snapshot ${name}`);
      await t.put(name, Readable.from([body]), { metadata: () => fakeMetadata({ name, node, clusterId: cluster, size: body.length }) });
    };

    before(async () => {
      const settings = { ...s3.targetConfig('records'), folder: 'etcd' };
      const res = await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { policy: { s3: settings } });
      assert.equal(res.status, 200, res.text);
      target = createS3Target(settings, { clusterId });
    });
    after(() => target?.close());

    test('the S3 connection test reports every step; a wrong key id fails at the listing', async () => {
      const ok = await server.api<{ ok: boolean; steps: { step: string; ok: boolean }[] }>('POST', `/api/v1/clusters/${clusterId}/s3/test`);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.ok, true);
      assert.deepEqual(
        ok.body.steps.map((s) => s.step),
        ['list', 'write', 'read', 'delete'],
      );
      // Settings from the body; the secret falls back to the stored one.
      const bad = await server.api<{ ok: boolean; failedStep: string; error: { code: string } }>('POST', `/api/v1/clusters/${clusterId}/s3/test`, {
        s3: { ...s3.targetConfig('records'), secretAccessKey: undefined, accessKeyId: 'WRONG' },
      });
      assert.equal(bad.body.ok, false);
      assert.equal(bad.body.failedStep, 'list');
      assert.equal(bad.body.error.code, 'TARGET_ACCESS_DENIED');
    });

    test('reconciliation adds listed snapshots of this cluster only, and removes vanished ones', async () => {
      await put(target, 'etcd-snapshot-n1-6000', 'n1');
      await put(target, 'etcd-snapshot-n2-6000', 'n2');
      const stranger = createS3Target({ ...s3.targetConfig('records'), folder: 'etcd' }, { clusterId: 'c_someoneelse' });
      await put(stranger, 'etcd-snapshot-x1-6000', 'x1', 'c_someoneelse');
      stranger.close();
      // A record the agent reported but whose object is not (or no longer) in the bucket.
      await agent.report({ snapshots: [agent.snapshot('etcd-snapshot-n1-5500', { storage: 's3', bucket: 'records/etcd' })] });
      const r1 = await server.api<{ added: number; removed: number; error: unknown }>('POST', `/api/v1/clusters/${clusterId}/snapshots/reconcile`);
      assert.equal(r1.status, 200);
      assert.equal(r1.body.error, null);
      assert.equal(r1.body.added, 2);
      assert.equal(r1.body.removed, 1);
      const s3records = (await list()).filter((r) => r.storage === 's3');
      assert.deepEqual(s3records.map((r) => r.name).sort(), ['etcd-snapshot-n1-6000', 'etcd-snapshot-n2-6000']);
      const n2 = s3records.find((r) => r.node === 'n2') as SnapshotRecord;
      assert.equal(n2.location, 's3://records/etcd/etcd-snapshot-n2-6000');
      assert.equal(n2.id, `${clusterId}.s3.etcd-snapshot-n2-6000`);

      await target.delete('etcd-snapshot-n2-6000');
      const r2 = await server.api<{ added: number; removed: number }>('POST', `/api/v1/clusters/${clusterId}/snapshots/reconcile`);
      assert.equal(r2.body.removed, 1);
      assert.equal(r2.body.added, 0);
      assert.deepEqual(
        (await list()).filter((r) => r.storage === 's3').map((r) => r.name),
        ['etcd-snapshot-n1-6000'],
      );
      // A repeat changes nothing.
      const r3 = await server.api<{ added: number; updated: number; removed: number }>('POST', `/api/v1/clusters/${clusterId}/snapshots/reconcile`);
      assert.deepEqual([r3.body.added, r3.body.updated, r3.body.removed], [0, 0, 0]);
    });

    test('deleting an S3 snapshot deletes the object and the record at once', async () => {
      const id = `${clusterId}.s3.etcd-snapshot-n1-6000`;
      const res = await server.api<{ deleted: boolean }>('DELETE', `/api/v1/clusters/${clusterId}/snapshots/${id}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.deleted, true);
      assert.deepEqual(
        (await target.list()).map((s) => s.name),
        [],
      );
      assert.ok(!(await list()).some((r) => r.id === id));
    });

    test('a policy change that sets S3 triggers a reconciliation', async () => {
      await put(target, 'etcd-snapshot-n1-7000', 'n1');
      await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { policy: { s3: null } });
      await server.api('PATCH', `/api/v1/clusters/${clusterId}`, { policy: { s3: { ...s3.targetConfig('records'), folder: 'etcd' } } });
      await waitFor('reconciled record', async () => (await list()).some((r) => r.name === 'etcd-snapshot-n1-7000'));
    });
  });
});
