import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Cluster, Operation, SnapshotRecord } from '../../src/core/api.js';
import { dumpAll, fillKubernetesLike, tempDir, type Dump } from '../harness/index.js';
import { assertSameData, cliJson, clusterView, dumpMembers, healthyNodes, mutate, phasesOf, until } from '../harness/restore-e2e.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { startStack, type Stack } from '../harness/stack.js';

const V_SNAPSHOT = 'v1.30.4+rke2r1';
const CONFIG_SNAPSHOT = 'cni: canal\nwrite-kubeconfig-mode: "0600"\n';
const V_LATER = 'v1.31.2+rke2r1';
const CONFIG_LATER = 'cni: cilium\n';

/**
 * Restores end to end from the real CLI: server, three agents each supervising its etcd member,
 * and an S3 server over HTTPS. Every restore starts from data changed after the snapshot (keys
 * added, changed and deleted; the cluster's version and config changed) and must end with every
 * member holding exactly the snapshot's keys and values, and the version and config the mode says.
 */
describe('restore: the three modes, S3, a replaced holder (real processes)', () => {
  let dir: string;
  let stack: Stack;
  let s3: S3rverHandle;
  let base: SnapshotRecord;
  let atSnapshot: Dump;

  const endpoints = (): string[] => stack.nodes.map((n) => n.clientUrl);
  const records = (): Promise<SnapshotRecord[]> => cliJson<SnapshotRecord[]>(stack, ['snapshot', 'ls', 'prod']);
  const setLater = async (): Promise<void> => {
    const file = join(dir, 'config-later.yaml');
    await writeFile(file, CONFIG_LATER);
    const r = await stack.cli(['cluster', 'edit', 'prod', '--kubernetes-version', V_LATER, '--cluster-config', file]);
    assert.equal(r.code, 0, r.stderr);
  };
  const clusterConfig = async (): Promise<{ version: string | null; config: string | null }> => {
    const c = await cliJson<Cluster & { clusterConfig?: string | null }>(stack, ['cluster', 'show', 'prod']);
    return { version: c.kubernetesVersion, config: c.clusterConfig ?? null };
  };
  /** `snapshot restore … --yes --wait`: the final operation (from `operation show`) and the CLI's result. */
  const restore = async (name: string, mode: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string; op: Operation }> => {
    const r = await stack.cli(['snapshot', 'restore', 'prod', name, '--mode', mode, '--yes', '--wait', ...extra]);
    const ops = await cliJson<Operation[]>(stack, ['operation', 'ls', 'prod']);
    const op = ops.filter((o) => o.kind === 'restore').sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0] as Operation;
    return { ...r, op };
  };
  const noOldDataDirs = async (): Promise<void> => {
    for (const n of stack.nodes) {
      const left = (await readdir(n.dataDir)).filter((f) => f.includes('pre-restore'));
      assert.deepEqual(left, [], `old data dirs are removed after Finished on ${n.name}`);
    }
  };

  before(async () => {
    dir = await tempDir('etcdsnap-e2e-restore-');
    s3 = await startS3rver({ https: true });
    await s3.createBucket('backups');
    const caFile = join(dir, 's3-ca.pem');
    await writeFile(caFile, s3.ca as string);
    stack = await startStack({ dir, nodes: 3 });
    await stack.join('prod', [
      '--kubernetes-version', V_SNAPSHOT, '--no-enabled',
      '--s3', '--s3-bucket', 'backups', '--s3-endpoint', s3.endpoint, '--s3-endpoint-ca', caFile, '--s3-force-path-style',
      '--s3-folder', 'prod', '--s3-access-key', s3.accessKeyId, '--s3-secret-key', s3.secretAccessKey,
    ]);
    await healthyNodes(stack, 'prod');
    await fillKubernetesLike(endpoints(), { totalBytes: 2 * 1024 * 1024 });
  });
  after(async () => {
    await stack?.stop();
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a mode the snapshot does not allow before anything starts (no config in it → not "all")', async () => {
    const saved = await stack.cli(['snapshot', 'save', 'prod', '--wait', '--name', 'noconfig']);
    assert.equal(saved.code, 0, saved.stderr);
    const rec = (await records()).find((r) => r.name.startsWith('noconfig-node-1-') && r.storage === 'local') as SnapshotRecord;
    assert.ok(rec, 'the one-time snapshot is listed');
    assert.deepEqual(rec.restoreModes, ['etcd', 'kubernetes-version']);
    const before = (await cliJson<Operation[]>(stack, ['operation', 'ls', 'prod'])).length;
    const r = await stack.cli(['snapshot', 'restore', 'prod', rec.name, '--mode', 'all', '--yes']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /RESTORE_MODE_NOT_ALLOWED/);
    assert.match(r.stderr, /kubernetes-version/, 'the message lists the modes it allows');
    const missing = await stack.cli(['snapshot', 'restore', 'prod', 'no-such-snapshot.zst', '--mode', 'etcd', '--yes']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /SNAPSHOT_NOT_FOUND/);
    assert.equal((await cliJson<Operation[]>(stack, ['operation', 'ls', 'prod'])).length, before, 'no operation was created');
  });

  it('takes the snapshot everything is restored to (with version and config)', async () => {
    const file = join(dir, 'config-snapshot.yaml');
    await writeFile(file, CONFIG_SNAPSHOT);
    assert.equal((await stack.cli(['cluster', 'edit', 'prod', '--cluster-config', file])).code, 0);
    await until('agents on the plan with the config', async () => {
      const r = await stack.cli(['snapshot', 'save', 'prod', '--wait', '--name', 'base']);
      return r.code === 0;
    });
    atSnapshot = await dumpAll(stack.nodes[0]?.clientUrl as string);
    base = (await records()).find((r) => r.name.startsWith('base-node-1-') && r.storage === 'local') as SnapshotRecord;
    assert.ok(base, 'the snapshot of node-1 is listed');
    assert.deepEqual(base.restoreModes, ['etcd', 'kubernetes-version', 'all']);
  });

  it('mode etcd: every member back on the snapshot; version and config unchanged', async () => {
    await mutate(endpoints(), 'etcd');
    await setLater();
    const r = await restore(base.name, 'etcd');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.op.phase, 'Finished');
    assert.deepEqual(phasesOf(r.op), ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished']);
    assert.deepEqual(r.op.steps.map((s) => s.state), ['succeeded', 'succeeded', 'succeeded']);
    assert.match(r.op.history.map((h) => h.message).join('\n'), /node-3: Downloaded the snapshot from node-1 \(\d+ zstd bytes, decompressed to \d+; both sha256 verified/, 'peers take the compressed bytes of the local snapshot');
    assertSameData(await dumpMembers(stack), atSnapshot, 'after restore (etcd)');
    assert.deepEqual(await clusterConfig(), { version: V_LATER, config: CONFIG_LATER });
    await healthyNodes(stack, 'prod');
    await noOldDataDirs();
  });

  it('mode kubernetes-version: data and version from the snapshot; config unchanged', async () => {
    await mutate(endpoints(), 'kv');
    await setLater();
    const r = await restore(base.name, 'kubernetes-version');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assertSameData(await dumpMembers(stack), atSnapshot, 'after restore (kubernetes-version)');
    assert.deepEqual(await clusterConfig(), { version: V_SNAPSHOT, config: CONFIG_LATER });
  });

  it('mode all: data, version and config from the snapshot', async () => {
    await mutate(endpoints(), 'all');
    await setLater();
    const r = await restore(base.name, 'all');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assertSameData(await dumpMembers(stack), atSnapshot, 'after restore (all)');
    assert.deepEqual(await clusterConfig(), { version: V_SNAPSHOT, config: CONFIG_SNAPSHOT });
    assert.equal((await clusterView(stack, 'prod')).nodes.healthy, 3);
  });

  it('restores from S3 with every local snapshot dir empty', async () => {
    for (const n of stack.nodes) {
      for (const f of await readdir(n.snapshotDir)) await rm(join(n.snapshotDir, f), { recursive: true, force: true });
    }
    await mutate(endpoints(), 's3');
    const r = await restore(base.name, 'etcd', ['--storage', 's3']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.op.params.storage, 's3');
    const notes = r.op.history.map((h) => h.message).join('\n');
    // The init node of an S3 snapshot is the first node that registered (any of the three here).
    assert.match(notes, /node-\d: Downloaded the snapshot from node-\d \(\d+ zstd bytes, decompressed to \d+; both sha256 verified/, 'peers take the compressed bytes the init node fetched from S3');
    assertSameData(await dumpMembers(stack), atSnapshot, 'after restore from S3');
  });

  it('restores a local snapshot whose holder lost its copy (node replaced) from the S3 copy with the same sha256', async () => {
    // The local copies were deleted above: node-1 is a replaced machine with an empty disk.
    const holderDir = dirname(join(stack.nodes[0]?.snapshotDir as string, base.name));
    assert.deepEqual((await readdir(holderDir)).filter((f) => f.startsWith('base-')), []);
    await mutate(endpoints(), 'replaced');
    const r = await restore(base.name, 'etcd', ['--storage', 'local']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok(r.op.history.some((h) => /S3|s3:\/\//.test(h.message)), `the history says the S3 copy was used: ${JSON.stringify(r.op.history.map((h) => h.message))}`);
    assertSameData(await dumpMembers(stack), atSnapshot, 'after restore of a replaced holder');
  });
});
