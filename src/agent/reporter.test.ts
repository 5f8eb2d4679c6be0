import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdsnapError } from '../core/errors.js';
import { PROTOCOL_VERSION, type AgentReport, type SnapshotReport } from '../core/plans.js';
import { Backoff } from './backoff.js';
import { Reporter, type ReportBase } from './reporter.js';
import { StateStore } from './state.js';

const owner = { server: 'http://127.0.0.1:1', node: 'node-1' };
const base = async (): Promise<ReportBase> => ({
  apiVersion: PROTOCOL_VERSION,
  node: 'node-1',
  agentVersion: '0.0.0',
  planId: null,
  member: { name: 'node-1', clientUrl: 'http://127.0.0.1:2379', peerUrl: 'http://127.0.0.1:2380', state: 'healthy' },
  tasks: [],
  nextScheduledAt: null,
});
const snap = (i: number): SnapshotReport => ({ name: `s${i}`, node: 'node-1', state: 'successful', location: `file:///d/s${i}`, size: i, createdAt: new Date().toISOString(), metadata: null });

async function waitUntil(what: string, probe: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A fake server: fails while `down`, records what it accepted. */
function fakeServer() {
  const accepted: AgentReport[] = [];
  const server = {
    down: false,
    reject: (_r: AgentReport): boolean => false,
    attempts: 0,
    accepted,
    send: async (r: AgentReport): Promise<unknown> => {
      server.attempts += 1;
      if (server.down) throw new EtcdsnapError('SERVER_UNREACHABLE', 'down');
      if (server.reject(r)) throw new EtcdsnapError('SERVER_REJECTED', 'bad entry');
      accepted.push(structuredClone(r));
      return { planId: null };
    },
  };
  return server;
}

describe('Reporter (the report queue)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'etcdsnap-reporter-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('queues on disk while the server is away, survives a restart, delivers in order once it is back', async () => {
    const d = join(dir, 'outage');
    const server = fakeServer();
    server.down = true;
    const state = await StateStore.open(d, owner);
    const ac = new AbortController();
    const r = new Reporter({ state, send: server.send, base, intervalMs: 50, backoff: new Backoff(10, 20), onUnauthorized: async () => undefined });
    const running = r.run(ac.signal);
    await r.enqueue({ snapshots: [snap(1), snap(2)], deleted: ['file:///d/s0'] });
    await waitUntil('a few failed attempts', () => server.attempts >= 3);
    assert.equal(r.queued, 3);
    ac.abort();
    await running;

    // "restart": a new store and reporter from the same dir
    const state2 = await StateStore.open(d, owner);
    assert.equal(state2.state.outbox.snapshots.length, 2);
    const r2 = new Reporter({ state: state2, send: server.send, base, intervalMs: 50, backoff: new Backoff(10, 20), onUnauthorized: async () => undefined });
    const ac2 = new AbortController();
    const running2 = r2.run(ac2.signal);
    await r2.enqueue({ snapshots: [snap(3)] });
    server.down = false;
    await waitUntil('the queue drained', () => r2.queued === 0);
    ac2.abort();
    await running2;
    const delivered = server.accepted.flatMap((a) => a.snapshots.map((s) => s.name));
    assert.deepEqual(delivered, ['s1', 's2', 's3']);
    assert.deepEqual(server.accepted.flatMap((a) => a.deleted), ['file:///d/s0']);
    assert.equal((await StateStore.open(d, owner)).state.outbox.snapshots.length, 0, 'the acknowledged entries are gone from disk');
  });

  it('sends heartbeats without changes, and batches a long queue', async () => {
    const d = join(dir, 'batches');
    const server = fakeServer();
    const state = await StateStore.open(d, owner);
    const r = new Reporter({ state, send: server.send, base, intervalMs: 20, backoff: new Backoff(10, 20), onUnauthorized: async () => undefined, maxBatch: 10 });
    await r.enqueue({ snapshots: Array.from({ length: 25 }, (_, i) => snap(i)) });
    const ac = new AbortController();
    const running = r.run(ac.signal);
    await waitUntil('delivered and two heartbeats after', () => r.queued === 0 && server.accepted.filter((a) => a.snapshots.length === 0).length >= 2);
    ac.abort();
    await running;
    assert.deepEqual(
      server.accepted.filter((a) => a.snapshots.length > 0).map((a) => a.snapshots.length),
      [10, 10, 5],
    );
  });

  it('one entry the server refuses is dropped alone; the others arrive', async () => {
    const d = join(dir, 'rejected');
    const server = fakeServer();
    server.reject = (rep) => rep.snapshots.some((s) => s.name === 's2');
    const state = await StateStore.open(d, owner);
    const r = new Reporter({ state, send: server.send, base, intervalMs: 20, backoff: new Backoff(5, 10), onUnauthorized: async () => undefined });
    await r.enqueue({ snapshots: [snap(1), snap(2), snap(3)] });
    const ac = new AbortController();
    const running = r.run(ac.signal);
    await waitUntil('queue empty', () => r.queued === 0);
    ac.abort();
    await running;
    assert.deepEqual(server.accepted.flatMap((a) => a.snapshots.map((s) => s.name)), ['s1', 's3']);
  });

  it('asks to register again when the token is refused', async () => {
    const d = join(dir, 'unauthorized');
    const state = await StateStore.open(d, owner);
    let refusals = 0;
    let ok = 0;
    const send = async (): Promise<unknown> => {
      if (refusals < 1) {
        refusals += 1;
        throw new EtcdsnapError('UNAUTHORIZED', 'unknown node token');
      }
      ok += 1;
      return {};
    };
    let reRegistered = 0;
    const r = new Reporter({ state, send, base, intervalMs: 20, backoff: new Backoff(5, 10), onUnauthorized: async () => void (reRegistered += 1) });
    const ac = new AbortController();
    const running = r.run(ac.signal);
    await waitUntil('a report after re-registering', () => ok > 0);
    ac.abort();
    await running;
    assert.equal(reRegistered, 1);
  });
});
