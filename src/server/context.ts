import type { Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { ServerConfig } from './config.js';
import type { Keyring } from './crypto.js';
import type { Database } from './db/schema.js';
import type { EventBus } from './events.js';
import type { ServerMetrics } from './metrics.js';
import type { OperationEngine } from './operations/engine.js';
import type { PlanService } from './plans.js';
import type { S3Reconciler } from './reconcile.js';
import type { ServerTls } from './tls.js';

/** What buildServer needs from its caller (main.ts or a test): nothing in here listens or starts timers. */
export interface ServerDeps {
  db: Kysely<Database>;
  config: ServerConfig;
  keyring: Keyring;
  /** The TLS material agents trust; null when the server runs plain HTTP. */
  tls: ServerTls | null;
  logger: Logger;
  /** URL in join commands. Default: from the config (see publicUrl). */
  url?: string;
  /** Clock in epoch milliseconds (tests move it). Default Date.now. */
  now?: () => number;
}

/** The services every route and loop uses; built once per server by buildServer. */
export interface ServerContext {
  readonly db: Kysely<Database>;
  readonly config: ServerConfig;
  readonly keyring: Keyring;
  readonly tls: ServerTls | null;
  readonly log: Logger;
  readonly url: string;
  readonly now: () => number;
  /** When this server instance was built: nodes are not judged "gone" for a downtime of the server itself. */
  readonly startedAt: number;
  readonly events: EventBus;
  readonly metrics: ServerMetrics;
  readonly plans: PlanService;
  readonly engine: OperationEngine;
  readonly reconciler: S3Reconciler;
}
