/**
 * A real S3-compatible server for tests: s3rver 3.7.1 in a child node process (run with
 * `--openssl-legacy-provider`, see ../shared/FACTS.md), on a free 127.0.0.1 port, in a
 * temporary directory, over HTTP or over HTTPS with a CA generated for the run.
 *
 *   const s3 = await startS3rver({ https: true });
 *   await s3.createBucket('backups');
 *   // endpoint: s3.endpoint, CA PEM: s3.ca, keys: s3.accessKeyId / s3.secretAccessKey
 *   await s3.stop();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // the SDK pinned here supports Node 20

const run = promisify(execFile);

/** s3rver accepts any secret, but only this access key id (anything else: 403 InvalidAccessKeyId). */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';

/** The subset of the S3 target's settings that points it at this server. */
export interface S3TargetSettings {
  bucket: string;
  endpoint: string;
  region: string;
  forcePathStyle: true;
  accessKeyId: string;
  secretAccessKey: string;
  endpointCA?: string;
}

export interface S3rverOptions {
  /** Serve HTTPS with a leaf certificate for 127.0.0.1/localhost signed by a fresh CA. */
  https?: boolean;
}

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`. */
  endpoint: string;
  /** PEM of the CA that signed the server certificate (HTTPS only). */
  ca?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** s3rver's data directory. */
  dataDir: string;
  /** Settings for the S3 target against this server: keys, path style, the CA (HTTPS). */
  targetConfig(bucket: string): S3TargetSettings;
  /** A plain SDK client with the server's keys and CA; destroy it after use. */
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  /**
   * Upload ids of unfinished multipart uploads in a bucket. s3rver implements neither
   * ListMultipartUploads (501) nor AbortMultipartUpload (405): this reads its data directory.
   */
  pendingUploads(bucket: string): Promise<string[]>;
  /**
   * Everything the bucket holds, visible or not: every object of the whole bucket and every
   * unfinished multipart upload (ListMultipartUploads, or the data directory where s3rver
   * answers 501). For "nothing left behind" checks.
   */
  leftovers(bucket: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** The compiled child script sits next to this file (dist/test/harness/ after tsc). */
function childScript(): string {
  const js = fileURLToPath(new URL('./s3rver-child.js', import.meta.url));
  if (!existsSync(js)) throw new Error(`s3rver harness: ${js} is missing; build with "npx tsc -p tsconfig.json" first`);
  return js;
}

/** A CA and a leaf certificate for 127.0.0.1 and localhost, with the openssl CLI. */
async function makeCertificates(dir: string): Promise<{ caFile: string; keyFile: string; certFile: string }> {
  const f = (n: string): string => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=etcdsnap test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  return { caFile: f('ca.pem'), keyFile: f('server.key'), certFile: f('server.pem') };
}

function waitForPort(child: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`s3rver exited early (code ${code}): ${stderr()}`));
    child.once('exit', onExit);
    child.once('message', (msg: { port?: number }) => {
      child.off('exit', onExit);
      if (typeof msg?.port === 'number') resolve(msg.port);
      else reject(new Error(`s3rver child sent ${JSON.stringify(msg)}`));
    });
  });
}

/** Polls until the server answers any HTTP request (no fixed sleeps). */
async function waitForHttp(endpoint: string, ca: string | undefined, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const mod = endpoint.startsWith('https:') ? https : http;
      const req = mod.get(`${endpoint}/`, { ca, agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`s3rver at ${endpoint} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startS3rver(options: S3rverOptions = {}): Promise<S3rverHandle> {
  const root = await mkdtemp(join(tmpdir(), 'etcdsnap-s3rver-'));
  const dataDir = join(root, 'data');
  await mkdir(dataDir);
  let tls: Awaited<ReturnType<typeof makeCertificates>> | undefined;
  let ca: string | undefined;
  if (options.https) {
    tls = await makeCertificates(root);
    ca = await readFile(tls.caFile, 'utf8');
  }
  const args = JSON.stringify({ directory: dataDir, ...(tls ? { keyFile: tls.keyFile, certFile: tls.certFile } : {}) });
  const child = spawn(process.execPath, ['--openssl-legacy-provider', childScript(), args], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };

  try {
    const port = await waitForPort(child, () => stderr);
    const endpoint = `${options.https ? 'https' : 'http'}://127.0.0.1:${port}`;
    await waitForHttp(endpoint, ca);
    const region = 'us-east-1';
    const client = (): S3Client =>
      new S3Client({
        region,
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY },
        requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca }) }),
        requestChecksumCalculation: 'WHEN_REQUIRED',
      });
    const createBucket = async (name: string): Promise<void> => {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    };
    const pendingUploads = async (bucket: string): Promise<string[]> => {
      const dir = join(dataDir, bucket, '._S3rver_uploads');
      return (await readdir(dir).catch(() => [])).sort();
    };
    const leftovers = async (bucket: string): Promise<string[]> => {
      const c = client();
      try {
        const out: string[] = [];
        let token: string | undefined;
        do {
          const page = await c.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
          for (const o of page.Contents ?? []) out.push(`object ${o.Key}`);
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        try {
          const uploads = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          for (const u of uploads.Uploads ?? []) out.push(`upload ${u.Key} ${u.UploadId}`);
        } catch (err) {
          if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 501) throw err;
          for (const id of await pendingUploads(bucket)) out.push(`upload ${id}`);
        }
        return out.sort();
      } finally {
        c.destroy();
      }
    };
    const targetConfig = (bucket: string): S3TargetSettings => ({
      bucket,
      endpoint,
      region,
      forcePathStyle: true,
      accessKeyId: S3RVER_ACCESS_KEY_ID,
      secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
      ...(ca ? { endpointCA: ca } : {}),
    });
    return { endpoint, ca, region, accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY, dataDir, targetConfig, client, createBucket, pendingUploads, leftovers, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
