import { hostname } from 'node:os';
import swagger from '@fastify/swagger';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { VERSION } from '../core/version.js';
import { installAuth, type AuthMode } from './auth.js';
import { publicUrl } from './config.js';
import type { ServerContext, ServerDeps } from './context.js';
import { EventBus } from './events.js';
import { installErrorHandling } from './http-errors.js';
import { NodeWatcher } from './node-watch.js';
import { ServerMetrics } from './metrics.js';
import { OperationEngine } from './operations/engine.js';
import { restoreOperation } from './operations/restore.js';
import { snapshotOperation } from './operations/snapshot.js';
import { PlanService } from './plans.js';
import { S3Reconciler } from './reconcile.js';
import { expireFailedRecords } from './records.js';
import { agentRoutes } from './routes/agent.js';
import { clusterRoutes } from './routes/clusters.js';
import { eventRoutes, EventStreams } from './routes/events.js';
import { operationRoutes } from './routes/operations.js';
import { restoreRoutes } from './routes/restores.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { systemRoutes } from './routes/system.js';
import { installUi } from './routes/ui.js';

const Ajv = AjvModule.default ?? AjvModule;
const addFormats = addFormatsModule.default ?? addFormatsModule;

export interface RouteInfo {
  method: string;
  url: string;
  auth: AuthMode;
}

/** What tests and main.ts reach through `app.etcdsnap`. */
export interface ServerHandle extends ServerContext {
  /** Every route with its auth mode (tests iterate them: a new route cannot forget auth). */
  readonly routes: readonly RouteInfo[];
  expireFailedRecords(): Promise<number>;
  /** Sets the URL of join commands once the listener knows its port (listen on port 0). */
  setUrl(url: string): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    etcdsnap: ServerHandle;
  }
}

/** Bodies are validated strictly (no type coercion, unknown fields refused); query strings and params coerce ("30" → 30). */
function validators(): { body: InstanceType<typeof Ajv>; other: InstanceType<typeof Ajv> } {
  const base = { allErrors: false, useDefaults: true, removeAdditional: false, strict: false } as const;
  const body = new Ajv({ ...base, coerceTypes: false });
  const other = new Ajv({ ...base, coerceTypes: 'array' });
  addFormats(body);
  addFormats(other);
  return { body, other };
}

/**
 * The server as a Fastify instance that never listens by itself (tests call `app.inject`,
 * main.ts calls `listen`). Background work — the operation tick loop (which resumes operations
 * left running), S3 reconciliation, expiry of failed records — starts when the app is ready and
 * stops when it closes; held long-polls and event streams end on close.
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const opts: FastifyServerOptions & { https?: { cert: string; key: string } | null } = {
    // HTTPS unless plain HTTP was asked for; inject() works either way.
    https: deps.tls && !config.insecureHttp ? { cert: deps.tls.cert, key: deps.tls.key } : null,
    loggerInstance: deps.logger,
    // Our own onResponse line instead: it logs the path without the query (which may hold ?token=).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    exposeHeadRoutes: false,
    return503OnClosing: true,
  };
  const app = Fastify(opts) as unknown as FastifyInstance;
  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.other).compile(schema));
  // Response schemas document the API (OpenAPI); bodies are built by views.ts, which never puts a
  // secret in. fast-json-stringify's anyOf handling made a list of 1000 clusters 30x slower.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const routes: RouteInfo[] = [];
  let url = deps.url ?? publicUrl(config, hostname());
  const now = deps.now ?? Date.now;
  const partial = {
    db: deps.db,
    config,
    keyring: deps.keyring,
    tls: deps.tls,
    log: deps.logger,
    now,
    startedAt: now(),
    events: new EventBus(),
    routes,
    expireFailedRecords: () => expireFailedRecords(handle),
    setUrl: (u: string) => {
      url = u;
    },
  };
  Object.defineProperty(partial, 'url', { get: () => url, enumerable: true });
  const get = (): ServerHandle => handle;
  const handle: ServerHandle = Object.assign(partial as typeof partial & { url: string }, {
    metrics: new ServerMetrics(get),
    plans: new PlanService(partial),
    engine: new OperationEngine(get).register(snapshotOperation).register(restoreOperation),
    reconciler: new S3Reconciler(get),
  });
  const ctx: ServerContext = handle;
  app.decorate('etcdsnap', handle);

  app.addHook('onRoute', (r) => {
    for (const method of ([] as string[]).concat(r.method)) routes.push({ method, url: r.url, auth: (r.config as { auth?: AuthMode } | undefined)?.auth ?? 'admin' });
  });
  installErrorHandling(app);
  installUi(app);
  installAuth(app, ctx);
  app.addHook('onResponse', async (req, reply) => {
    const quiet = req.method === 'GET' || req.url.startsWith('/api/v1/agent/');
    // The path only: a query may hold ?token= (event streams).
    const entry = { method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (reply.statusCode >= 500) req.log.error(entry, 'request');
    else if (quiet) req.log.debug(entry, 'request');
    else req.log.info(entry, 'request');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'etcdsnap server API', version: VERSION, description: 'Clusters, snapshot records, operations and agents of etcdsnap. Every route needs `Authorization: Bearer <token>` except /cacerts and /healthz.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  const streams = new EventStreams();
  systemRoutes(app, ctx);
  clusterRoutes(app, ctx);
  snapshotRoutes(app, ctx);
  operationRoutes(app, ctx);
  restoreRoutes(app, ctx);
  eventRoutes(app, ctx, streams);
  agentRoutes(app, ctx);

  let expiry: NodeJS.Timeout | undefined;
  const nodeWatcher = new NodeWatcher(get);
  app.addHook('onReady', async () => {
    const c = get();
    await c.metrics.init(c);
    await expireFailedRecords(c);
    c.engine.startLoop();
    c.reconciler.start();
    nodeWatcher.start();
    if (config.reconcileIntervalMs > 0) c.reconciler.reconcileAll().catch((err: unknown) => c.log.warn({ err }, 'first S3 reconciliation failed'));
    expiry = setInterval(() => void expireFailedRecords(c).catch((err: unknown) => c.log.warn({ err }, 'record expiry failed')), Math.min(600_000, config.failedRecordTtlMs));
    expiry.unref();
  });
  app.addHook('preClose', async () => {
    const c = get();
    if (expiry) clearInterval(expiry);
    nodeWatcher.stop();
    c.plans.close();
    streams.closeAll();
    await Promise.all([c.engine.stop(), c.reconciler.stop()]);
  });
  return app;
}
