import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isEtcdsnapError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { downloadSnapshot, type DownloadOptions } from './transfer-client.js';
import { TransferServer, tokenDigest, transferPath } from './transfer-server.js';
import { ensureTransferTls, type TransferTls } from './transfer-tls.js';

const logger = createLogger('silent');
const token = randomBytes(24).toString('base64url');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An HTTPS server with the transfer certificate that records every request and answers with `answer`. */
async function rawServer(tls: TransferTls, answer: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, n: number) => void): Promise<{ url: string; seen: Array<{ authorization: string | undefined; range: string | undefined }>; handshakes: () => number; close: () => Promise<void> }> {
  const seen: Array<{ authorization: string | undefined; range: string | undefined }> = [];
  let handshakes = 0;
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    seen.push({ authorization: req.headers.authorization, range: req.headers.range });
    answer(req, res, seen.length);
  });
  server.on('connection', () => (handshakes += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    handshakes: () => handshakes,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('restore transfer endpoint and pinned download', () => {
  let dir: string;
  let tls: TransferTls;
  let server: TransferServer;
  let url: string;
  const body = randomBytes(300 * 1024 + 17);
  const file = (): string => join(dir, 'staged.db');
  const opts = (over: Partial<DownloadOptions> = {}): DownloadOptions => ({
    url,
    operationId: 'op1',
    certSha256: tls.certSha256,
    token,
    node: 'node-1',
    dest: join(dir, 'out', 'snapshot.db'),
    size: body.length,
    sha256: sha(body),
    retryForMs: 1000,
    ...over,
  });
  const leftovers = async (): Promise<string[]> => readdir(join(dir, 'out'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'etcdsnap-transfer-'));
    await writeFile(file(), body);
    await writeFile(join(dir, 'placeholder'), '');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'out'));
    tls = await ensureTransferTls(dir, 'node-1');
    server = new TransferServer({ host: '127.0.0.1', port: 0, tls: async () => tls, logger });
    const port = await server.serve({ operationId: 'op1', file: file(), size: body.length, tokenSha256: tokenDigest(token) });
    url = `https://127.0.0.1:${port}`;
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its certificate across restarts (same pin) with the key 0600', async () => {
    const again = await ensureTransferTls(dir, 'node-1');
    assert.equal(again.certSha256, tls.certSha256);
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(join(dir, 'transfer-tls', 'key.pem'))).mode & 0o777, 0o600);
  });

  it('happy path: the bytes arrive equal, with progress, nothing else left', async () => {
    const seen: number[] = [];
    const r = await downloadSnapshot(opts({ progress: (b) => seen.push(b) }));
    assert.equal(r.bytes, body.length);
    assert.ok((await readFile(opts().dest)).equals(body));
    assert.equal(seen.at(-1), body.length);
    assert.deepEqual(await leftovers(), ['snapshot.db']);
    await rm(opts().dest);
  });

  it('serves the stored bytes at snapshot.stored only when given; the raw file is served either way', async () => {
    await assert.rejects(downloadSnapshot(opts({ file: 'snapshot.stored' })), (e: unknown) => isEtcdsnapError(e, 'TRANSFER_FAILED') && /404/.test(e.message));
    const stored = randomBytes(70 * 1024);
    await writeFile(join(dir, 'snapshot.stored'), stored);
    await server.serve({ operationId: 'op1', file: file(), size: body.length, tokenSha256: tokenDigest(token), storedFile: join(dir, 'snapshot.stored') });
    try {
      const dest = join(dir, 'out', 'stored.bin');
      await downloadSnapshot(opts({ file: 'snapshot.stored', dest, size: stored.length, sha256: sha(stored) }));
      assert.ok((await readFile(dest)).equals(stored));
      await rm(dest);
      await downloadSnapshot(opts());
      assert.ok((await readFile(opts().dest)).equals(body));
      await rm(opts().dest);
    } finally {
      await server.serve({ operationId: 'op1', file: file(), size: body.length, tokenSha256: tokenDigest(token) });
    }
  });

  it('a wrong token → 401 and TRANSFER_FAILED naming the node and URL; nothing left', async () => {
    const before401 = server.answered.get(401) ?? 0;
    await assert.rejects(downloadSnapshot(opts({ token: 'x'.repeat(40) })), (e: unknown) => isEtcdsnapError(e, 'TRANSFER_FAILED') && /401/.test(e.message) && /node-1/.test(e.message) && e.message.includes(url));
    assert.equal(server.answered.get(401), before401 + 1);
    assert.deepEqual(await leftovers(), []);
  });

  it('an operation it does not serve → 404, TRANSFER_FAILED', async () => {
    await assert.rejects(downloadSnapshot(opts({ operationId: 'other' })), (e: unknown) => isEtcdsnapError(e, 'TRANSFER_FAILED') && /404/.test(e.message));
  });

  it('a certificate that is not the pinned one: refused before the token is sent', async () => {
    const other = await ensureTransferTls(join(dir, 'other'), 'impostor');
    assert.notEqual(other.certSha256, tls.certSha256);
    const impostor = await rawServer(other, (_req, res) => res.end('nope'));
    try {
      await assert.rejects(downloadSnapshot(opts({ url: impostor.url })), (e: unknown) => isEtcdsnapError(e, 'TRANSFER_FAILED') && /not the certificate the server announced/.test(e.message));
      assert.equal(impostor.handshakes(), 1, 'the client did connect');
      assert.deepEqual(impostor.seen, [], 'no request, so no Authorization header, reached the server');
      assert.deepEqual(await leftovers(), []);
    } finally {
      await impostor.close();
    }
  });

  it('a truncated body → SNAPSHOT_CHECKSUM_MISMATCH, nothing left at the destination', async () => {
    const short = await rawServer(tls, (_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length - 1000) });
      res.end(body.subarray(0, body.length - 1000));
    });
    try {
      await assert.rejects(downloadSnapshot(opts({ url: short.url })), (e: unknown) => isEtcdsnapError(e, 'SNAPSHOT_CHECKSUM_MISMATCH') && /bytes/.test(e.message));
      assert.deepEqual(await leftovers(), []);
    } finally {
      await short.close();
    }
  });

  it('a corrupted body → SNAPSHOT_CHECKSUM_MISMATCH, nothing left at the destination', async () => {
    const bad = Buffer.from(body);
    bad[1234] = (bad[1234] as number) ^ 0xff;
    const corrupt = await rawServer(tls, (_req, res) => {
      res.writeHead(200, { 'content-length': String(bad.length) });
      res.end(bad);
    });
    try {
      await assert.rejects(downloadSnapshot(opts({ url: corrupt.url })), (e: unknown) => isEtcdsnapError(e, 'SNAPSHOT_CHECKSUM_MISMATCH') && /sha256/.test(e.message));
      assert.deepEqual(await leftovers(), []);
    } finally {
      await corrupt.close();
    }
  });

  it('a connection cut mid-body resumes with Range and still verifies', async () => {
    const flaky = await rawServer(tls, (req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-length': String(body.length) });
        res.write(body.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 50));
        return;
      }
      const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(206, { 'content-length': String(body.length - from), 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(from));
    });
    try {
      const r = await downloadSnapshot(opts({ url: flaky.url }));
      assert.equal(r.attempts, 2);
      assert.match(flaky.seen[1]?.range ?? '', /^bytes=[1-9]\d*-$/);
      assert.ok((await readFile(opts().dest)).equals(body));
      await rm(opts().dest);
    } finally {
      await flaky.close();
    }
  });

  it('the real endpoint serves Range requests (206) and refuses a range past the end (416)', async () => {
    const half = await new Promise<{ status: number; length: number; bytes: Buffer }>((resolve, reject) => {
      const req = https.request(`${url}${transferPath('op1')}`, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, range: 'bytes=1000-' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, length: Number(res.headers['content-length']), bytes: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(half.status, 206);
    assert.equal(half.length, body.length - 1000);
    assert.ok(half.bytes.equals(body.subarray(1000)));
    const past = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${url}${transferPath('op1')}`, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, range: `bytes=${body.length}-` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(past, 416);
  });

  it('an agent restarted while serving listens again, on the port it had (port 0 configured)', async () => {
    const { parseAgentConfig } = await import('./config.js');
    const { StateStore } = await import('./state.js');
    const { TransferService } = await import('./transfer.js');
    const dataDir = join(dir, 'agent');
    const config = parseAgentConfig({ server: 'http://127.0.0.1:1', registrationToken: 'r'.repeat(32), nodeName: 'node-1', dataDir, transferListen: '127.0.0.1:0', etcdPeerUrl: 'http://127.0.0.1:2380' });
    const state = await StateStore.open(dataDir, { server: config.server, node: 'node-1' });
    const first = new TransferService(config, state, logger);
    const served = await first.serve('op9', file(), body.length, token);
    const port = first.server.port;
    assert.equal(served.url, `https://127.0.0.1:${port}`);
    await first.close(); // the agent stops; the state still says it serves op9
    const again = new TransferService(config, await StateStore.open(dataDir, { server: config.server, node: 'node-1' }), logger);
    try {
      await again.resume();
      assert.equal(again.server.port, port);
      assert.equal((await again.certificate()).certSha256, served.certSha256);
      await downloadSnapshot(opts({ url: served.url, operationId: 'op9', certSha256: served.certSha256 }));
      assert.ok((await readFile(opts().dest)).equals(body));
      await rm(opts().dest);
      await again.unserve('op9');
      assert.equal(again.server.listening, false);
    } finally {
      await again.close();
    }
  });

  it('nobody listening: retried, then TRANSFER_FAILED naming the node and URL', async () => {
    const closed = new TransferServer({ host: '127.0.0.1', port: 0, tls: async () => tls, logger });
    const port = await closed.serve({ operationId: 'op1', file: file(), size: body.length, tokenSha256: tokenDigest(token) });
    await closed.unserve('op1');
    assert.equal(closed.listening, false, 'it stops listening once nothing is served');
    const t0 = Date.now();
    await assert.rejects(downloadSnapshot(opts({ url: `https://127.0.0.1:${port}`, retryForMs: 800 })), (e: unknown) => isEtcdsnapError(e, 'TRANSFER_FAILED') && /ECONNREFUSED/.test(e.message) && e.message.includes(`127.0.0.1:${port}`));
    assert.ok(Date.now() - t0 >= 500, 'it retried for a while');
  });
});
