/** Free loopback ports and temporary directories for tests and benchmarks. */
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const handedOut = new Set<number>();

/**
 * A port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). Never returns
 * the same port twice in one process. Another process can still take it before it is used;
 * startEtcdCluster retries on "address already in use".
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** A new empty directory under os.tmpdir(); the caller (or the cluster) removes it. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
}
