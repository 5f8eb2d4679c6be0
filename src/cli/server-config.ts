import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { EtcdsnapError } from '../core/errors.js';
import type { ApiClient, ServerConnection } from './api-client.js';

/** `$ETCDSNAP_CONFIG`, else `$XDG_CONFIG_HOME/etcdsnap/config.json`, else `~/.config/etcdsnap/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ETCDSNAP_CONFIG) return env.ETCDSNAP_CONFIG;
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'etcdsnap', 'config.json');
}

export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<Partial<ServerConnection>> {
  try {
    return JSON.parse(await readFile(configPath(env), 'utf8')) as Partial<ServerConnection>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new EtcdsnapError('INVALID_CONFIG', `Cannot read ${configPath(env)}: ${(err as Error).message}. Run "etcdsnap login" again.`);
  }
}

/** Written atomically with mode 0600: it holds the token. */
export async function writeConfig(conn: ServerConnection, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = configPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(conn, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
  return path;
}

export interface ServerOptions {
  server?: string;
  token?: string;
}

/** `--server`/`--token` on every command that talks to the server. */
export function addServerOptions(cmd: Command): Command {
  return cmd.option('--server <url>', 'etcdsnap server URL (default: $ETCDSNAP_SERVER, else the login config)').option('--token <token>', 'API token (default: $ETCDSNAP_TOKEN, else the login config)');
}

/** Flags, then environment, then the login config file. */
export async function connect(opts: ServerOptions, env: NodeJS.ProcessEnv = process.env): Promise<ApiClient> {
  const file = await readConfig(env);
  const server = opts.server ?? env.ETCDSNAP_SERVER ?? file.server;
  const token = opts.token ?? env.ETCDSNAP_TOKEN ?? file.token;
  if (!server || !token) {
    throw new EtcdsnapError('INVALID_ARGUMENT', 'Not logged in: run "etcdsnap login --server URL --token TOKEN", or set ETCDSNAP_SERVER and ETCDSNAP_TOKEN.');
  }
  const sameServer = file.server === server;
  // Loaded here: the HTTP client (undici) is only for commands that talk to a server.
  const { ApiClient } = await import('./api-client.js');
  return new ApiClient({
    server,
    token,
    ...(sameServer && file.ca ? { ca: file.ca } : {}),
    ...(sameServer && file.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
  });
}
