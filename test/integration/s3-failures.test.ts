/**
 * The S3 target when things go wrong, against real s3rver servers: untrusted TLS, a wrong
 * access key id, a missing bucket, a closed port, a store that fails mid-put, cancellation.
 * Every failure has its code, names the S3 call, leaks no secret and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isEtcdsnapError, type ErrorCode } from '../../src/core/errors.js';
import { createS3Client, type S3Api } from '../../src/storage/s3-client.js';
import { parseS3Config, type S3ConfigInput } from '../../src/core/s3-config.js';
import { S3Target } from '../../src/storage/s3.js';
import { chunked, metadataFor, readAll } from '../contract/fixtures.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const MiB = 1024 * 1024;
const SECRET = 'secret-that-must-never-show-1234567890';

async function failsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<Error> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    assert.ok(isEtcdsnapError(err), `expected EtcdsnapError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    assert.ok(!err.message.includes(SECRET) && !JSON.stringify(err.toJSON()).includes(SECRET), 'a secret leaked');
    return true;
  });
  return caught as Error;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let http: S3rverHandle;
let https: S3rverHandle;
before(async () => {
  [http, https] = await Promise.all([startS3rver(), startS3rver({ https: true })]);
  await Promise.all([http.createBucket('failures'), https.createBucket('failures')]);
});
after(async () => {
  await Promise.all([http?.stop(), https?.stop()]);
});

const targets: S3Target[] = [];
after(() => targets.forEach((t) => t.close()));
function target(s3: S3rverHandle, extra: Partial<S3ConfigInput> = {}, client?: S3Api, clusterId?: string): S3Target {
  const t = new S3Target(parseS3Config({ ...s3.targetConfig('failures'), folder: 'f', partSizeBytes: 5 * MiB, secretAccessKey: SECRET, ...extra }), { client, clusterId });
  targets.push(t);
  return t;
}
const put = (t: S3Target, name: string, body = randomBytes(1000)): Promise<unknown> => t.put(name, chunked(body), { metadata: () => metadataFor(name, body) });

describe('S3 target over HTTPS', () => {
  it('refuses an endpoint whose CA it was not given: TARGET_TLS_UNTRUSTED on list and put', async () => {
    const t = target(https, { endpointCA: undefined });
    await failsWith(t.list(), 'TARGET_TLS_UNTRUSTED', /set the custom CA \(--s3-endpoint-ca\)/);
    const before = await https.leftovers('failures');
    await failsWith(put(t, 'on-demand-tls-1'), 'TARGET_TLS_UNTRUSTED');
    assert.deepEqual(await https.leftovers('failures'), before);
  });

  it('works with skipTlsVerify, only when asked', async () => {
    const t = target(https, { endpointCA: undefined, skipTlsVerify: true });
    await put(t, 'on-demand-skip-1');
    assert.ok((await t.list()).some((s) => s.name === 'on-demand-skip-1'));
    await t.delete('on-demand-skip-1');
  });
});

describe('S3 target errors', () => {
  it('a wrong access key id → TARGET_ACCESS_DENIED naming the call', async () => {
    const t = target(http, { accessKeyId: 'WRONGKEYID' });
    await failsWith(t.list(), 'TARGET_ACCESS_DENIED', /^ListObjectsV2 on s3:\/\/failures was denied .*check the access key/);
    await failsWith(t.stat('on-demand-x-1'), 'TARGET_ACCESS_DENIED', /^GetObject on s3:\/\/failures\/f\/\.metadata\/on-demand-x-1\.json was denied/);
    const before = await http.leftovers('failures');
    await failsWith(put(t, 'on-demand-denied-1'), 'TARGET_ACCESS_DENIED', /was denied \(InvalidAccessKeyId\)/);
    assert.deepEqual(await http.leftovers('failures'), before);
    const check = await t.testConnection();
    assert.equal(check.ok, false);
    assert.equal(check.failedStep, 'list');
    assert.equal(check.error?.code, 'TARGET_ACCESS_DENIED');
  });

  it('a missing bucket → TARGET_BUCKET_NOT_FOUND on list, stat and put', async () => {
    const t = target(http, { bucket: 'no-such-bucket' });
    const msg = /^Bucket no-such-bucket does not exist in region us-east-1 at endpoint http:\/\/127\.0\.0\.1:\d+: create it or fix the bucket name\.$/;
    await failsWith(t.list(), 'TARGET_BUCKET_NOT_FOUND', msg);
    await failsWith(t.stat('on-demand-x-1'), 'TARGET_BUCKET_NOT_FOUND', msg);
    await failsWith(put(t, 'on-demand-x-1'), 'TARGET_BUCKET_NOT_FOUND', msg);
  });

  it('an endpoint that is down → TARGET_UNREACHABLE, quickly (bounded retries)', async () => {
    const port = await closedPort();
    const t = target(http, { endpoint: `http://127.0.0.1:${port}` });
    const t0 = performance.now();
    await failsWith(t.list(), 'TARGET_UNREACHABLE', new RegExp(`Cannot reach http://127\\.0\\.0\\.1:${port} for ListObjectsV2.*ECONNREFUSED`));
    await failsWith(put(t, 'on-demand-down-1'), 'TARGET_UNREACHABLE');
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
  });

  it('an endpoint that accepts but never answers → TARGET_TIMEOUT after timeoutMs', async () => {
    const sockets = new Set<Socket>();
    const blackHole = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    try {
      const { port } = blackHole.address() as { port: number };
      const t = target(http, { endpoint: `http://127.0.0.1:${port}`, timeoutMs: 1000, maxAttempts: 1 });
      const t0 = performance.now();
      await failsWith(t.list(), 'TARGET_TIMEOUT', /ListObjectsV2 on s3:\/\/failures at http:\/\/127\.0\.0\.1:\d+ timed out: .*--s3-timeout/);
      const ms = performance.now() - t0;
      assert.ok(ms >= 900 && ms < 4000, `took ${Math.round(ms)} ms`);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((r) => blackHole.close(() => r()));
    }
  });

  it('testConnection runs list, write, read and delete and leaves nothing', async () => {
    const before = await http.leftovers('failures');
    const check = await target(http).testConnection();
    assert.equal(check.ok, true, JSON.stringify(check));
    assert.deepEqual(
      check.steps.map((s) => [s.step, s.ok]),
      [
        ['list', true],
        ['write', true],
        ['read', true],
        ['delete', true],
      ],
    );
    assert.deepEqual(await http.leftovers('failures'), before);
  });
});

describe('S3 target put failures leave nothing behind', () => {
  /** A real client that fails the sidecar's PutObject, as a store that runs out of quota would. */
  function failingMetadataClient(): { client: S3Api; real: S3Client } {
    const real = createS3Client(parseS3Config(http.targetConfig('failures')));
    const client: S3Api = {
      send: ((command: unknown, options?: unknown) => {
        if (command instanceof PutObjectCommand && String(command.input.Key).includes('/.metadata/')) {
          return Promise.reject(Object.assign(new Error('quota exceeded'), { name: 'QuotaExceeded', Code: 'QuotaExceeded', $metadata: { httpStatusCode: 403 } }));
        }
        return (real.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
      }) as S3Api['send'],
    };
    return { client, real };
  }

  it('deletes the completed data object when its metadata cannot be written', async () => {
    const { client, real } = failingMetadataClient();
    try {
      const t = target(http, {}, client);
      const before = await http.leftovers('failures');
      for (const size of [1000, 12 * MiB]) {
        await failsWith(put(t, `on-demand-meta-fail-${size}`, randomBytes(size)), 'TARGET_ACCESS_DENIED', /^PutObject on s3:\/\/failures\/f\/\.metadata\//);
        assert.deepEqual(await http.leftovers('failures'), before);
      }
    } finally {
      real.destroy();
    }
  });

  it('discards a multipart upload when metadata() throws after the body (root cause kept)', async () => {
    const t = target(http);
    const before = await http.leftovers('failures');
    const body = randomBytes(12 * MiB);
    await assert.rejects(
      t.put('on-demand-late-fail-1', chunked(body), {
        metadata: () => {
          throw new Error('etcd trailer mismatch');
        },
      }),
      /etcd trailer mismatch/,
    );
    assert.deepEqual(await http.leftovers('failures'), before);
  });

  it('discards a multipart upload cancelled after some parts', async () => {
    const t = target(http);
    const before = await http.leftovers('failures');
    const ac = new AbortController();
    let sent = 0;
    const body = new Readable({
      read() {
        sent += 256 * 1024;
        if (sent === 12 * MiB) ac.abort();
        this.push(randomBytes(256 * 1024));
      },
    });
    await failsWith(t.put('on-demand-cancel-1', body, { metadata: () => metadataFor('on-demand-cancel-1', Buffer.alloc(0)), signal: ac.signal }), 'OPERATION_ABORTED');
    assert.ok(body.destroyed, 'the body is destroyed on failure');
    assert.deepEqual(await http.leftovers('failures'), before);
  });

  it('refuses metadata that does not match what was stored', async () => {
    const t = target(http);
    const before = await http.leftovers('failures');
    const body = randomBytes(2000);
    await failsWith(t.put('on-demand-size-1', chunked(body), { metadata: () => metadataFor('on-demand-size-1', body.subarray(1)) }), 'METADATA_INVALID', /storedSize 1999, but 2000 bytes/);
    await failsWith(t.put('on-demand-name-1', chunked(body), { metadata: () => metadataFor('on-demand-other-1', body) }), 'METADATA_INVALID');
    assert.deepEqual(await http.leftovers('failures'), before);
  });

  it('converts a download cut short into a coded stream error', async () => {
    const t = target(http);
    const body = randomBytes(3 * MiB);
    await put(t, 'on-demand-read-1', body);
    const ac = new AbortController();
    const opened = await t.open('on-demand-read-1', ac.signal);
    ac.abort();
    await failsWith(readAll(opened.stream), 'OPERATION_ABORTED');
    assert.ok((await readAll((await t.open('on-demand-read-1')).stream)).equals(body));
    await t.delete('on-demand-read-1');
  });
});
