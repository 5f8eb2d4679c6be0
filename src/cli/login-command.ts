import { Command } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import { writeConfig } from './server-config.js';

export function loginCommand(): Command {
  return new Command('login')
    .description('Save the server URL and token (and pin the server CA) for later commands.')
    .requiredOption('--server <url>', 'etcdsnap server URL, e.g. https://etcdsnap.example:8443')
    .requiredOption('--token <token>', 'API token (the admin token printed at the server’s first start)')
    .option('--ca-checksum <sha256>', 'sha256 of the server CA (from the join command): fetch the CA and trust only it')
    .option('--insecure-skip-tls-verify', 'accept any server certificate (not recommended)')
    .action(async (opts: { server: string; token: string; caChecksum?: string; insecureSkipTlsVerify?: boolean }) => {
      let url: URL;
      try {
        url = new URL(opts.server);
      } catch {
        throw new EtcdsnapError('INVALID_ARGUMENT', `Invalid --server "${opts.server}": use a URL like https://host:8443.`);
      }
      const { ApiClient } = await import('./api-client.js');
      // The same pinning as the agent's: fetch /cacerts, keep only the CA with this checksum.
      const { fetchPinnedCA } = await import('../agent/api-client.js');
      const checksum = opts.caChecksum?.toLowerCase().replace(/^sha256:/, '').replace(/:/g, '');
      const ca = url.protocol === 'https:' && checksum ? await fetchPinnedCA(opts.server, checksum, 15_000) : undefined;
      const conn = { server: opts.server, token: opts.token, ...(ca ? { ca } : {}), ...(opts.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}) };
      const client = new ApiClient(conn);
      try {
        await client.get('/clusters');
      } finally {
        await client.close();
      }
      const path = await writeConfig(conn);
      process.stdout.write(`logged in to ${opts.server}${ca ? ' (CA pinned)' : ''}; saved to ${path}\n`);
    });
}
