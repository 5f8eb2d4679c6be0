/**
 * Child-process entry of the s3rver harness (see s3rver.ts). Runs s3rver on 127.0.0.1 on a
 * free port and tells the parent the port over IPC. It must run under
 * `node --openssl-legacy-provider`: s3rver's ListObjectsV2 continuation tokens use DES.
 *
 * argv[2]: JSON `{ directory: string, keyFile?: string, certFile?: string }`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

interface ChildConfig {
  directory: string;
  keyFile?: string;
  certFile?: string;
}

const require = createRequire(import.meta.url);
// s3rver is CommonJS without type declarations; the constructor shape above is all we use.
const S3rver = require('s3rver') as S3rverCtor;

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: config.directory,
  // Path-style only: vhost parsing of "127.0.0.1" would take "127" for a bucket name.
  vhostBuckets: false,
  ...(config.keyFile && config.certFile ? { key: readFileSync(config.keyFile), cert: readFileSync(config.certFile) } : {}),
});

const address = await server.run();
process.send?.({ port: address.port });

let closing = false;
async function shutdown(): Promise<void> {
  if (closing) return;
  closing = true;
  // close() waits for keep-alive sockets of clients; do not let them hold us up.
  await Promise.race([server.close().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
// The parent died or stopped us without a signal: do not outlive it.
process.on('disconnect', () => void shutdown());
