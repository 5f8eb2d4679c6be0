import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROTOCOL_VERSION, type NodePlan } from '../core/plans.js';
import { FINISHED_KEPT, rememberFinished, STATE_FILE, StateStore, writeFileAtomic } from './state.js';

const owner = { server: 'http://127.0.0.1:1', node: 'node-1' };
const plan: NodePlan = {
  apiVersion: PROTOCOL_VERSION,
  planId: 'p1',
  node: 'node-1',
  cluster: { id: 'c1', name: 'c' },
  kubernetesVersion: null,
  clusterConfig: null,
  policy: { enabled: true, schedule: '@every 1h', retention: 5, compression: 'none', s3: null },
  tasks: [{ id: 't1', kind: 'snapshot', operationId: 'o1' }],
};

describe('agent state file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'etcdsnap-state-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writeFileAtomic replaces the file whole, with mode 0600, leaving no temp file', async () => {
    const file = join(dir, 'x.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    assert.equal(await readFile(file, 'utf8'), 'two');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('x.json')), ['x.json']);
  });

  it('many concurrent updates: the file always parses and ends with every change', async () => {
    const d = join(dir, 'concurrent');
    const store = await StateStore.open(d, owner);
    const reads: Promise<void>[] = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      writes.push(store.update((s) => void s.outbox.deleted.push({ seq: ++s.outbox.seq, location: `file:///x/${i}` })));
      if (i % 10 === 0) reads.push(readFile(join(d, STATE_FILE), 'utf8').then((t) => void JSON.parse(t)));
    }
    await Promise.all([...writes, ...reads]);
    const onDisk = JSON.parse(await readFile(join(d, STATE_FILE), 'utf8')) as { outbox: { deleted: unknown[]; seq: number } };
    assert.equal(onDisk.outbox.deleted.length, 200);
    assert.equal(onDisk.outbox.seq, 200);
  });

  it('survives a restart: token, plan, statuses, finished ids and queue come back; temp leftovers are removed', async () => {
    const d = join(dir, 'restart');
    const a = await StateStore.open(d, owner);
    await a.update((s) => {
      s.nodeToken = 'tok';
      s.plan = plan;
      s.tasks.t1 = { id: 't1', state: 'succeeded', startedAt: new Date().toISOString() };
      rememberFinished(s, 't1');
      s.outbox.snapshots.push({ seq: ++s.outbox.seq, report: { name: 'n', node: 'node-1', state: 'failed', location: 'file:///n', size: 0, createdAt: new Date().toISOString(), metadata: null } });
    });
    await writeFile(join(d, `${STATE_FILE}.tmp-1-dead`), 'half');
    const b = await StateStore.open(d, owner);
    assert.equal(b.state.nodeToken, 'tok');
    assert.equal(b.state.plan?.planId, 'p1');
    assert.deepEqual(b.state.finished, ['t1']);
    assert.equal(b.state.tasks.t1?.state, 'succeeded');
    assert.equal(b.state.outbox.snapshots.length, 1);
    assert.equal(b.state.outbox.seq, 1);
    assert.deepEqual((await readdir(d)).sort(), [STATE_FILE]);
    assert.equal((await stat(join(d, STATE_FILE))).mode & 0o777, 0o600);
  });

  it('another server or node name drops token and plan, keeps the queue', async () => {
    const d = join(dir, 'restart');
    const warnings: string[] = [];
    const c = await StateStore.open(d, { ...owner, server: 'https://elsewhere:8443' }, (m) => warnings.push(m));
    assert.equal(c.state.nodeToken, null);
    assert.equal(c.state.plan, null);
    assert.equal(c.state.outbox.snapshots.length, 1);
    assert.equal(warnings.length, 1);
  });

  it('an unreadable file is moved aside and the agent starts fresh', async () => {
    const d = join(dir, 'corrupt');
    await StateStore.open(d, owner);
    await writeFile(join(d, STATE_FILE), '{"version":1,"nodeTok');
    const warnings: string[] = [];
    const s = await StateStore.open(d, owner, (m) => warnings.push(m));
    assert.equal(s.state.nodeToken, null);
    assert.match(warnings[0] ?? '', /moved it to/);
    assert.ok((await readdir(d)).some((f) => f.startsWith(`${STATE_FILE}.corrupt-`)));
  });

  it('an invalid saved plan is dropped, the rest kept', async () => {
    const d = join(dir, 'badplan');
    await StateStore.open(d, owner);
    await writeFile(join(d, STATE_FILE), JSON.stringify({ version: 1, ...owner, nodeToken: 't', plan: { planId: 'x' } }));
    const s = await StateStore.open(d, owner);
    assert.equal(s.state.plan, null);
    assert.equal(s.state.nodeToken, 't');
  });

  it('remembers at most FINISHED_KEPT finished ids, newest kept', () => {
    const s = { finished: [] as string[] } as Parameters<typeof rememberFinished>[0];
    for (let i = 0; i < FINISHED_KEPT + 5; i++) rememberFinished(s, `t${i}`);
    rememberFinished(s, `t${FINISHED_KEPT + 4}`);
    assert.equal(s.finished.length, FINISHED_KEPT);
    assert.equal(s.finished[0], 't5');
  });
});
