import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { taskProgress } from './progress.js';
import { StateStore } from './state.js';

describe('task progress', () => {
  let dir: string;
  let state: StateStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'etcdsnap-progress-'));
    state = await StateStore.open(dir, { server: 'http://127.0.0.1:1', node: 'n1' });
    await state.update((s) => {
      s.tasks.t1 = { id: 't1', state: 'running', startedAt: new Date().toISOString() };
    });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('sets the running task message at most once per interval, the latest winning, and notifies', async () => {
    let notified = 0;
    let resolveSecond!: () => void;
    const second = new Promise<void>((r) => (resolveSecond = r));
    const progress = taskProgress(state, 't1', () => (++notified === 2 ? resolveSecond() : undefined), (err) => assert.fail(String(err)), 100);
    const keepAlive = setInterval(() => undefined, 1000); // the throttle's timer is unref'd
    const t0 = Date.now();
    progress('downloading 0 / 10 MiB from node-1');
    for (let i = 1; i <= 9; i++) progress(`downloading ${i} / 10 MiB from node-1`);
    await second;
    clearInterval(keepAlive);
    assert.ok(Date.now() - t0 >= 90, 'the second write waited for the interval');
    assert.equal(state.state.tasks.t1?.message, 'downloading 9 / 10 MiB from node-1');
    assert.equal(notified, 2, 'two writes for ten calls');
  });

  it('never touches a finished task', async () => {
    await state.update((s) => {
      s.tasks.t1 = { id: 't1', state: 'succeeded', startedAt: new Date().toISOString(), message: 'done' };
    });
    taskProgress(state, 't1', () => assert.fail('no report for a finished task'), () => undefined, 10)('late');
    await state.flush();
    assert.equal(state.state.tasks.t1?.message, 'done');
  });
});
