import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Operation, ServerEvent } from '../../core/api.js';
import { isEtcdsnapError } from '../../core/errors.js';
import { buildServer } from '../app.js';
import { bootstrap, type Bootstrapped } from '../bootstrap.js';
import { parseServerConfig } from '../config.js';
import type { OperationKind } from './types.js';

/**
 * The engine is not about snapshots: a restore-shaped kind (the phases of issue 5) runs on it
 * with a phase table, waits, failure clean-up (rollback) and resume after a restart.
 */

const gate = { shutdownDone: false, restoreFails: false, throwIn: '', rollbackWaits: false, rollbackDone: false };
const failures: unknown[] = [];
const calls: string[] = [];

const restoreLike: OperationKind = {
  kind: 'restore',
  describe: () => 'restore (test)',
  phases: {
    async Started(pc) {
      calls.push('Started');
      await pc.setStep('n1', 'running', 'validating');
      return { kind: 'next', phase: 'Shutdown', message: 'validated' };
    },
    async Shutdown(pc) {
      calls.push('Shutdown');
      if (gate.throwIn === 'Shutdown') throw new Error('boom');
      if (!gate.shutdownDone) return { kind: 'wait' };
      await pc.setData({ stopped: true });
      return { kind: 'next', phase: 'Restore', message: 'every member stopped' };
    },
    async Restore(pc) {
      calls.push('Restore');
      if (gate.restoreFails) return { kind: 'fail', failure: { node: 'n1', code: 'SNAPSHOT_CHECKSUM_MISMATCH', message: 'copy on n1 is corrupt' } };
      await pc.setStep('n1', 'succeeded', 'restored');
      return { kind: 'next', phase: 'RestartCluster', message: 'restored' };
    },
    async RestartCluster() {
      calls.push('RestartCluster');
      return { kind: 'next', phase: 'Finished', message: 'healthy' };
    },
  },
  async onFail(pc, failure) {
    calls.push('onFail');
    failures.push(failure);
    if (gate.rollbackWaits && !gate.rollbackDone) {
      await pc.setStep('n1', 'running', 'rolling back');
      return 'wait';
    }
    return { ...failure, message: gate.rollbackWaits ? `${failure.message}; rolled back` : failure.message, rolledBack: pc.data.stopped === true };
  },
};

let dir: string;
let boot: Bootstrapped;
let app: FastifyInstance;
let clusterId: string;
const events: ServerEvent[] = [];

async function start(): Promise<void> {
  const config = parseServerConfig({ dataDir: dir, insecureHttp: true, listen: '127.0.0.1:0', tickMs: 20, reconcileIntervalMs: 0 });
  boot = await bootstrap(config, pino({ level: 'silent' }));
  app = await buildServer(boot.deps);
  app.etcdsnap.engine.register(restoreLike);
  app.etcdsnap.events.subscribe((e) => events.push(e));
  await app.ready();
}

async function stop(): Promise<void> {
  await app.close();
  await boot.close();
}

async function waitPhase(id: string, phase: string): Promise<Operation> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const res = await app.inject({ url: `/api/v1/operations/${id}`, headers: { authorization: `Bearer ${token}` } });
    const op = res.json<Operation>();
    if (op.phase === phase) return op;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`operation ${id} never reached ${phase}`);
}

let token: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'etcdsnap-engine-'));
  const config = parseServerConfig({ dataDir: dir, insecureHttp: true });
  const first = await bootstrap(config, pino({ level: 'silent' }));
  token = first.adminToken as string;
  await first.close();
  await start();
  const res = await app.inject({ method: 'POST', url: '/api/v1/clusters', headers: { authorization: `Bearer ${token}` }, payload: { name: 'eng' } });
  clusterId = res.json<{ id: string }>().id;
});
after(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

test('phases run in order, waiting where the phase says, with history, steps and an event per change', async () => {
  const op = await app.etcdsnap.engine.start('restore', clusterId, { snapshot: 's1', mode: 'etcd' });
  await waitPhase(op.id, 'Shutdown');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await waitPhase(op.id, 'Shutdown')).phase, 'Shutdown', 'waits');
  gate.shutdownDone = true;
  app.etcdsnap.engine.kick();
  const done = await waitPhase(op.id, 'Finished');
  assert.deepEqual(
    done.history.map((h) => h.phase),
    ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'],
  );
  assert.deepEqual(done.params, { snapshot: 's1', mode: 'etcd' });
  assert.equal(done.steps[0]?.state, 'succeeded');
  const phases = events.filter((e): e is Extract<ServerEvent, { type: 'operation' }> => e.type === 'operation' && e.operation.id === op.id).map((e) => e.operation.phase);
  assert.deepEqual([...new Set(phases)], ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished']);
});

test('one running operation per cluster, whatever the kind', async () => {
  gate.shutdownDone = false;
  const op = await app.etcdsnap.engine.start('restore', clusterId, {});
  await assert.rejects(app.etcdsnap.engine.start('snapshot', clusterId, {}), (err: unknown) => isEtcdsnapError(err, 'OPERATION_RUNNING') && err.details?.operationId === op.id);
  gate.shutdownDone = true;
  app.etcdsnap.engine.kick();
  await waitPhase(op.id, 'Finished');
});

