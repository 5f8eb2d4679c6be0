/**
 * A tiny fake EC2 instance metadata service (IMDSv2) on loopback, for the AWS SDK's
 * instance-role credentials. Point the SDK at it with
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT=<imds.endpoint>`.
 *
 *   PUT /latest/api/token                              (x-aws-ec2-metadata-token-ttl-seconds) → token
 *   GET /latest/meta-data/iam/security-credentials/      (x-aws-ec2-metadata-token) → role name
 *   GET /latest/meta-data/iam/security-credentials/<role>                           → credentials JSON
 *
 * Requests without the token get 401, as on EC2 with IMDSv2 required.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImdsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Served as `Token`. Default: a random string per request. */
  sessionToken?: string;
  /** How long each served credential is valid. Default 6 hours. */
  lifetimeMs?: number;
}

export interface ImdsRequest {
  method: string;
  path: string;
  status: number;
}

export interface FakeImds {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  role: string;
  /** Every request, in order. */
  requests: ImdsRequest[];
  /** How many times credentials were served. */
  credentialsServed(): number;
  stop(): Promise<void>;
}

const CREDS_PATH = '/latest/meta-data/iam/security-credentials/';

export async function startFakeImds(creds: ImdsCredentials, role = 'etcdsnap-node-role'): Promise<FakeImds> {
  const tokens = new Set<string>();
  const requests: ImdsRequest[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const reply = (status: number, body: string, type = 'text/plain'): void => {
      requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    req.resume();
    if (req.method === 'PUT' && path === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400, 'missing or bad x-aws-ec2-metadata-token-ttl-seconds');
      const token = randomBytes(16).toString('hex');
      tokens.add(token);
      return reply(200, token);
    }
    if (req.method !== 'GET') return reply(405, 'method not allowed');
    const token = req.headers['x-aws-ec2-metadata-token'];
    if (typeof token !== 'string' || !tokens.has(token)) return reply(401, 'unauthorized');
    if (path === CREDS_PATH) return reply(200, role);
    if (path === `${CREDS_PATH}${role}`) {
      const now = Date.now();
      const body = JSON.stringify({
        Code: 'Success',
        LastUpdated: new Date(now).toISOString(),
        Type: 'AWS-HMAC',
        AccessKeyId: creds.accessKeyId,
        SecretAccessKey: creds.secretAccessKey,
        Token: creds.sessionToken ?? randomBytes(24).toString('base64'),
        Expiration: new Date(now + (creds.lifetimeMs ?? 6 * 3600_000)).toISOString(),
      });
      return reply(200, body, 'application/json');
    }
    return reply(404, 'not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    role,
    requests,
    credentialsServed: () => requests.filter((r) => r.path === `${CREDS_PATH}${role}` && r.status === 200).length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
