import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Operation } from '../../src/core/api.js';
import { etcdsnap } from '../harness/cli.js';
import { startTestServer, type TestServer } from '../harness/server.js';
import { simCluster, withOverride, type SimCluster } from './server-restore-sim.js';

/** `etcdsnap snapshot restore CLUSTER NAME --mode …` against a real server with scripted agents. */
describe('CLI: snapshot restore through the server', () => {
  let server: TestServer;
  let sim: SimCluster;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startTestServer({ config: { reportIntervalMs: 20_000, tickMs: 50 } });
    env = { ETCDSNAP_SERVER: server.url, ETCDSNAP_TOKEN: server.adminToken, ETCDSNAP_CONFIG: '/nonexistent/etcdsnap.json', ETCDSNAP_DIR: '' };
    sim = await simCluster(() => server);
    await sim.record('n1', 'snap.zst');
    await sim.record('n1', 'nometa.zst', { metadata: null });
  });
  after(() => server.stop());

  /** Runs the CLI while the scripted agents answer, until it exits. */
  async function whileDriving(args: string[], script = withOverride(() => 'default')): Promise<Awaited<ReturnType<typeof etcdsnap>>> {
    let running = true;
    const cli = etcdsnap(args, env).finally(() => (running = false));
    while (running) {
      await sim.round(script);
      await new Promise((r) => setTimeout(r, 50));
    }
    return cli;
  }

  test('without --yes and without a terminal it refuses and says to pass --yes; refusals show their code', async () => {
    const r = await etcdsnap(['snapshot', 'restore', sim.name, 'snap.zst', '--mode', 'etcd'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no terminal to confirm on: pass --yes/);
    const mode = await etcdsnap(['snapshot', 'restore', sim.name, 'nometa.zst', '--mode', 'all', '--yes'], env);
    assert.equal(mode.code, 1);
    assert.match(mode.stderr, /^error: RESTORE_MODE_NOT_ALLOWED: .*Modes it allows: etcd\./);
    const noMode = await etcdsnap(['snapshot', 'restore', sim.name, 'snap.zst', '--yes'], env);
    assert.equal(noMode.code, 2);
    assert.match(noMode.stderr, /Missing --mode/);
    const ops = await etcdsnap(['operation', 'ls', sim.name, '-o', 'json'], env);
    assert.deepEqual(JSON.parse(ops.stdout), []);
  });

  test('--yes -o json prints the operation; --wait follows it to Finished (exit 0)', async () => {
    const started = await etcdsnap(['snapshot', 'restore', sim.name, 'snap.zst', '--mode', 'etcd', '--yes', '-o', 'json'], env);
    assert.equal(started.code, 0, started.stderr);
    const op = JSON.parse(started.stdout) as Operation;
    assert.equal(op.kind, 'restore');
    assert.equal(op.phase, 'Started');
    const watched = await whileDriving(['operation', 'watch', op.id]);
    assert.equal(watched.code, 0, watched.stderr);

    const r = await whileDriving(['snapshot', 'restore', sim.name, 'snap.zst', '--mode', 'etcd', '--yes', '--wait']);
    assert.equal(r.code, 0, r.stderr);
    for (const phase of ['Shutdown', 'Restore', 'RestartCluster', 'Finished']) assert.match(r.stdout, new RegExp(`  ${phase}`));
    assert.match(r.stdout, /restored snap\.zst \(mode etcd\) on n1, n2, n3/);
  });

  test('--wait on a failing restore exits 1 with the node, the code and whether it rolled back', async () => {
    const r = await whileDriving(
      ['snapshot', 'restore', sim.name, 'snap.zst', '--mode', 'etcd', '--yes', '--wait'],
      withOverride((n, t) => (t.kind === 'restore-apply' && n === 'n2' ? { state: 'failed', code: 'ETCD_RESTORE_FAILED', message: 'disk full' } : 'default')),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: restore op_\w+ failed on node n2: ETCD_RESTORE_FAILED: Restoring the snapshot on node n2 failed: disk full; rolled back: every member is back on its previous data \(rolled back: the cluster is as it was\)/);
  });

  test('--help describes both forms; the standalone form still needs its flags', async () => {
    const help = await etcdsnap(['snapshot', 'restore', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--mode', '--wait', '--yes', '--storage', '--initial-cluster', '--data-dir']) assert.ok(help.stdout.includes(flag), flag);
    const standalone = await etcdsnap(['snapshot', 'restore', 'snap.zst', '--dir', '/tmp'], env);
    assert.equal(standalone.code, 2);
    assert.match(standalone.stderr, /standalone restore needs --data-dir, --member-name, --initial-cluster, --initial-advertise-peer-urls/);
  });
});
