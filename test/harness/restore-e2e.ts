/**
 * Helpers of the end-to-end restore tests: follow operations live on the server's event stream
 * (so a test can act the moment a phase begins), read every member's keyspace, and change the
 * data the way a running cluster would.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { Etcd3 } from 'etcd3';
import type { Cluster, Operation, Phase } from '../../src/core/api.js';
import { dumpAll, type Dump } from './dump.js';
import type { Stack } from './stack.js';
import { until as untilCondition } from './until.js';

/** Waits for a condition; restore tests wait up to a minute by default. */
export function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  return untilCondition(what, fn, timeoutMs);
}

/** Runs `etcdsnap … -o json` against the stack and parses stdout (fails the test on a non-zero exit). */
export async function cliJson<T>(stack: Stack, args: string[]): Promise<T> {
  const r = await stack.cli([...args, '-o', 'json']);
  assert.equal(r.code, 0, `etcdsnap ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function clusterView(stack: Stack, name: string): Promise<Cluster> {
  return (await cliJson<Cluster[]>(stack, ['cluster', 'ls'])).find((c) => c.name === name) as Cluster;
}

export function healthyNodes(stack: Stack, name: string, want = stack.nodes.length): Promise<true> {
  return until(`${want} healthy nodes`, async () => (await clusterView(stack, name)).nodes.healthy === want || undefined, 120_000);
}

/** Every member's keyspace, read from that member. */
export async function dumpMembers(stack: Stack): Promise<Dump[]> {
  return Promise.all(stack.nodes.map((n) => dumpAll(n.clientUrl)));
}

/** Asserts every member holds exactly `want`'s keys and values. */
export function assertSameData(dumps: Dump[], want: Dump, what: string): void {
  for (const [i, d] of dumps.entries()) {
    assert.equal(d.kv.size, want.kv.size, `${what}: member ${i + 1} has ${d.kv.size} keys, expected ${want.kv.size}`);
    for (const [k, v] of want.kv) {
      if (d.kv.get(k) !== v) assert.fail(`${what}: member ${i + 1} differs at ${k}`);
    }
  }
}

/** Whether every member holds exactly `want`'s keys and values. */
export function sameData(dumps: Dump[], want: Dump): boolean {
  return dumps.every((d) => d.kv.size === want.kv.size && [...want.kv].every(([k, v]) => d.kv.get(k) === v));
}

/** Adds, changes and deletes keys (as a running cluster would after a snapshot). */
export async function mutate(endpoints: string[], tag: string): Promise<void> {
  const etcd = new Etcd3({ hosts: endpoints });
  try {
    for (let i = 0; i < 20; i++) await etcd.put(`/registry/configmaps/after/${tag}-${i}`).value(`added ${tag} ${i}`);
    const some = await etcd.getAll().prefix('/registry/').limit(30).keys();
    for (const k of some.slice(0, 10)) await etcd.put(k).value(`changed by ${tag}`);
    for (const k of some.slice(10, 20)) await etcd.delete().key(k);
  } finally {
    etcd.close();
  }
}

/**
 * The server's event stream (`GET /api/v1/events`) with the stack's pinned CA: every operation
 * event is passed to the listeners. Reconnects by itself while the server restarts.
 */
export class OperationWatch {
  private req: ReturnType<typeof https.get> | undefined;
  private closed = false;
  private readonly listeners = new Set<(op: Operation) => void>();

  constructor(
    private readonly stack: Stack,
    private readonly ca: string,
  ) {}

  start(): void {
    if (this.closed) return;
    const u = new URL('/api/v1/events', this.stack.url);
    this.req = https.get(u, { ca: this.ca, headers: { authorization: `Bearer ${this.stack.adminToken}`, accept: 'text/event-stream' }, agent: false }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (!data || !/^event: operation$/m.test(frame)) continue;
          const op = (JSON.parse(data) as { operation: Operation }).operation;
          for (const l of this.listeners) l(op);
        }
      });
      res.on('close', () => this.retry());
      res.on('error', () => undefined);
    });
    this.req.on('error', () => this.retry());
  }

  private retry(): void {
    if (this.closed) return;
    setTimeout(() => this.start(), 200).unref();
  }

  /** Resolves with the first event of operation `id` (any when undefined) in `phase`. */
  phase(phase: Phase, id?: () => string | undefined, timeoutMs = 120_000): Promise<Operation> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l);
        reject(new Error(`no operation event in phase ${phase} within ${timeoutMs} ms`));
      }, timeoutMs);
      const l = (op: Operation): void => {
        const want = id?.();
        if (op.kind !== 'restore' || op.phase !== phase || (want !== undefined && op.id !== want)) return;
        clearTimeout(timer);
        this.listeners.delete(l);
        resolve(op);
      };
      this.listeners.add(l);
    });
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

/** The server's CA (PEM), from `/cacerts` (the stack's CLI pins its checksum). */
export function fetchCa(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(new URL('/cacerts', url), { rejectUnauthorized: false, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

/** The phases an operation went through, from its history, without repeats. */
export function phasesOf(op: Operation): string[] {
  const out: string[] = [];
  for (const h of op.history) if (out[out.length - 1] !== h.phase) out.push(h.phase);
  return out;
}