test('a failure runs the kind’s clean-up once and records node, code and whether it rolled back', async () => {
  gate.restoreFails = true;
  calls.length = 0;
  const op = await app.etcdsnap.engine.start('restore', clusterId, {});
  const failed = await waitPhase(op.id, 'Failed');
  assert.deepEqual(failed.failure, { node: 'n1', code: 'SNAPSHOT_CHECKSUM_MISMATCH', message: 'copy on n1 is corrupt', rolledBack: true });
  assert.equal(failed.message, 'Restore: copy on n1 is corrupt');
  assert.equal(calls.filter((c) => c === 'onFail').length, 1);
  gate.restoreFails = false;
});

test('an operation left running is resumed by the next server on the same data dir', async () => {
  gate.shutdownDone = false;
  const op = await app.etcdsnap.engine.start('restore', clusterId, {});
  await waitPhase(op.id, 'Shutdown');
  await stop();
  gate.shutdownDone = true;
  calls.length = 0;
  await start();
  const done = await waitPhase(op.id, 'Finished');
  assert.equal(calls[0], 'Shutdown', 'picked up in the phase it was in');
  assert.deepEqual(
    done.history.map((h) => h.phase),
    ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'],
  );
});

test('a phase function that keeps throwing is retried, then the operation fails as INTERNAL', async () => {
  gate.shutdownDone = false;
  gate.throwIn = 'Shutdown';
  const op = await app.etcdsnap.engine.start('restore', clusterId, {});
  const failed = await waitPhase(op.id, 'Failed');
  assert.equal(failed.failure?.code, 'INTERNAL');
  assert.match(failed.failure?.message ?? '', /Shutdown failed 10 times in a row: boom/);
  gate.throwIn = '';
});

test('a clean-up that waits keeps the operation running ("rolling back"), across a restart, until it returns the failure', async () => {
  gate.shutdownDone = true;
  gate.restoreFails = true;
  gate.rollbackWaits = true;
  gate.rollbackDone = false;
  calls.length = 0;
  failures.length = 0;
  const op = await app.etcdsnap.engine.start('restore', clusterId, {});
  const rolling = await waitFor(op.id, (o) => /rolling back/.test(o.message ?? ''));
  assert.equal(rolling.phase, 'Restore', 'the phase stays');
  assert.equal(rolling.failure, null, 'not failed yet');
  assert.equal(rolling.message, 'Restore: rolling back: copy on n1 is corrupt');
  assert.deepEqual(rolling.history.at(-1), { at: rolling.history.at(-1)?.at, phase: 'Restore', message: 'Restore: rolling back: copy on n1 is corrupt' });
  assert.equal(rolling.steps[0]?.message, 'rolling back');
  const cluster = await app.inject({ url: `/api/v1/clusters/${clusterId}`, headers: { authorization: `Bearer ${token}` } });
  assert.equal(cluster.json<{ runningOperationId: string }>().runningOperationId, op.id, 'still the running operation');
  // Called again at every evaluation, never the phase functions.
  await new Promise((r) => setTimeout(r, 150));
  assert.ok(calls.filter((c) => c === 'onFail').length >= 2);
  assert.deepEqual(calls.filter((c) => c !== 'onFail'), ['Started', 'Shutdown', 'Restore']);
  assert.ok(events.some((e) => e.type === 'operation' && e.operation.id === op.id && /rolling back/.test(e.operation.message ?? '')), 'visible in events');

  await stop();
  calls.length = 0;
  failures.length = 0;
  await start();
  await waitFor(op.id, () => calls.includes('onFail'));
  assert.ok(!calls.includes('Restore'), 'a restarted server goes on rolling back');
  assert.deepEqual(failures[0], { node: 'n1', code: 'SNAPSHOT_CHECKSUM_MISMATCH', message: 'copy on n1 is corrupt', rolledBack: false }, 'with the remembered failure');

  gate.rollbackDone = true;
  app.etcdsnap.engine.kick();
  const failed = await waitPhase(op.id, 'Failed');
  assert.deepEqual(failed.failure, { node: 'n1', code: 'SNAPSHOT_CHECKSUM_MISMATCH', message: 'copy on n1 is corrupt; rolled back', rolledBack: true });
  assert.equal(failed.message, 'Restore: copy on n1 is corrupt; rolled back');
  assert.deepEqual(
    failed.history.map((h) => h.phase),
    ['Started', 'Shutdown', 'Restore', 'Restore', 'Failed'],
  );
  gate.restoreFails = false;
  gate.rollbackWaits = false;
});

async function waitFor(id: string, ok: (op: Operation) => boolean): Promise<Operation> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const res = await app.inject({ url: `/api/v1/operations/${id}`, headers: { authorization: `Bearer ${token}` } });
    const op = res.json<Operation>();
    if (ok(op)) return op;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`operation ${id} never got there`);
}
