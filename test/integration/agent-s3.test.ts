import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseS3Config } from '../../src/core/s3-config.js';
import { S3Target } from '../../src/storage/s3.js';
import { fillKubernetesLike } from '../harness/index.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';
import { agentNodes, type AgentNodes } from './agent-nodes.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * S3 in the cluster's policy: one agent (its own single-member etcd) stores every snapshot
 * locally and in a real s3rver from one stream, applies S3 retention per node, and reports a
 * failed S3 copy as a failed record next to the stored local one.
 */
describe('agent: S3 in the policy', () => {
  let s3: S3rverHandle;
  let cp: FakeControlPlane;
  let nodes: AgentNodes;
  const bucket = 'agent-backups';
  const listS3 = async (): Promise<string[]> => {
    const target = new S3Target(parseS3Config({ ...s3.targetConfig(bucket), folder: 'etcd' }), { clusterId: cp.cluster.id });
    try {
      return (await target.list()).map((s) => s.name).sort();
    } finally {
      target.close();
    }
  };

  before(async () => {
    s3 = await startS3rver();
    await s3.createBucket(bucket);
    cp = await FakeControlPlane.start({ policy: { enabled: false, compression: 'zstd', s3: { ...s3.targetConfig(bucket), folder: 'etcd' } as never } });
    nodes = await agentNodes(cp, 1, {}, 'etcdsnap-agent-s3-');
    await nodes.start(0);
    await waitFor('a healthy member', () => cp.nodes.has('node-1') && cp.lastReport('node-1')?.member.state === 'healthy', 30_000);
    await fillKubernetesLike(nodes.endpoints, { totalBytes: 512 * 1024, seed: 9 });
  });
  after(async () => {
    await nodes?.close();
    await cp?.close();
    await s3?.stop();
  });

  it('a snapshot task stores locally and in S3; both locations are reported', async () => {
    cp.addTask('node-1', { id: 's3-t1', kind: 'snapshot', operationId: 'o1' });
    await waitFor('task', () => cp.taskStatus('node-1', 's3-t1')?.state === 'succeeded');
    const reports = cp.snapshotsOf('node-1').filter((s) => s.taskId === 's3-t1');
    assert.deepEqual(reports.map((r) => r.location.slice(0, 5)).sort(), ['file:', 's3://']);
    const remote = reports.find((r) => r.location.startsWith('s3://'))!;
    const local = reports.find((r) => r.location.startsWith('file:'))!;
    assert.match(remote.location, new RegExp(`^s3://${bucket}/etcd/on-demand-node-1-\\d+\\.zst$`));
    assert.equal(remote.size, local.size);
    assert.equal(remote.metadata?.sha256, local.metadata?.sha256);
    assert.deepEqual(await listS3(), [remote.name]);
    assert.deepEqual(await nodes.files(0), [local.name]);
  });

  it('recurring snapshots: S3 retention keeps 2 of this node; the on-demand one stays', async () => {
    cp.setPolicy({ enabled: true, schedule: '@every 1s', retention: 3, s3: { ...s3.targetConfig(bucket), folder: 'etcd', retention: 2, retentionScope: 'node' } as never });
    await waitFor('2 S3 deletions', () => cp.deletedOf('node-1').filter((l) => l.startsWith('s3://')).length >= 2, 20_000);
    cp.setPolicy({ enabled: false });
    await waitFor('schedule off', () => cp.lastReport('node-1')?.planId === cp.node('node-1').plan.planId);
    await waitFor('S3 holds 2 recurring + 1 on-demand', async () => {
      const names = await listS3();
      return names.filter((n) => n.startsWith('etcd-snapshot-')).length === 2 && names.filter((n) => n.startsWith('on-demand-')).length === 1;
    });
    await waitFor('local holds 3 recurring + 1 on-demand', async () => (await nodes.files(0)).filter((n) => n.startsWith('etcd-snapshot-')).length === 3);
    assert.deepEqual(await s3.leftovers(bucket).then((l) => l.filter((x) => x.startsWith('upload'))), [], 'no unfinished upload');
  });

  it('S3 refusing the keys: the local copy is stored, the S3 copy is a failed record, the task fails with its code', async () => {
    cp.setPolicy({ s3: { ...s3.targetConfig(bucket), folder: 'etcd', accessKeyId: 'WRONG-KEY-ID' } as never });
    cp.addTask('node-1', { id: 's3-t2', kind: 'snapshot', operationId: 'o2' });
    const status = await waitFor('task failed', () => (cp.taskStatus('node-1', 's3-t2')?.state === 'failed' ? cp.taskStatus('node-1', 's3-t2') : undefined));
    assert.equal(status.code, 'TARGET_ACCESS_DENIED');
    const reports = cp.snapshotsOf('node-1').filter((s) => s.taskId === 's3-t2');
    assert.deepEqual(reports.map((r) => `${r.location.slice(0, 5)} ${r.state}`).sort(), ['file: successful', 's3:// failed']);
    const failed = reports.find((r) => r.state === 'failed')!;
    assert.equal(failed.code, 'TARGET_ACCESS_DENIED');
    assert.equal(failed.metadata, null);
    assert.ok(!JSON.stringify(cp.reports).includes(s3.secretAccessKey), 'no S3 secret in any report');
    assert.ok((await nodes.files(0)).includes(reports[0]!.name));
    assert.ok(!(await listS3()).includes(reports[0]!.name));
    assert.deepEqual(cp.invalid, []);
  });
});
