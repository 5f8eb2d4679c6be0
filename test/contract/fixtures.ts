import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { METADATA_FORMAT_VERSION, type SnapshotMetadata } from '../../src/core/metadata.js';
import { parseName } from '../../src/core/names.js';
import { codecOfName } from '../../src/core/codec.js';

/** Metadata for test bodies that did not come from etcd (the targets do not care). */
export function metadataFor(name: string, body: Buffer, overrides: Partial<SnapshotMetadata> = {}): SnapshotMetadata {
  const parsed = parseName(name);
  const sha = createHash('sha256').update(body).digest('hex');
  return {
    formatVersion: METADATA_FORMAT_VERSION,
    name,
    base: parsed?.base ?? 'test',
    node: parsed?.node ?? 'node-a',
    cluster: { id: 'cluster-1', name: 'one' },
    createdAt: new Date((parsed?.unix ?? 1_700_000_000) * 1000).toISOString(),
    kind: parsed?.base === 'etcd-snapshot' ? 'recurring' : 'on-demand',
    kubernetesVersion: 'v1.30.4+rke2r1',
    clusterConfig: 'cni: canal\n',
    etcd: {
      version: '3.4.23',
      clusterId: 'cdf818194e3a8c32',
      member: 'http://127.0.0.1:2379',
      memberCount: 3,
      revision: 42,
      revisionMin: 42,
      revisionExact: true,
      trailerSha256: sha,
    },
    rawSize: body.length,
    storedSize: body.length,
    codec: codecOfName(name),
    sha256: sha,
    rawSha256: sha,
    summary: { revision: 42, keys: 3, byResource: { pods: 2, '(other)': 1 } },
    ...overrides,
  };
}

/** A body delivered in chunks, like a network stream. */
export function chunked(body: Buffer, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunkSize) chunks.push(body.subarray(i, i + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

/** A stream that yields `goodBytes` bytes and then fails. */
export function failingAfter(goodBytes: number, message = 'connection reset by test'): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= goodBytes) {
        this.destroy(new Error(message));
        return;
      }
      const n = Math.min(64 * 1024, goodBytes - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
