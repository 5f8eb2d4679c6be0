import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { after, before, describe, test } from 'node:test';
import type { Cluster, Operation, SnapshotRecord } from '../../src/core/api.js';
import type { RestoreApplyTask, RestoreCleanupTask, RestoreFetchTask, RestoreFinishTask, RestorePrepareTask, RestoreStartTask, Task } from '../../src/core/plans.js';
import { startTestServer, waitFor, type TestServer } from '../harness/server.js';
import { HASH, kindsOf, KEYS, REVISION, simCluster, success, summarized, withOverride } from './server-restore-sim.js';

/**
 * The server side of a whole-cluster restore, driven by scripted agents over HTTP: the phases
 * in order with their tasks and steps, the refusals before anything starts, the modes, the
 * verification of the restored members, and the choice of the source.
 */
describe('server restore: phases, refusals, modes, verification, source', () => {
  let server: TestServer;
  const offset = { ms: 0 };
  const get = (): TestServer => server;

  before(async () => {
    server = await startTestServer({ config: { reportIntervalMs: 1000, nodeTimeoutMs: 5000, tickMs: 50 }, now: () => Date.now() + offset.ms });
  });
  after(() => server.stop());

  const operations = async (clusterId: string): Promise<Operation[]> => (await server.api<Operation[]>('GET', `/api/v1/operations?clusterId=${clusterId}`)).body;
  const records = async (id: string): Promise<SnapshotRecord[]> => (await server.api<SnapshotRecord[]>('GET', `/api/v1/clusters/${id}/snapshots`)).body;
  const cluster = async (id: string): Promise<Cluster> => (await server.api<Cluster>('GET', `/api/v1/clusters/${id}`)).body;

  test('Started → Shutdown → Restore → RestartCluster → Finished: tasks in order, steps, history, plans clean afterwards', async () => {
    const sim = await simCluster(get);
    await sim.record('n2', 'snap-n2-1.zst', { metadata: summarized() });
    const res = await sim.restore({ snapshot: 'snap-n2-1.zst', mode: 'etcd' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id;
    assert.equal(res.body.kind, 'restore');
    assert.equal(res.body.phase, 'Started');
    assert.deepEqual(res.body.params, { snapshot: 'snap-n2-1.zst', mode: 'etcd' });
    assert.match(res.body.history.map((h) => h.message).join('\n'), /local copy snap-n2-1\.zst on n2/);
    assert.deepEqual(
      res.body.steps.map((s) => [s.node, s.state]),
      [
        ['n1', 'pending'],
        ['n2', 'pending'],
        ['n3', 'pending'],
      ],
    );

    // The holder is the init node: it alone gets restore-prepare, with a fresh transfer token.
    const plans = new Map<string, Task[]>();
    for (const a of sim.agents) plans.set(a.node, await a.sync());
    assert.deepEqual(plans.get('n1'), []);
    const prep = plans.get('n2')?.[0] as RestorePrepareTask;
    assert.equal(prep.kind, 'restore-prepare');
    assert.deepEqual(prep.source, { storage: 'local', name: 'snap-n2-1.zst', sha256: (await records(sim.id))[0]?.metadata?.sha256 });
    assert.match(prep.transferToken, /^[A-Za-z0-9_-]{43}$/);

    // Progress messages of a running task show in the node's step.
    let hold = true;
    const script = withOverride((node, task) => {
      if (task.kind === 'restore-fetch' && node === 'n3' && hold) return { state: 'running', message: 'downloading 412/1024 MiB from n2' };
      return 'default';
    });
    const downloading = await sim.until(id, 'n3 downloading', (o) => o.steps.some((s) => s.node === 'n3' && s.state === 'running' && s.message === 'downloading 412/1024 MiB from n2'), script);
    assert.equal(downloading.phase, 'Started', 'nothing is stopped before every node has the file');
    const fetch = sim.agent('n3').plan?.tasks.find((t) => t.kind === 'restore-fetch') as RestoreFetchTask;
    assert.deepEqual(fetch.source, { url: 'https://n2:9443', certSha256: (success('n2', prep)?.result as { transferCertSha256: string }).transferCertSha256, token: prep.transferToken, node: 'n2' });
    assert.equal(fetch.rawSize, 4096);
    hold = false;

    // The transfer token goes to agents in plans only: not in the API, not in clear in any file.
    const opText = JSON.stringify((await server.api('GET', `/api/v1/operations/${id}`)).body);
    assert.ok(!opText.includes(prep.transferToken), 'the operation view never shows the transfer token');
    await sql`PRAGMA wal_checkpoint(FULL)`.execute(server.app.etcdsnap.db);
    for (const f of await readdir(server.dataDir, { recursive: true })) {
      const bytes = await readFile(join(server.dataDir, f)).catch(() => Buffer.alloc(0));
      assert.equal(bytes.includes(prep.transferToken), false, `${f} holds the transfer token in clear`);
    }

    const done = await sim.until(id, 'Finished', (o) => o.phase === 'Finished');
    assert.deepEqual(
      [...new Set(done.history.map((h) => h.phase))],
      ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'],
    );
    assert.deepEqual(kindsOf(sim.seen, 'n2'), ['restore-prepare', 'restore-stop', 'restore-apply', 'restore-start', 'restore-finish', 'restore-cleanup']);
    for (const n of ['n1', 'n3']) assert.deepEqual(kindsOf(sim.seen, n), ['restore-fetch', 'restore-stop', 'restore-apply', 'restore-start', 'restore-finish', 'restore-cleanup']);
    // Phase by phase: no kind appears before every node finished the previous one.
    const order = ['restore-prepare', 'restore-fetch', 'restore-stop', 'restore-apply', 'restore-start', 'restore-finish', 'restore-cleanup'];
    const firstIdx = (k: string): number => sim.seen.findIndex((s) => s.split(' ')[1] === k);
    const lastIdx = (k: string): number => sim.seen.map((s) => s.split(' ')[1]).lastIndexOf(k);
    for (let i = 1; i < order.length; i++) assert.ok(lastIdx(order[i - 1] as string) < firstIdx(order[i] as string), `${order[i - 1]} all before ${order[i]}`);

    assert.match(done.message ?? '', /^restored snap-n2-1\.zst \(mode etcd\) on n1, n2, n3 at revision 42 \(100 keys\) in [\d.]+ s \(Started [\d.]+ s, Shutdown [\d.]+ s, Restore [\d.]+ s, RestartCluster [\d.]+ s\)$/);
    assert.ok(done.steps.every((s) => s.state === 'succeeded'), JSON.stringify(done.steps));
    const notes = done.history.map((h) => h.message).join('\n');
    assert.match(notes, /n2: snapshot staged and verified \(revision 42/);
    assert.match(notes, /n1: fetch done/);
    assert.match(notes, new RegExp(`new cluster token etcdsnap-${id}; initial cluster n1=http://n1:2380,n2=http://n2:2380,n3=http://n3:2380`));
    assert.match(notes, /verified: every member has hash 24301 and 100 keys at revision 42, as the snapshot's metadata says/);
    assert.equal(done.failure, null);
    assert.equal((await cluster(sim.id)).runningOperationId, null);
    for (const a of sim.agents) assert.deepEqual(await a.sync(), [], `${a.node}'s plan is back to normal`);
  });

  test('the tasks carry what the agents need: apply (member, initial cluster, token), start (revision, timeout), finish (version, config, keep days)', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'snap-a.zst');
    const { body } = await sim.restore({ snapshot: 'snap-a.zst', mode: 'etcd' });
    const tasks = new Map<string, Task>();
    await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished', (node, task, cur) => {
      tasks.set(`${node} ${task.kind}`, task);
      return success(node, task, cur);
    });
    const apply = tasks.get('n3 restore-apply') as RestoreApplyTask;
    assert.equal(apply.memberName, 'n3');
    assert.equal(apply.peerUrl, 'http://n3:2380');
    assert.equal(apply.initialCluster, 'n1=http://n1:2380,n2=http://n2:2380,n3=http://n3:2380');
    assert.equal(apply.initialClusterToken, `etcdsnap-${body.id}`);
    assert.equal((tasks.get('n1 restore-apply') as RestoreApplyTask).initialClusterToken, apply.initialClusterToken);
    const start = tasks.get('n2 restore-start') as RestoreStartTask;
    assert.equal(start.revision, REVISION);
    assert.equal(start.timeoutMs, 180_000);
    const finish = tasks.get('n2 restore-finish') as RestoreFinishTask;
    assert.deepEqual([finish.kubernetesVersion, finish.clusterConfig], ['v1.31.0', 'kind: Later\n']);
    const cleanup = tasks.get('n2 restore-cleanup') as RestoreCleanupTask;
    assert.equal(cleanup.keepOldDataDays, 0, 'cleanup (after every node finished) removes the old data dir');
    assert.equal(new Set([...tasks.values()].map((t) => t.id)).size, tasks.size, 'ids unique per node and kind');
    const done = await sim.op(body.id);
    assert.match(done.history.map((h) => h.message).join('\n'), /key count not compared with the metadata: the snapshot has no content summary/);
  });

  test('refused before anything starts: unknown, failed, mode not allowed, agent disconnected, no nodes, another operation — no operation created', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'nometa.zst', { metadata: null });
    await sim.record('n1', 'noconfig.zst', { metadata: { clusterConfig: null } });
    await sim.record('n1', 'broken.zst', { state: 'failed' });
    await sim.record('n1', 'good.zst');
    type Err = { code: string; message: string; details?: Record<string, unknown> };
    const refuse = async (body: Record<string, unknown>, status: number, code: string): Promise<Err> => {
      const r = await sim.restore(body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, code);
      return r.body as unknown as Err;
    };
    const missing = await refuse({ snapshot: 'nope.zst', mode: 'etcd' }, 404, 'SNAPSHOT_NOT_FOUND');
    assert.match(missing.message, /no snapshot "nope\.zst": list them with "etcdsnap snapshot ls restore\d+"/);
    await refuse({ snapshot: 'good.zst', mode: 'etcd', storage: 's3' }, 404, 'SNAPSHOT_NOT_FOUND');
    assert.match((await refuse({ snapshot: 'broken.zst', mode: 'etcd' }, 409, 'SNAPSHOT_FAILED')).message, /failed/);
    const nometa = await refuse({ snapshot: 'nometa.zst', mode: 'kubernetes-version' }, 422, 'RESTORE_MODE_NOT_ALLOWED');
    assert.match(nometa.message, /it has no metadata\. Modes it allows: etcd\.$/);
    const noconfig = await refuse({ snapshot: 'noconfig.zst', mode: 'all' }, 422, 'RESTORE_MODE_NOT_ALLOWED');
    assert.match(noconfig.message, /no cluster config\. Modes it allows: etcd, kubernetes-version\./);
    assert.deepEqual(noconfig.details?.allowed, ['etcd', 'kubernetes-version']);
    await refuse({ snapshot: 'good.zst', mode: 'everything' }, 400, 'INVALID_ARGUMENT');
    assert.equal((await server.api('POST', `/api/v1/clusters/${sim.id}/restores`, { snapshot: 'good.zst', mode: 'etcd' }, null)).status, 401);

    // n3's agent goes away.
    offset.ms = 10_000;
    for (const a of sim.agents.slice(0, 2)) await a.report();
    const down = await refuse({ snapshot: 'good.zst', mode: 'etcd' }, 503, 'NODE_DISCONNECTED');
    assert.match(down.message, /node n3 is not connected/);
    await sim.agent('n3').report();
    offset.ms = 0;
    for (const a of sim.agents) await a.report();

    const empty = await simCluster(get, []);
    const none = await empty.restore({ snapshot: 'good.zst', mode: 'etcd' });
    assert.equal(none.status, 404, 'another cluster’s snapshot is not found');
    assert.equal((await operations(sim.id)).length, 0, 'no operation was created');

    const snap = await server.api<Operation>('POST', `/api/v1/clusters/${sim.id}/snapshots`);
    const busy = await refuse({ snapshot: 'good.zst', mode: 'etcd' }, 409, 'OPERATION_RUNNING');
    assert.equal(busy.details?.operationId, snap.body.id);
    assert.deepEqual((await operations(sim.id)).map((o) => o.kind), ['snapshot']);
  });

  test('members down are no reason to refuse (disaster recovery); a cluster without nodes is refused', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'dr.zst');
    for (const a of sim.agents) {
      a.memberState = 'stopped';
      await a.report();
    }
    const res = await sim.restore({ snapshot: 'dr.zst', mode: 'etcd' });
    assert.equal(res.status, 202);
    await sim.until(res.body.id, 'Finished', (o) => o.phase === 'Finished');

    const other = await simCluster(get, ['m1']);
    await other.record('m1', 'x.zst');
    await server.api('DELETE', `/api/v1/clusters/${other.id}/nodes/${other.agent('m1').nodeId}`);
    const r = await other.restore({ snapshot: 'x.zst', mode: 'etcd' });
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'CLUSTER_UNHEALTHY');
  });

  test('mode all: the snapshot’s version and config become the cluster’s (plans carry them) before the members stop, and finish gets them', async () => {
    const sim = await simCluster(get);
    await sim.record('n1', 'full.zst', { metadata: { kubernetesVersion: 'v1.30.4', clusterConfig: 'kind: Snapshot\n' } });
    const { body } = await sim.restore({ snapshot: 'full.zst', mode: 'all' });
    let finish: RestoreFinishTask | undefined;
    const stopping = await sim.until(body.id, 'Shutdown', (o) => o.phase === 'Shutdown', withOverride((_n, t) => (t.kind === 'restore-stop' ? undefined : 'default')));
    assert.match(stopping.history.map((h) => h.message).join('\n'), /mode all: Kubernetes version v1\.30\.4 and the snapshot's cluster config/);
    const c = await cluster(sim.id);
    assert.deepEqual([c.kubernetesVersion, c.clusterConfig], ['v1.30.4', 'kind: Snapshot\n']);
    await sim.agent('n2').sync();
    assert.deepEqual([sim.agent('n2').plan?.kubernetesVersion, sim.agent('n2').plan?.clusterConfig], ['v1.30.4', 'kind: Snapshot\n']);
    await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished', (node, task, cur) => {
      if (task.kind === 'restore-finish') finish = task;
      return success(node, task, cur);
    });
    assert.deepEqual([finish?.kubernetesVersion, finish?.clusterConfig], ['v1.30.4', 'kind: Snapshot\n']);

    const sim2 = await simCluster(get);
    await sim2.record('n1', 'kv.zst', { metadata: { kubernetesVersion: 'v1.29.1', clusterConfig: 'kind: Old\n' } });
    const kv = await sim2.restore({ snapshot: 'kv.zst', mode: 'kubernetes-version' });
    await sim2.until(kv.body.id, 'Finished', (o) => o.phase === 'Finished');
    const c2 = await cluster(sim2.id);
    assert.deepEqual([c2.kubernetesVersion, c2.clusterConfig], ['v1.29.1', 'kind: Later\n'], 'kubernetes-version leaves the config');
  });

  test('verification: members that differ in hash, key count or from the metadata → RESTORE_VERIFY_FAILED naming the node, rolled back', async () => {
    const cases: { name: string; result: (node: string) => Record<string, number>; node: string; re: RegExp }[] = [
      { name: 'hash', result: (n) => ({ revision: 43, hashKv: n === 'n3' ? 7 : HASH, keys: KEYS }), node: 'n3', re: /hash of the keyspace at revision 42: n1 24301, n2 24301, n3 7/ },
      { name: 'keys', result: (n) => ({ revision: 43, hashKv: HASH, keys: n === 'n1' ? 99 : KEYS }), node: 'n1', re: /key count at revision 42: n1 99, n2 100, n3 100/ },
      { name: 'metadata', result: () => ({ revision: 43, hashKv: HASH, keys: 90 }), node: 'n1', re: /Every member has 90 keys at revision 42, but the snapshot's metadata says 100/ },
      { name: 'revision', result: (n) => ({ revision: n === 'n2' ? 41 : 43, hashKv: HASH, keys: KEYS }), node: 'n2', re: /n2 is at revision 41, below the snapshot's revision 42/ },
    ];
    for (const c of cases) {
      const sim = await simCluster(get);
      await sim.record('n1', `v-${c.name}.zst`, { metadata: summarized() });
      const { body } = await sim.restore({ snapshot: `v-${c.name}.zst`, mode: 'etcd' });
      const failed = await sim.until(body.id, 'Failed', (o) => o.phase === 'Failed', withOverride((node, t) => (t.kind === 'restore-start' ? { state: 'succeeded', result: c.result(node) } : 'default')));
      assert.equal(failed.failure?.code, 'RESTORE_VERIFY_FAILED', c.name);
      assert.equal(failed.failure?.node, c.node, c.name);
      assert.match(failed.failure?.message ?? '', c.re);
      assert.equal(failed.failure?.rolledBack, true);
      assert.ok(!kindsOf(sim.seen, 'n1').includes('restore-finish'), 'nothing is finished after a failed verification');
      assert.ok(sim.agents.every((a) => kindsOf(sim.seen, a.node).at(-1) === 'restore-rollback'));
    }
  });

  test('source: the holder gone → the S3 copy with the same sha256, read by the first node; a holder whose copy cannot be read → retried once from S3', async () => {
    const sim = await simCluster(get);
    await sim.record('n2', 'held.zst');
    await sim.record('n2', 'held.zst', { storage: 's3' });
    await server.api('DELETE', `/api/v1/clusters/${sim.id}/nodes/${sim.agent('n2').nodeId}`);
    sim.agents.splice(1, 1);
    const { body, status } = await sim.restore({ snapshot: 'held.zst', mode: 'etcd' });
    assert.equal(status, 202, JSON.stringify(body));
    await sim.agent('n1').sync();
    const prep = sim.agent('n1').plan?.tasks[0] as RestorePrepareTask;
    assert.equal(prep.kind, 'restore-prepare');
    assert.equal(prep.source.storage, 's3');
    assert.match(body.history.map((h) => h.message).join('\n'), /S3 copy held\.zst, read by n1: .*the holder of the local copy, n2, is gone or not connected/);
    await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished');

    // No copy anywhere but on the removed node → refused.
    await sim.record('n1', 'gone.zst');
    await server.api('DELETE', `/api/v1/clusters/${sim.id}/nodes/${sim.agent('n1').nodeId}`);
    const refused = await sim.restore({ snapshot: 'gone.zst', mode: 'etcd' });
    assert.equal(refused.body.code, 'SNAPSHOT_NOT_FOUND');
    assert.match(refused.body.message ?? '', /stored on node n1, which is no longer in the cluster/);

    const sim2 = await simCluster(get);
    await sim2.record('n3', 'flaky.zst');
    await sim2.record('n3', 'flaky.zst', { storage: 's3' });
    const r = await sim2.restore({ snapshot: 'flaky.zst', mode: 'etcd' });
    const prepared: RestorePrepareTask[] = [];
    const done = await sim2.until(r.body.id, 'Finished', (o) => o.phase === 'Finished', (node, task, cur) => {
      if (task.kind === 'restore-prepare') prepared.push(task);
      if (task.kind === 'restore-prepare' && task.source.storage === 'local') return { state: 'failed', code: 'SNAPSHOT_CHECKSUM_MISMATCH', message: 'sha256 of flaky.zst differs' };
      return success(node, task, cur);
    });
    assert.deepEqual(
      prepared.map((p) => [p.source.storage, p.source.name]),
      [
        ['local', 'flaky.zst'],
        ['s3', 'flaky.zst'],
      ],
    );
    assert.match(done.history.map((h) => h.message).join('\n'), /getting the snapshot on n3 failed \(SNAPSHOT_CHECKSUM_MISMATCH: sha256 of flaky\.zst differs\); retrying once from the S3 copy flaky\.zst, read by n1/);
  });

  test('an S3 snapshot is read by the current init node: the first connected node by registration', async () => {
    const sim = await simCluster(get);
    await sim.record('n3', 's3only.zst', { storage: 's3' });
    offset.ms = 10_000;
    for (const a of sim.agents) await a.report();
    offset.ms = 0;
    const { body } = await sim.restore({ snapshot: 's3only.zst', mode: 'etcd', storage: 's3' });
    assert.match(body.history.map((h) => h.message).join('\n'), /S3 copy s3only\.zst, read by n1/);
    await waitFor('prepare on n1', async () => (await sim.agent('n1').sync()).some((t) => t.kind === 'restore-prepare'));
    await sim.until(body.id, 'Finished', (o) => o.phase === 'Finished');
  });
});
