/**
 * A small fake control plane for agent integration tests: register / plan (long-poll) /
 * report per src/core/plans.ts, on 127.0.0.1, over HTTP or HTTPS with its own CA; records
 * every report. It validates what agents send against the protocol schemas (400 otherwise),
 * so a contract drift fails the tests. It can go down and come back on the same port.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AgentReportSchema,
  PROTOCOL_VERSION,
  RegistrationRequestSchema,
  type AgentReport,
  type NodePlan,
  type SnapshotPolicy,
  type SnapshotReport,
  type Task,
  type TaskStatus,
} from '../../src/core/plans.js';
import { protocolValidator } from '../../src/agent/validate.js';
import { tempDir } from '../harness/index.js';

const run = promisify(execFile);
const reportValidator = protocolValidator(AgentReportSchema);
const registrationValidator = protocolValidator(RegistrationRequestSchema);

export interface FakeNode {
  name: string;
  nodeId: string;
  token: string;
  plan: NodePlan;
  registrations: number;
  member: { name: string; clientUrl: string; peerUrl: string };
}

export interface RecordedReport {
  at: number;
  node: string;
  report: AgentReport;
}

export interface FakeOptions {
  https?: boolean;
  policy?: Partial<SnapshotPolicy>;
  kubernetesVersion?: string | null;
  clusterConfig?: string | null;
}

export class FakeControlPlane {
  readonly registrationToken = `reg-${randomBytes(12).toString('hex')}`;
  readonly cluster = { id: `c${randomBytes(4).toString('hex')}`, name: 'test-cluster' };
  readonly nodes = new Map<string, FakeNode>();
  readonly reports: RecordedReport[] = [];
  /** Bodies the fake refused (should stay empty). */
  readonly invalid: Array<{ path: string; message: string }> = [];
  policy: SnapshotPolicy;
  kubernetesVersion: string | null;
  clusterConfig: string | null;
  /** PEM of the CA and the DER sha256 of it (https only). */
  ca: string | undefined;
  caChecksum: string | undefined;
  url = '';
  private server: http.Server | undefined;
  private port = 0;
  private planSeq = 0;
  private readonly waiters = new Set<() => void>();
  private tls: { key: string; cert: string; dir: string } | undefined;

  private constructor(o: FakeOptions) {
    this.policy = { enabled: false, schedule: '0 */5 * * *', retention: 5, compression: 'none', s3: null, ...o.policy };
    this.kubernetesVersion = o.kubernetesVersion === undefined ? 'v1.30.4+rke2r1' : o.kubernetesVersion;
    this.clusterConfig = o.clusterConfig === undefined ? 'cni: canal\n' : o.clusterConfig;
  }

  static async start(o: FakeOptions = {}): Promise<FakeControlPlane> {
    const cp = new FakeControlPlane(o);
    if (o.https) await cp.makeCertificates();
    await cp.up();
    return cp;
  }

  /** Listens (again, on the same port once it had one). */
  async up(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.handle(req, res);
    const server = this.tls ? https.createServer({ key: this.tls.key, cert: this.tls.cert }, handler) : http.createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** Stops answering: closes the listener and every open connection (long-polls included). */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  async close(): Promise<void> {
    await this.down();
    for (const wake of this.waiters) wake();
    if (this.tls) await rm(this.tls.dir, { recursive: true, force: true });
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  node(name: string): FakeNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`node ${name} has not registered`);
    return n;
  }

  /** Changes the policy of every node's plan. */
  setPolicy(patch: Partial<SnapshotPolicy>): void {
    this.policy = { ...this.policy, ...patch };
    for (const n of this.nodes.values()) this.bump(n, {});
  }

  addTask(node: string, task: Task): void {
    const n = this.node(node);
    this.bump(n, { tasks: [...n.plan.tasks, task] });
  }

  removeTask(node: string, id: string): void {
    const n = this.node(node);
    this.bump(n, { tasks: n.plan.tasks.filter((t) => t.id !== id) });
  }

  /** Every node token is refused from now on (agents must register again). */
  revokeTokens(): void {
    for (const n of this.nodes.values()) n.token = `revoked-${randomBytes(8).toString('hex')}`;
  }

  reportsOf(node: string): AgentReport[] {
    return this.reports.filter((r) => r.node === node).map((r) => r.report);
  }

  snapshotsOf(node: string): SnapshotReport[] {
    return this.reportsOf(node).flatMap((r) => r.snapshots);
  }

  deletedOf(node: string): string[] {
    return this.reportsOf(node).flatMap((r) => r.deleted);
  }

  lastReport(node: string): AgentReport | undefined {
    return this.reportsOf(node).at(-1);
  }

  /** The latest status the node reported for a task. */
  taskStatus(node: string, id: string): TaskStatus | undefined {
    for (const r of this.reportsOf(node).reverse()) {
      const t = r.tasks.find((x) => x.id === id);
      if (t) return t;
    }
    return undefined;
  }

  private bump(n: FakeNode, change: Partial<NodePlan>): void {
    n.plan = { ...n.plan, policy: this.policy, kubernetesVersion: this.kubernetesVersion, clusterConfig: this.clusterConfig, ...change, planId: `p${++this.planSeq}` };
    for (const wake of [...this.waiters]) wake();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body?: unknown): void => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      if (req.method === 'GET' && url.pathname === '/cacerts') {
        res.writeHead(200, { 'content-type': 'application/x-pem-file' });
        res.end(this.ca ?? '');
        return;
      }
      const body = req.method === 'POST' ? JSON.parse(await readBody(req)) : undefined;
      if (req.method === 'POST' && url.pathname === '/api/v1/agent/register') {
        if (!registrationValidator.check(body)) return this.refuse(send, url.pathname, 'invalid registration');
        if (body.registrationToken !== this.registrationToken) return send(401, { code: 'UNAUTHORIZED', message: 'unknown registration token' });
        const existing = this.nodes.get(body.node);
        const token = randomBytes(24).toString('hex');
        const n: FakeNode = existing ?? {
          name: body.node,
          nodeId: `n${this.nodes.size + 1}`,
          token,
          registrations: 0,
          member: body.member,
          plan: { apiVersion: PROTOCOL_VERSION, planId: `p${++this.planSeq}`, node: body.node, cluster: this.cluster, kubernetesVersion: this.kubernetesVersion, clusterConfig: this.clusterConfig, policy: this.policy, tasks: [] },
        };
        n.token = token;
        n.registrations += 1;
        this.nodes.set(n.name, n);
        return send(200, { apiVersion: PROTOCOL_VERSION, nodeId: n.nodeId, clusterId: this.cluster.id, nodeToken: token });
      }
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const n = [...this.nodes.values()].find((x) => x.token === auth);
      if (!n) return send(401, { code: 'UNAUTHORIZED', message: 'unknown node token' });
      if (req.method === 'GET' && url.pathname === '/api/v1/agent/plan') {
        const after = url.searchParams.get('after');
        const wait = Number(url.searchParams.get('wait') ?? '30');
        const until = Date.now() + wait * 1000;
        while (n.plan.planId === after && Date.now() < until && !res.destroyed) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              this.waiters.delete(done);
              res.off('close', done);
              resolve();
            };
            const timer = setTimeout(done, Math.max(0, until - Date.now()));
            this.waiters.add(done);
            res.once('close', done);
          });
        }
        if (n.plan.planId === after) return send(204);
        return send(200, n.plan);
      }
      if (req.method === 'POST' && url.pathname === '/api/v1/agent/report') {
        if (!reportValidator.check(body)) return this.refuse(send, url.pathname, JSON.stringify(body).slice(0, 300));
        if (body.node !== n.name) return send(403, { code: 'FORBIDDEN', message: 'not your node' });
        this.reports.push({ at: Date.now(), node: n.name, report: body });
        return send(200, { planId: n.plan.planId });
      }
      send(404, { code: 'NOT_FOUND', message: `${req.method} ${url.pathname}` });
    } catch (err) {
      send(500, { code: 'INTERNAL', message: (err as Error).message });
    }
  }

  private refuse(send: (s: number, b?: unknown) => void, path: string, message: string): void {
    this.invalid.push({ path, message });
    send(400, { code: 'INVALID_ARGUMENT', message });
  }

  private async makeCertificates(): Promise<void> {
    const dir = await tempDir('etcdsnap-fake-cp-tls-');
    const f = (n: string): string => join(dir, n);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=fake etcdsnap CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
    this.tls = { key: await readFile(f('server.key'), 'utf8'), cert: await readFile(f('server.pem'), 'utf8'), dir };
    this.ca = await readFile(f('ca.pem'), 'utf8');
    const { createHash, X509Certificate } = await import('node:crypto');
    this.caChecksum = createHash('sha256').update(new X509Certificate(this.ca).raw).digest('hex');
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Polls `probe` until it returns something truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
