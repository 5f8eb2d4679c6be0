// Unit tests of src/cli/s3-options.ts (kept beside the S3 storage code it feeds).
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { isEtcdsnapError } from '../core/errors.js';
import { addS3Options, parseDuration, parseSize, s3ConfigFromOptions, type S3CliOptions } from '../cli/s3-options.js';

function parse(args: string[]): S3CliOptions {
  const cmd = addS3Options(new Command('t')).exitOverride();
  cmd.parse(args, { from: 'user' });
  return cmd.opts<S3CliOptions>();
}

function rejects(fn: () => unknown, flag: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isEtcdsnapError(err, 'INVALID_CONFIG'), String(err));
    assert.ok(err.message.includes(flag), `${err.message} does not name ${flag}`);
    return true;
  });
}

describe('s3ConfigFromOptions', () => {
  it('is undefined without --s3, and refuses S3 flags without it', () => {
    assert.equal(s3ConfigFromOptions(parse([]), {}), undefined);
    rejects(() => s3ConfigFromOptions(parse(['--s3-bucket', 'b0b']), {}), '--s3-bucket');
  });

  it('maps every flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'etcdsnap-s3opt-'));
    try {
      // A real self-signed CA certificate (public part only); it is parsed, never trusted here.
      const pem = `-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUOKYnvGRSrWXSDN0vrk2P7oQlMG0wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVZXRjZHNuYXAgdW5pdCB0ZXN0IENBMB4XDTI2MTEyNTIyMTUy
MloXDTM2MTEyMjIyMTUyMlowIDEeMBwGA1UEAwwVZXRjZHNuYXAgdW5pdCB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbilwKySddExUnFvKJQIYDrZ+
7F9VbWTOQeh6qAScjV78C7xgvPrRRJSTqf6GU09KxR2GyvMXXSR0+o1cRGywWKNT
MFEwHQYDVR0OBBYEFDi/Bwljk7qHNpiihk4tJVjvEFeaMB8GA1UdIwQYMBaAFDi/
Bwljk7qHNpiihk4tJVjvEFeaMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhAIxy5V2VEhx4WDZaHcyltuYO8htKq0yTVOPbtcnWP4drAiEA9EWKWOjM
3v2KhW6XCMMllMgA/UaS5em0BUaOo7qIvDU=
-----END CERTIFICATE-----
`;
      const caFile = join(dir, 'ca.pem');
      writeFileSync(caFile, pem);
      const cfg = s3ConfigFromOptions(
        parse(['--s3', '--s3-bucket', 'backups', '--s3-region', 'eu-central-1', '--s3-endpoint', 'https://minio.local:9000/', '--s3-access-key', 'AKIAEXAMPLE1', '--s3-secret-key', 'sekrit-sekrit', '--s3-session-token', 'tok-tok-tok', '--s3-folder', 'clusters/prod/', '--s3-endpoint-ca', caFile, '--s3-force-path-style', '--s3-retention', '9', '--s3-retention-scope', 'cluster', '--s3-timeout', '5m', '--s3-part-size', '32MiB', '--s3-checksums', 'when_supported']),
        {},
      );
      assert.ok(cfg);
      assert.equal(cfg.bucket, 'backups');
      assert.equal(cfg.region, 'eu-central-1');
      assert.equal(cfg.endpoint, 'https://minio.local:9000');
      assert.equal(cfg.accessKeyId, 'AKIAEXAMPLE1');
      assert.equal(cfg.secretAccessKey, 'sekrit-sekrit');
      assert.equal(cfg.sessionToken, 'tok-tok-tok');
      assert.equal(cfg.folder, 'clusters/prod');
      assert.equal(cfg.endpointCA, pem);
      assert.equal(cfg.forcePathStyle, true);
      assert.equal(cfg.skipTlsVerify, false);
      assert.equal(cfg.retention, 9);
      assert.equal(cfg.retentionScope, 'cluster');
      assert.equal(cfg.timeoutMs, 300_000);
      assert.equal(cfg.partSizeBytes, 32 * 1024 * 1024);
      assert.equal(cfg.requestChecksums, 'when_supported');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back to the AWS_* environment, flags first', () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'envsecret', AWS_SESSION_TOKEN: 'envtoken', AWS_DEFAULT_REGION: 'ap-south-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' };
    const cfg = s3ConfigFromOptions(parse(['--s3', '--s3-bucket', 'backups']), env);
    assert.equal(cfg?.accessKeyId, 'AKIAENV');
    assert.equal(cfg?.secretAccessKey, 'envsecret');
    assert.equal(cfg?.sessionToken, 'envtoken');
    assert.equal(cfg?.region, 'ap-south-1');
    assert.equal(cfg?.endpoint, 'http://127.0.0.1:9000');
    const over = s3ConfigFromOptions(parse(['--s3', '--s3-bucket', 'backups', '--s3-access-key', 'AKIAFLAG', '--s3-region', 'us-west-2']), { ...env, AWS_REGION: 'eu-west-3', AWS_ENDPOINT_URL_S3: 'http://s3.local' });
    assert.equal(over?.accessKeyId, 'AKIAFLAG');
    assert.equal(over?.secretAccessKey, 'envsecret');
    assert.equal(over?.sessionToken, undefined, 'a session token of other keys must not be mixed in');
    assert.equal(over?.region, 'us-west-2');
    assert.equal(over?.endpoint, 'http://s3.local');
  });

  it('uses the default credential chain when no keys are given anywhere', () => {
    const cfg = s3ConfigFromOptions(parse(['--s3', '--s3-bucket', 'backups']), { AWS_SECRET_ACCESS_KEY: 'lonely' });
    assert.equal(cfg?.accessKeyId, undefined);
    assert.equal(cfg?.secretAccessKey, undefined);
  });

  it('names the flag of a bad value', () => {
    const base = ['--s3', '--s3-bucket', 'backups'];
    rejects(() => s3ConfigFromOptions(parse(['--s3']), {}), '--s3-bucket');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-retention', 'many']), {}), '--s3-retention');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-retention', '0']), {}), '--s3-retention');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-retention-scope', 'region']), {}), '--s3-retention-scope');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-timeout', 'soon']), {}), '--s3-timeout');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-part-size', '1MiB']), {}), '--s3-part-size');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-checksums', 'always']), {}), '--s3-checksums');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-folder', '/abs']), {}), '--s3-folder');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-endpoint', 'ftp://x']), {}), '--s3-endpoint');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-endpoint-ca', '/nonexistent/ca.pem']), {}), '--s3-endpoint-ca');
    rejects(() => s3ConfigFromOptions(parse([...base, '--s3-access-key', 'AKIAONLY']), {}), '--s3-secret-key');
    rejects(() => s3ConfigFromOptions(parse(['--s3', '--s3-bucket', 'x']), {}), '--s3-bucket');
  });

  it('parses durations and sizes', () => {
    assert.equal(parseDuration('90'), 90_000);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1500ms'), 1500);
    assert.equal(parseSize('5242880'), 5 * 1024 * 1024);
    assert.equal(parseSize('16MiB'), 16 * 1024 * 1024);
    assert.equal(parseSize('64M'), 64 * 1024 * 1024);
    assert.equal(parseSize('1GiB'), 1024 ** 3);
    assert.equal(parseSize('512k'), 512 * 1024);
  });
});
