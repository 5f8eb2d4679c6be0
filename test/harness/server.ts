/**
 * An in-process etcdsnap server for tests, on 127.0.0.1 and a free port, with a temporary data
 * dir (plain HTTP unless `https: true`), and a scripted agent ("SimAgent") that speaks the real
 * protocol over HTTP: register, long-poll plans, report.
 *
 *   const server = await startTestServer();
 *   const res = await server.api('POST', '/api/v1/clusters', { name: 'demo' });
 *   const agent = new SimAgent(server, { registrationToken, node: 'n1' });
 *   await agent.register(); await agent.sync();
 *   await server.stop();
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../src/core/log.js';
import type { SnapshotMetadata } from '../../src/core/metadata.js';
import { PROTOCOL_VERSION, type AgentReport, type NodePlan, type RegistrationResponse, type SnapshotReport, type Task, type TaskStatus } from '../../src/core/plans.js';
import type { ServerConfigInput } from '../../src/server/config.js';
import { runServer } from '../../src/server/main.js';
import { tempDir } from './net.js';

export interface HttpResult<T = unknown> {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed JSON when the body is JSON. */
  body: T;
}

/** One HTTP(S) request with a JSON body; `ca` pins the trusted CA for https URLs. */
export function request<T = unknown>(url: string, init: { method?: string; body?: unknown; token?: string; ca?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpResult<T>> {
  const u = new URL(url);
  const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method: init.method ?? 'GET', headers, ca: init.ca, agent: false, timeout: init.timeoutMs ?? 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = undefined;
        if ((res.headers['content-type'] ?? '').includes('json') && text) body = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: body as T });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface TestServerOptions {
  /** Reuse a data dir (a restart); default a new temporary one, removed by stop(). */
  dataDir?: string;
  /** Serve HTTPS with the server's own CA. Default false (plain HTTP). */
  https?: boolean;
  /** Config overrides, e.g. `{ reportIntervalMs: 1000, nodeTimeoutMs: 3000 }`. */
  config?: Partial<ServerConfigInput>;
  /** Default: a silent logger. */
  logger?: Logger;
  /** Known admin token of a reused data dir (a restart does not print it again). */
  adminToken?: string;
  now?: () => number;
}

export interface TestServer {
  /** `http(s)://127.0.0.1:<port>`: where tests reach the server. */
  url: string;
  /** The URL in join commands (differs from `url` when `hostnames` or `url` are configured). */
  publicUrl: string;
  adminToken: string;
  dataDir: string;
  /** PEM of the server CA (HTTPS) and its checksum. */
  ca: string | undefined;
  caChecksum: string | null;
  app: FastifyInstance;
  /** A request with the admin token (or `token`), against this server. */
  api<T = unknown>(method: string, path: string, body?: unknown, token?: string | null): Promise<HttpResult<T>>;
  /** Closes the server; keeps the data dir when `keepData` (for a restart), else removes a temporary one. */
  stop(options?: { keepData?: boolean }): Promise<void>;
  /** Closes and starts a new server on the same data dir and port-less config. */
  restart(options?: Omit<TestServerOptions, 'dataDir' | 'adminToken'>): Promise<TestServer>;
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const owned = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await tempDir('etcdsnap-server'));
  let running: Awaited<ReturnType<typeof runServer>>;
  try {
    running = await runServer(
      { dataDir, listen: '127.0.0.1:0', insecureHttp: options.https !== true, logLevel: 'silent', ...(options.config ?? {}) },
      { logger: options.logger ?? silentLogger(), out: { write: () => true } as unknown as NodeJS.WritableStream, now: options.now },
    );
  } catch (err) {
    if (owned) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const adminToken = running.adminToken ?? options.adminToken;
  if (!adminToken) {
    await running.close();
    throw new Error('startTestServer: the data dir has an admin token already; pass it as options.adminToken');
  }
  const ca = running.app.etcdsnap.tls?.caPem ?? undefined;
  const address = running.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `${options.https ? 'https' : 'http'}://127.0.0.1:${port}`;
  const server: TestServer = {
    url,
    publicUrl: running.url,
    adminToken,
    dataDir,
    ca,
    caChecksum: running.caChecksum,
    app: running.app,
    api: (method, path, body, token) => request(`${url}${path}`, { method, body, token: token === null ? undefined : (token ?? adminToken), ca }),
    async stop(stopOptions = {}) {
      await running.close();
      if (owned && !stopOptions.keepData) await rm(dataDir, { recursive: true, force: true });
    },
    async restart(more = {}) {
      await running.close();
      const next = await startTestServer({ https: options.https, config: options.config, logger: options.logger, now: options.now, ...more, dataDir, adminToken });
      // The first server owned the temporary dir: the new one removes it when stopped.
      if (owned) {
        const stop = next.stop.bind(next);
        next.stop = async (o = {}) => {
          await stop(o);
          if (!o.keepData) await rm(dataDir, { recursive: true, force: true });
        };
      }
      return next;
    },
  };
  return server;
}

/** Polls `fn` every 20 ms until it returns a truthy value (returned), or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A metadata document as an agent would write it. */
export function fakeMetadata(p: { name: string; node: string; clusterId: string; clusterName?: string; createdAt?: string; kubernetesVersion?: string | null; clusterConfig?: string | null; size?: number }): SnapshotMetadata {
  const sha = createHash('sha256').update(p.name).digest('hex');
  return {
    formatVersion: 1,
    name: p.name,
    base: p.name.split('-')[0] ?? 'on-demand',
    node: p.node,
    cluster: { id: p.clusterId, name: p.clusterName ?? 'test' },
    createdAt: p.createdAt ?? new Date().toISOString(),
    kind: 'on-demand',
    kubernetesVersion: p.kubernetesVersion === undefined ? 'v1.30.4' : p.kubernetesVersion,
    clusterConfig: p.clusterConfig === undefined ? 'kind: Cluster\n' : p.clusterConfig,
    etcd: { version: '3.4.23', clusterId: 'abc', member: 'm1', memberCount: 3, revision: 42, revisionMin: 42, revisionExact: true, trailerSha256: sha },
    rawSize: p.size ?? 1000,
    storedSize: p.size ?? 1000,
    codec: 'none',
    sha256: sha,
    rawSha256: sha,
    summary: null,
  };
}

/** A task status a scripted agent reports (see SimAgent.answer). */
export interface SimAnswer {
  state: TaskStatus['state'];
  message?: string;
  code?: string;
  result?: TaskStatus['result'];
}

export interface SimAgentOptions {
  registrationToken: string;
  node: string;
  memberState?: 'healthy' | 'unhealthy' | 'stopped';
}

/**
 * A scripted agent over real HTTP. Step by step (`register`, `poll`, `report`), or `sync()`:
 * fetch the plan without waiting, apply it, report.
 */
export class SimAgent {
  nodeToken = '';
  nodeId = '';
  clusterId = '';
  plan: NodePlan | undefined;
  /** planId the agent applied (sent as `after` and in reports). */
  applied: string | null = null;
  memberState: 'healthy' | 'unhealthy' | 'stopped';
  memberError: string | undefined;
  readonly tasks = new Map<string, TaskStatus>();

  constructor(
    private server: { url: string; ca?: string },
    readonly options: SimAgentOptions,
  ) {
    this.memberState = options.memberState ?? 'healthy';
  }

  /** Talk to another server (a restarted one listens on a new port). */
  useServer(server: { url: string; ca?: string }): void {
    this.server = server;
  }

  get node(): string {
    return this.options.node;
  }

  private call<T>(method: string, path: string, body?: unknown, token: string | undefined = this.nodeToken, timeoutMs?: number): Promise<HttpResult<T>> {
    return request<T>(`${this.server.url}${path}`, { method, body, token, ca: this.server.ca, timeoutMs });
  }

  async register(): Promise<RegistrationResponse> {
    const n = this.options.node;
    const res = await this.call<RegistrationResponse>(
      'POST',
      '/api/v1/agent/register',
      { apiVersion: PROTOCOL_VERSION, registrationToken: this.options.registrationToken, node: n, agentVersion: 'sim-1', mode: 'managed', member: { name: n, clientUrl: `http://${n}:2379`, peerUrl: `http://${n}:2380` } },
      undefined,
    );
    if (res.status !== 200) throw new Error(`register ${n}: ${res.status} ${res.text}`);
    this.nodeToken = res.body.nodeToken;
    this.nodeId = res.body.nodeId;
    this.clusterId = res.body.clusterId;
    return res.body;
  }

  /** GET the plan after the applied one; `wait` seconds of long-poll. Keeps a 200's plan in `plan`. */
  async poll(wait = 0, after: string | null = this.applied): Promise<HttpResult<NodePlan>> {
    const q = new URLSearchParams({ wait: String(wait) });
    if (after) q.set('after', after);
    const res = await this.call<NodePlan>('GET', `/api/v1/agent/plan?${q}`, undefined, this.nodeToken, (wait + 30) * 1000);
    if (res.status === 200) this.plan = res.body;
    return res;
  }

  /** Sets a task's status (reported by the next report); `result` for restore tasks (see their Result types). */
  setTask(id: string, state: TaskStatus['state'], message?: string, code?: string, result?: TaskStatus['result']): void {
    const old = this.tasks.get(id);
    const now = new Date().toISOString();
    this.tasks.set(id, {
      id,
      state,
      startedAt: old?.startedAt ?? now,
      ...(state !== 'running' ? { finishedAt: now } : {}),
      ...(message ? { message } : {}),
      ...(code ? { code } : {}),
      ...(result ? { result } : {}),
    });
  }

  /**
   * One round of a scripted agent: fetch the plan, give every task that has no final status to
   * `answer` (its new status, or undefined to leave it as it is), report. Returns the plan's tasks.
   */
  async answer(answer: (task: Task, current: TaskStatus | undefined) => SimAnswer | undefined): Promise<Task[]> {
    await this.poll(0, null);
    this.applied = this.plan?.planId ?? null;
    for (const task of this.plan?.tasks ?? []) {
      const current = this.tasks.get(task.id);
      if (current && current.state !== 'running') continue;
      const a = answer(task, current);
      if (a) this.setTask(task.id, a.state, a.message, a.code, a.result);
    }
    await this.report();
    return this.plan?.tasks ?? [];
  }

  async report(extra: { snapshots?: SnapshotReport[]; deleted?: string[]; nextScheduledAt?: string | null } = {}): Promise<HttpResult<{ planId: string }>> {
    const n = this.options.node;
    const body: AgentReport = {
      apiVersion: PROTOCOL_VERSION,
      node: n,
      agentVersion: 'sim-1',
      planId: this.applied,
      member: { name: n, clientUrl: `http://${n}:2379`, peerUrl: `http://${n}:2380`, state: this.memberState, ...(this.memberError ? { error: this.memberError } : {}) },
      // Like a real agent: statuses of the plan's tasks only.
      tasks: [...this.tasks.values()].filter((t) => this.plan?.tasks.some((x) => x.id === t.id)),
      snapshots: extra.snapshots ?? [],
      deleted: extra.deleted ?? [],
      nextScheduledAt: extra.nextScheduledAt ?? null,
    };
    const res = await this.call<{ planId: string }>('POST', '/api/v1/agent/report', body);
    if (res.status !== 200) throw new Error(`report ${n}: ${res.status} ${res.text}`);
    return res;
  }

  /** Fetch the current plan (no wait), apply it, report. Returns the plan's tasks. */
  async sync(extra: Parameters<SimAgent['report']>[0] = {}): Promise<Task[]> {
    await this.poll(0, null);
    this.applied = this.plan?.planId ?? null;
    await this.report(extra);
    return this.plan?.tasks ?? [];
  }

  /** A snapshot report of this node. */
  snapshot(name: string, p: { storage?: 'local' | 's3'; state?: 'successful' | 'failed'; bucket?: string; createdAt?: string; size?: number; message?: string; durationMs?: number } = {}): SnapshotReport {
    const createdAt = p.createdAt ?? new Date().toISOString();
    const location = p.storage === 's3' ? `s3://${p.bucket ?? 'backups'}/${name}` : `file:///var/lib/etcdsnap-agent/snapshots/${name}`;
    const ok = (p.state ?? 'successful') === 'successful';
    return {
      name,
      node: this.options.node,
      state: p.state ?? 'successful',
      location,
      size: p.size ?? 1000,
      createdAt,
      ...(p.message ? { message: p.message } : {}),
      ...(p.durationMs !== undefined ? { durationMs: p.durationMs } : {}),
      metadata: ok ? fakeMetadata({ name, node: this.options.node, clusterId: this.clusterId, createdAt, size: p.size }) : null,
    };
  }
}
