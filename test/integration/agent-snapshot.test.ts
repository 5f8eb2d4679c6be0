import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SnapshotMetadata } from '../../src/core/metadata.js';
import { ManagedMember } from '../../src/agent/member.js';
import { fillKubernetesLike } from '../harness/index.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';
import { agentNodes, type AgentNodes } from './agent-nodes.js';

/**
 * Three agents, each running its own etcd member of one 3-member cluster, against a fake
 * control plane: one-time snapshot tasks, restarts, delete tasks, re-registration, member
 * supervision, and a snapshot refused on an unhealthy cluster.
 */
describe('agent: snapshot tasks on a 3-member managed cluster', () => {
  let cp: FakeControlPlane;
  let nodes: AgentNodes;
  const healthy = (node: string): boolean => cp.nodes.has(node) && cp.lastReport(node)?.member.state === 'healthy';

  before(async () => {
    cp = await FakeControlPlane.start({ policy: { enabled: false, compression: 'zstd' } });
    nodes = await agentNodes(cp, 3);
    await Promise.all([0, 1, 2].map((i) => nodes.start(i)));
    await waitFor('3 registered agents reporting a healthy member', () => nodes.names.every(healthy), 30_000);
    await fillKubernetesLike(nodes.endpoints, { totalBytes: 1024 * 1024, seed: 3 });
  });
  after(async () => {
    await nodes?.close();
    await cp?.close();
  });

  it('registers, receives its plan and reports member status', () => {
    for (const name of nodes.names) {
      const n = cp.node(name);
      assert.equal(n.registrations, 1);
      assert.equal(n.member.name, name);
      const r = cp.lastReport(name)!;
      assert.equal(r.planId, n.plan.planId);
      assert.match(r.member.etcdVersion ?? '', /^3\.\d+\.\d+/);
      assert.ok((r.member.revision ?? 0) >= 1 && (r.member.dbSize ?? 0) > 0);
      assert.equal(r.nextScheduledAt, null, 'the policy has the schedule off');
    }
    assert.deepEqual(cp.invalid, []);
  });

  it('a snapshot task on 3 agents → 3 files, reports with metadata, task succeeded', async () => {
    const t0 = Date.now();
    for (const name of nodes.names) cp.addTask(name, { id: `op1-${name}`, kind: 'snapshot', operationId: 'op1' });
    const elapsed = await Promise.all(
      nodes.names.map(async (name) => {
        await waitFor(`task op1 on ${name}`, () => cp.taskStatus(name, `op1-${name}`)?.state === 'succeeded');
        return Date.now() - t0;
      }),
    );
    console.log(`# task in plan → succeeded reported on all 3 nodes: ${Math.max(...elapsed)} ms (per node ${elapsed.join(', ')} ms)`);
    for (const [i, name] of nodes.names.entries()) {
      const files = await nodes.files(i);
      assert.equal(files.length, 1, files.join(', '));
      assert.match(files[0]!, new RegExp(`^on-demand-${name}-\\d+\\.zst$`));
      const snaps = cp.snapshotsOf(name);
      assert.equal(snaps.length, 1);
      const s = snaps[0]!;
      assert.equal(s.state, 'successful');
      assert.equal(s.taskId, `op1-${name}`);
      assert.equal(fileURLToPath(s.location), join(nodes.configs[i]!.snapshotDir, files[0]!));
      assert.equal(s.size, (await stat(fileURLToPath(s.location))).size);
      const m = s.metadata!;
      assert.equal(m.kind, 'on-demand');
      assert.deepEqual(m.cluster, cp.cluster);
      assert.equal(m.kubernetesVersion, 'v1.30.4+rke2r1');
      assert.equal(m.clusterConfig, 'cni: canal\n');
      assert.equal(m.codec, 'zstd');
      assert.equal(m.etcd.memberCount, 3);
      assert.ok((m.summary?.keys ?? 0) > 0);
      const sidecar = JSON.parse(await readFile(join(nodes.configs[i]!.snapshotDir, '.metadata', `${files[0]}.json`), 'utf8')) as SnapshotMetadata;
      assert.equal(sidecar.sha256, m.sha256);
      const status = cp.taskStatus(name, `op1-${name}`)!;
      assert.ok(status.finishedAt && status.startedAt <= status.finishedAt);
      assert.match(status.message ?? '', /stored at file:\/\//);
    }
  });

  it('a restarted agent does not repeat a finished task; it re-reports the result until the plan drops it', async () => {
    const before = await nodes.files(0);
    const reportsBefore = cp.reportsOf('node-1').length;
    await nodes.stop(0);
    await nodes.start(0);
    await waitFor('a report of the restarted agent with a healthy member', () => cp.reportsOf('node-1').length > reportsBefore + 1 && healthy('node-1'), 30_000);
    const again = cp.reportsOf('node-1').slice(reportsBefore);
    assert.ok(again.every((r) => r.tasks.some((t) => t.id === 'op1-node-1' && t.state === 'succeeded')), 'the finished status is reported again');
    // At-least-once delivery may repeat an earlier report entry, never a new snapshot.
    const known = new Set(cp.reportsOf('node-1').slice(0, reportsBefore).flatMap((r) => r.snapshots.map((x) => x.location)));
    assert.ok(again.every((r) => r.snapshots.every((x) => known.has(x.location))), 'no second snapshot');
    assert.deepEqual(await nodes.files(0), before);
    assert.equal(cp.node('node-1').registrations, 1, 'the node token was kept');

    const n = cp.reportsOf('node-1').length;
    cp.removeTask('node-1', 'op1-node-1');
    await waitFor('a report without the dropped task', () => cp.reportsOf('node-1').slice(n).some((r) => r.planId === cp.node('node-1').plan.planId && r.tasks.length === 0));
  });

  it('a delete-snapshots task deletes files and metadata and reports the locations; a missing name counts as deleted', async () => {
    const [file] = await nodes.files(1);
    const dir = nodes.configs[1]!.snapshotDir;
    cp.addTask('node-2', { id: 'del1-node-2', kind: 'delete-snapshots', names: [file!, 'on-demand-node-2-1.zst'] });
    await waitFor('delete task', () => cp.taskStatus('node-2', 'del1-node-2')?.state === 'succeeded');
    assert.deepEqual(await nodes.allEntries(1), []);
    const deleted = cp.deletedOf('node-2');
    assert.ok(deleted.includes(`file://${join(dir, file!)}`), deleted.join(', '));
    assert.ok(deleted.includes(`file://${join(dir, 'on-demand-node-2-1.zst')}`));
  });

  it('registers again when the server refuses the node token', async () => {
    cp.revokeTokens();
    const revokedAt = Date.now();
    // Only accepted reports are recorded: one after the revocation proves the new token works.
    await waitFor('every agent registered a second time and reports again', () =>
      nodes.names.every((name) => cp.node(name).registrations === 2 && cp.reports.some((r) => r.node === name && r.at > revokedAt)),
    );
  });

  it('restarts a managed member that dies', async () => {
    const member = nodes.agent(2).member as ManagedMember;
    const pid = member.process!.pid;
    process.kill(pid, 'SIGKILL');
    await waitFor('a new member process', () => member.process && member.process.pid !== pid, 15_000);
    await waitFor('node-3 healthy again', async () => (await member.status()).state === 'healthy', 20_000);
  });

  it('a stopped member: snapshot tasks fail with CLUSTER_UNHEALTHY naming it, nothing written', async () => {
    await nodes.stop(2);
    const entries = await Promise.all([0, 1].map((i) => nodes.allEntries(i)));
    for (const name of ['node-1', 'node-2']) cp.addTask(name, { id: `op2-${name}`, kind: 'snapshot', operationId: 'op2' });
    for (const [i, name] of ['node-1', 'node-2'].entries()) {
      const status = await waitFor(`task op2 on ${name} failed`, () => (cp.taskStatus(name, `op2-${name}`)?.state === 'failed' ? cp.taskStatus(name, `op2-${name}`) : undefined));
      assert.equal(status.code, 'CLUSTER_UNHEALTHY');
      assert.match(status.message ?? '', /node-3/);
      const failed = cp.snapshotsOf(name).filter((s) => s.taskId === `op2-${name}`);
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.state, 'failed');
      assert.equal(failed[0]!.code, 'CLUSTER_UNHEALTHY');
      assert.equal(failed[0]!.metadata, null);
      assert.match(failed[0]!.location, new RegExp(`^file://.*/on-demand-${name}-\\d+\\.zst$`));
      assert.deepEqual(await nodes.allEntries(i), entries[i], 'no file, no .part, no metadata');
    }
    const r = cp.lastReport('node-1')!;
    assert.equal(r.member.state, 'healthy', 'its own member is fine; the cluster is not');
    assert.deepEqual(cp.invalid, []);
  });
});
