import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { S3Client } from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3Config } from '../core/s3-config.js';

/**
 * The narrow client the S3 target needs: only `send`. An `S3Client` is one; a test can hand
 * in anything with a `send` (for example one that fails on purpose).
 */
export type S3Api = Pick<S3Client, 'send'>;

/** Sockets per agent: `queueSize` uploads plus listing/metadata reads in parallel. */
const MAX_SOCKETS = 50;
/** Connecting is quick or it is broken; do not wait the whole inactivity timeout for it. */
const MAX_CONNECT_MS = 10_000;

/**
 * Builds the SDK client for a validated config:
 * - credentials: the static keys if given; otherwise `fromNodeProviderChain()` (env, shared
 *   files, web identity, container, EC2 IMDSv2). The provider itself is handed to the SDK, not
 *   a resolved value, so expiring credentials are fetched again before they expire.
 * - TLS: `endpointCA` is trusted in addition to the system roots; `skipTlsVerify` turns
 *   verification off (only when set explicitly).
 * - timeouts: `timeoutMs` of socket inactivity; connecting at most min(timeoutMs, 10 s).
 * - retries: the SDK's standard mode, `maxAttempts` attempts, for retryable errors only.
 * - checksums: `requestChecksums` (`when_required` keeps bodies plain, see FACTS.md).
 */
export function createS3Client(config: S3Config): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const httpsAgent = new https.Agent({
    ...agentOptions,
    ...(config.endpointCA ? { ca: [...rootCertificates, config.endpointCA] } : {}),
    rejectUnauthorized: !config.skipTlsVerify,
  });
  const checksums = config.requestChecksums === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle,
    credentials:
      config.accessKeyId !== undefined && config.secretAccessKey !== undefined
        ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, ...(config.sessionToken ? { sessionToken: config.sessionToken } : {}) }
        : fromNodeProviderChain(),
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent(agentOptions),
      httpsAgent,
      connectionTimeout: Math.min(config.timeoutMs, MAX_CONNECT_MS),
      socketTimeout: config.timeoutMs,
    }),
    retryMode: 'standard',
    maxAttempts: config.maxAttempts,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
  });
}
