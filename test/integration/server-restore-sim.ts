/**
 * Scripted agents for the server side of restores: a cluster of SimAgents that answer restore
 * tasks by a script (default: every task succeeds with a plausible result), a log of the tasks
 * in the order they first appeared, and helpers to drive an operation until a condition holds.
 */
import { createHash } from 'node:crypto';
import type { JoinInfo, Operation } from '../../src/core/api.js';
import type { SnapshotMetadata } from '../../src/core/metadata.js';
import type { SnapshotReport, Task, TaskStatus } from '../../src/core/plans.js';
import { fakeMetadata, SimAgent, waitFor, type SimAnswer, type TestServer } from '../harness/server.js';

export const REVISION = 42;
export const HASH = 0x5eed;
export const KEYS = 100;
const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A script: the answer of `node` to `task` (undefined: leave it pending/running). */
export type Script = (node: string, task: Task, current: TaskStatus | undefined) => SimAnswer | undefined;

/** Every restore task succeeds; prepare and start carry results a real agent would send. */
export function success(node: string, task: Task, _current?: TaskStatus): SimAnswer | undefined {
  switch (task.kind) {
    case 'restore-prepare':
      return {
        state: 'succeeded',
        message: `snapshot ${task.source.name} staged`,
        result: { rawSha256: hex('raw'), rawSize: 4096, revision: REVISION, totalKey: 150, transferUrl: `https://${node}:9443`, transferCertSha256: hex(`cert-${node}`) },
      };
    case 'restore-start':
      return { state: 'succeeded', message: 'member healthy', result: { revision: REVISION + 1, hashKv: HASH, keys: KEYS } };
    case 'restore-fetch':
    case 'restore-stop':
    case 'restore-apply':
    case 'restore-finish':
    case 'restore-cleanup':
    case 'restore-rollback':
      return { state: 'succeeded', message: `${task.kind.slice(8)} done` };
    default:
      return undefined;
  }
}

/** `base` except where `override` answers. */
export function withOverride(override: (node: string, task: Task, current: TaskStatus | undefined) => SimAnswer | undefined | 'default', base: Script = success): Script {
  return (node, task, current) => {
    const a = override(node, task, current);
    return a === 'default' ? base(node, task, current) : a;
  };
}

export interface SimCluster {
  id: string;
  name: string;
  agents: SimAgent[];
  /** `${node} ${kind}` in the order each task first appeared in a plan. */
  seen: string[];
  agent(node: string): SimAgent;
  /** One round: every agent answers its plan's tasks by `script`. */
  round(script?: Script): Promise<void>;
  /** Nodes whose agents are away: they neither poll nor report in rounds. */
  away: Set<string>;
  op(id: string): Promise<Operation>;
  /** Rounds until `ok` holds for the operation. */
  until(id: string, what: string, ok: (op: Operation) => boolean, script?: Script, timeoutMs?: number): Promise<Operation>;
  /** Reports a snapshot record of `node` (local or S3), with optional metadata changes. */
  record(node: string, name: string, p?: { storage?: 'local' | 's3'; state?: 'successful' | 'failed'; metadata?: Partial<SnapshotMetadata> | null }): Promise<void>;
  restore(body: Record<string, unknown>): Promise<{ status: number; body: Operation & { code?: string; message?: string; details?: Record<string, unknown> } }>;
}

let counter = 0;

/** A new cluster on `server` with agents n1, n2, n3 (registered in that order). */
export async function simCluster(server: () => TestServer, nodes = ['n1', 'n2', 'n3'], cluster: Record<string, unknown> = {}): Promise<SimCluster> {
  const name = `restore${counter++}`;
  const c = await server().api<{ id: string }>('POST', '/api/v1/clusters', { name, kubernetesVersion: 'v1.31.0', clusterConfig: 'kind: Later\n', ...cluster });
  const id = c.body.id;
  const join = await server().api<JoinInfo>('GET', `/api/v1/clusters/${id}/join`);
  const agents: SimAgent[] = [];
  for (const node of nodes) {
    const a = new SimAgent(server(), { registrationToken: join.body.registrationToken, node });
    await a.register();
    await a.sync();
    agents.push(a);
  }
  const seen: string[] = [];
  const sim: SimCluster = {
    id,
    name,
    agents,
    seen,
    away: new Set(),
    agent: (node) => agents.find((a) => a.node === node) as SimAgent,
    async round(script = success) {
      for (const a of agents) {
        if (sim.away.has(a.node)) continue;
        a.useServer(server());
        await a.answer((task, current) => {
          const key = `${a.node} ${task.kind}`;
          if (!current && !seen.includes(`${key} ${task.id}`)) seen.push(`${key} ${task.id}`);
          return script(a.node, task, current);
        });
      }
    },
    async op(opId) {
      return (await server().api<Operation>('GET', `/api/v1/operations/${opId}`)).body;
    },
    async until(opId, what, ok, script = success, timeoutMs = 20_000) {
      return waitFor(
        `${what} (operation ${opId})`,
        async () => {
          const o = await sim.op(opId);
          if (ok(o)) return o;
          await sim.round(script);
          await new Promise((r) => setTimeout(r, 30));
          const again = await sim.op(opId);
          return ok(again) ? again : undefined;
        },
        timeoutMs,
      );
    },
    async record(node, snapshot, p = {}) {
      const a = sim.agent(node);
      const base = a.snapshot(snapshot, { storage: p.storage, state: p.state });
      const metadata = p.metadata === null ? null : base.metadata ? { ...base.metadata, ...(p.metadata ?? {}) } : null;
      const report: SnapshotReport = { ...base, metadata };
      await a.report({ snapshots: [report] });
    },
    async restore(body) {
      return server().api('POST', `/api/v1/clusters/${id}/restores`, body);
    },
  };
  return sim;
}

/** Metadata with a content summary at the restore's revision (the key count is compared). */
export function summarized(keys = KEYS): Partial<SnapshotMetadata> {
  const m = fakeMetadata({ name: 'x', node: 'n', clusterId: 'c' });
  return { etcd: { ...m.etcd, revision: REVISION, revisionMin: REVISION, revisionExact: true }, summary: { revision: REVISION, keys, byResource: {} } };
}

/** Kinds of a node's tasks in the order they appeared. */
export function kindsOf(seen: string[], node: string): string[] {
  return seen.filter((s) => s.startsWith(`${node} `)).map((s) => s.split(' ')[1] as string);
}
