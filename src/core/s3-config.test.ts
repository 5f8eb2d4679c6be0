import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { isEtcdsnapError } from './errors.js';
import { parseS3Config, redactS3Config, type S3ConfigInput } from './s3-config.js';

// A real self-signed CA certificate (public part only), parsed but never trusted here.
const PEM = `-----BEGIN CERTIFICATE-----
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
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789';

function invalid(input: unknown, field: RegExp): void {
  assert.throws(
    () => parseS3Config(input),
    (err: unknown) => {
      assert.ok(isEtcdsnapError(err, 'INVALID_CONFIG'), String(err));
      assert.match(err.message, field);
      assert.ok(!err.message.includes(SECRET) && !err.message.includes(TOKEN), 'a secret leaked into the message');
      return true;
    },
  );
}

describe('parseS3Config', () => {
  it('fills the defaults from the schema and freezes the result', () => {
    const cfg = parseS3Config({ bucket: 'backups' });
    assert.equal(cfg.region, 'us-east-1');
    assert.equal(cfg.folder, '');
    assert.equal(cfg.skipTlsVerify, false);
    assert.equal(cfg.forcePathStyle, false);
    assert.equal(cfg.partSizeBytes, 16 * 1024 * 1024);
    assert.equal(cfg.queueSize, 4);
    assert.equal(cfg.requestChecksums, 'when_required');
    assert.equal(cfg.retention, 5);
    assert.equal(cfg.retentionScope, 'node');
    assert.equal(cfg.timeoutMs, 60_000);
    assert.equal(cfg.maxAttempts, 3);
    assert.equal(cfg.endpoint, undefined);
    assert.ok(Object.isFrozen(cfg));
    assert.throws(() => {
      (cfg as { bucket: string }).bucket = 'other';
    }, TypeError);
  });

  it('leaves the caller object alone', () => {
    const input: S3ConfigInput = { bucket: 'backups' };
    parseS3Config(input);
    assert.deepEqual(input, { bucket: 'backups' });
  });

  it('rejects unknown keys, a missing bucket and bad values', () => {
    invalid({ bucket: 'backups', bukket: 'x' }, /bukket/);
    invalid({}, /bucket/);
    invalid({ bucket: 'b' }, /\/bucket/);
    invalid({ bucket: 'backups', partSizeBytes: 1024 * 1024 }, /\/partSizeBytes/);
    invalid({ bucket: 'backups', queueSize: 0 }, /\/queueSize/);
    invalid({ bucket: 'backups', requestChecksums: 'always' }, /\/requestChecksums/);
    invalid({ bucket: 'backups', retentionScope: 'region' }, /\/retentionScope/);
    invalid({ bucket: 'backups', skipTlsVerify: 'yes' }, /\/skipTlsVerify/);
    invalid({ bucket: 'backups', endpoint: 'ftp://x' }, /endpoint/);
    invalid({ bucket: 'backups', endpoint: 'not a url' }, /endpoint/);
    invalid({ bucket: 'backups', endpoint: "https://AKIA:hunter2secret@minio:9000" }, /endpoint .*user or password/);
  });

  it('validates and normalises the folder', () => {
    assert.equal(parseS3Config({ bucket: 'backups', folder: 'clusters/prod/' }).folder, 'clusters/prod');
    assert.equal(parseS3Config({ bucket: 'backups', folder: 'a_b.c-d/E' }).folder, 'a_b.c-d/E');
    for (const folder of ['/abs', 'a/../b', '..', 'a//b', 'a/./b', 'sp ace', 'a\\b', 'ü']) invalid({ bucket: 'backups', folder }, /folder/);
  });

  it('wants both keys or neither, and a session token only with keys', () => {
    invalid({ bucket: 'backups', accessKeyId: 'AKIAEXAMPLE' }, /secretAccessKey/);
    invalid({ bucket: 'backups', secretAccessKey: SECRET }, /accessKeyId/);
    invalid({ bucket: 'backups', sessionToken: TOKEN }, /sessionToken/);
    const cfg = parseS3Config({ bucket: 'backups', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET, sessionToken: TOKEN });
    assert.equal(cfg.sessionToken, TOKEN);
  });

  it('checks the custom CA and refuses it together with skipTlsVerify', () => {
    invalid({ bucket: 'backups', endpointCA: 'not a pem' }, /endpointCA/);
    invalid({ bucket: 'backups', endpointCA: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, /endpointCA/);
    assert.equal(parseS3Config({ bucket: 'backups', endpointCA: PEM }).endpointCA, PEM);
    invalid({ bucket: 'backups', endpointCA: PEM, skipTlsVerify: true }, /skipTlsVerify/);
  });

  it('never shows secrets in JSON, toString, inspect or redactS3Config', () => {
    const cfg = parseS3Config({ bucket: 'backups', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET, sessionToken: TOKEN });
    for (const text of [JSON.stringify(cfg), String(cfg), inspect(cfg), JSON.stringify(redactS3Config(cfg)), JSON.stringify({ nested: cfg })]) {
      assert.ok(!text.includes(SECRET), text);
      assert.ok(!text.includes(TOKEN), text);
      assert.ok(!text.includes('AKIAIOSFODNN7EXAMPLE'), text);
      assert.match(text, /backups/);
    }
    assert.equal(redactS3Config(cfg).accessKeyId, '****MPLE');
    // The values themselves are still there for the client.
    assert.equal(cfg.secretAccessKey, SECRET);
  });
});
