import { Command, Option } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { LOG_LEVELS } from '../core/log.js';
import { parseDuration } from '../core/schedule.js';

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

interface ServerOptions {
  dataDir: string;
  listen: string;
  insecureHttp: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  hostname: string[];
  url?: string;
  logLevel: string;
  nodeTimeout: string;
  reportInterval: string;
  reconcileInterval: string;
  failedRecordTtl: string;
  restoreKeepOldDataDays: string;
  restoreStartTimeout: string;
  resetAdminToken: boolean;
}

/** A whole number as given (the config schema checks its range). */
function wholeNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new EtcdsnapError('INVALID_CONFIG', `Invalid ${flag} "${value}": expected a whole number of days, e.g. 0 or 7.`);
  return Number(value);
}

/** `etcdsnap server`: the control plane (see docs/server.md). */
export function serverCommand(): Command {
  return new Command('server')
    .description('Run the etcdsnap server: API, agents’ plans, operations (state in --data-dir)')
    .requiredOption('--data-dir <dir>', 'database, server key and TLS files (created 0700)')
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:8443')
    .option('--insecure-http', 'serve plain HTTP instead of HTTPS (tests, trusted networks only)', false)
    .option('--tls-cert <file>', 'serve this PEM certificate (chain) instead of the server’s own')
    .option('--tls-key <file>', 'the key of --tls-cert')
    .option('--tls-ca <file>', 'the CA of --tls-cert, served at /cacerts and pinned in join commands')
    .option('--hostname <name>', 'DNS name or IP for the certificate and join commands (repeatable, or comma-separated)', collect, [])
    .option('--url <url>', 'URL agents use to reach the server (behind a load balancer)')
    .addOption(new Option('--log-level <level>', 'log level (JSON logs on stderr)').choices(LOG_LEVELS).default('info'))
    .option('--node-timeout <duration>', 'an operation fails when one of its nodes is silent this long', '10m')
    .option('--report-interval <duration>', 'agents’ report period as the server expects it (a node unseen for 3 is disconnected)', '30s')
    .option('--reconcile-interval <duration>', 'S3 listing reconciliation period (0s: on demand only)', '60s')
    .option('--failed-record-ttl <duration>', 'failed snapshot records are removed after this long', '24h')
    .option('--restore-keep-old-data-days <n>', 'days agents keep a member’s old data dir after a restore finished (0: removed at once)', '0')
    .option('--restore-start-timeout <duration>', 'how long a member may take to become healthy after a restore or a rollback', '180s')
    .option('--reset-admin-token', 'replace the admin token with a new one and print it', false)
    .action(async (opts: ServerOptions) => {
      // Loaded here: the server's modules (Fastify, SQLite) are not for every CLI command.
      const { runUntilSignal } = await import('../server/main.js');
      await runUntilSignal(
        {
          dataDir: opts.dataDir,
          listen: opts.listen,
          insecureHttp: opts.insecureHttp,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
          tlsCA: opts.tlsCa,
          hostnames: opts.hostname,
          url: opts.url,
          logLevel: opts.logLevel as (typeof LOG_LEVELS)[number],
          nodeTimeoutMs: parseDuration(opts.nodeTimeout),
          reportIntervalMs: parseDuration(opts.reportInterval),
          reconcileIntervalMs: opts.reconcileInterval === '0' ? 0 : parseDuration(opts.reconcileInterval),
          failedRecordTtlMs: parseDuration(opts.failedRecordTtl),
          restoreKeepOldDataDays: wholeNumber(opts.restoreKeepOldDataDays, '--restore-keep-old-data-days'),
          restoreStartTimeoutMs: parseDuration(opts.restoreStartTimeout),
        },
        { resetAdminToken: opts.resetAdminToken },
      );
    });
}
