import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { createLogger, type Logger } from '../core/log.js';
import { buildServer } from './app.js';
import { bootstrap } from './bootstrap.js';
import { parseListen, parseServerConfig, publicUrl, type ServerConfigInput } from './config.js';

export interface RunningServer {
  app: FastifyInstance;
  /** The URL agents and the CLI use. */
  url: string;
  /** Only when this start created (or reset) it. */
  adminToken: string | undefined;
  caChecksum: string | null;
  /** Stops listening, ends long-polls and streams, closes the database. Idempotent. */
  close(): Promise<void>;
}

export interface RunOptions {
  logger?: Logger;
  /** Where the admin token and the URL are printed. Default process.stdout. */
  out?: NodeJS.WritableStream;
  resetAdminToken?: boolean;
  now?: () => number;
}

/** Wiring only: config, data dir, TLS, listen. The caller owns signals (see serverCommand) or calls close(). */
export async function runServer(input: ServerConfigInput, options: RunOptions = {}): Promise<RunningServer> {
  const config = parseServerConfig(input);
  const logger = options.logger ?? createLogger(config.logLevel, 'etcdsnap-server');
  const out = options.out ?? process.stdout;
  const boot = await bootstrap(config, logger, { resetAdminToken: options.resetAdminToken, now: options.now });
  let app: FastifyInstance;
  try {
    app = await buildServer(boot.deps);
    const { host, port } = parseListen(config.listen);
    // A deep accept queue: after a server restart every agent reconnects at once (Node's default is 511).
    await app.listen({ host, port, backlog: 4096 });
    const address = app.server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    const url = publicUrl(config, hostname(), bound);
    app.etcdsnap.setUrl(url);
    if (boot.adminToken) out.write(`admin token: ${boot.adminToken}\n`);
    logger.info({ url, listen: `${host}:${bound}`, https: !config.insecureHttp, caChecksum: boot.deps.tls?.caChecksum ?? null }, 'etcdsnap server listening');
    let closing: Promise<void> | undefined;
    return {
      app,
      url,
      adminToken: boot.adminToken,
      caChecksum: boot.deps.tls?.caChecksum ?? null,
      close: () => (closing ??= app.close().finally(() => boot.close())),
    };
  } catch (err) {
    await boot.close();
    throw err;
  }
}

/** Runs until SIGINT/SIGTERM, then shuts down cleanly (a second signal exits at once). */
export async function runUntilSignal(input: ServerConfigInput, options: RunOptions = {}): Promise<void> {
  const server = await runServer(input, options);
  (options.out ?? process.stdout).write(`etcdsnap server: ${server.url}${server.caChecksum ? ` (CA sha256 ${server.caChecksum})` : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.once(signal, () => process.exit(130));
      server.app.log.info({ signal }, 'shutting down');
      void server.close().then(resolve, (err: unknown) => {
        server.app.log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
