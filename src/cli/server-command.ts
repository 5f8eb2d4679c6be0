import { Command, Option } from 'commander';
import { LOG_LEVELS } from '../core/log.js';
import { runUntilSignal } from '../server/main.js';

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

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
    .option('--reset-admin-token', 'replace the admin token with a new one and print it', false)
    .action(async (opts: { dataDir: string; listen: string; insecureHttp: boolean; tlsCert?: string; tlsKey?: string; tlsCa?: string; hostname: string[]; url?: string; logLevel: string; resetAdminToken: boolean }) => {
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
        },
        { resetAdminToken: opts.resetAdminToken },
      );
    });
}
