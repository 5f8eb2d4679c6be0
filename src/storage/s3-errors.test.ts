import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdsnapError } from '../core/errors.js';
import { convertS3Error, isNotImplemented, isS3NotFound, type S3ErrorContext } from './s3-errors.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const ctx: S3ErrorContext = { operation: 'PutObject', bucket: 'b', key: 'f/x', region: 'eu-west-1', endpoint: 'https://minio:9000', secrets: [SECRET] };

/** An SDK service error as the client throws it. */
function sdkError(name: string, status: number, message = 'm'): Error {
  return Object.assign(new Error(message), { name, Code: name, $fault: 'client', $metadata: { httpStatusCode: status } });
}
function sysError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('convertS3Error', () => {
  it('NoSuchBucket → TARGET_BUCKET_NOT_FOUND naming bucket, region and endpoint', () => {
    const e = convertS3Error(sdkError('NoSuchBucket', 404), ctx);
    assert.equal(e.code, 'TARGET_BUCKET_NOT_FOUND');
    assert.equal(e.message, 'Bucket b does not exist in region eu-west-1 at endpoint https://minio:9000: create it or fix the bucket name.');
  });

  it('denied calls → TARGET_ACCESS_DENIED naming the call, the object and the permission', () => {
    const denied = convertS3Error(sdkError('AccessDenied', 403), ctx);
    assert.equal(denied.code, 'TARGET_ACCESS_DENIED');
    assert.match(denied.message, /^PutObject on s3:\/\/b\/f\/x was denied \(AccessDenied\): check the access key and that it may s3:PutObject\.$/);
    assert.match(convertS3Error(sdkError('InvalidAccessKeyId', 403), ctx).message, /PutObject on s3:\/\/b\/f\/x .*check the access key/);
    assert.match(convertS3Error(sdkError('SignatureDoesNotMatch', 403), ctx).message, /check the secret key/);
    assert.match(convertS3Error(sdkError('ExpiredToken', 400), ctx).message, /session token/);
    // A HEAD has no body: the SDK only knows the status.
    const head = convertS3Error(sdkError('Unknown', 403, 'UnknownError'), { ...ctx, operation: 'HeadObject' });
    assert.equal(head.code, 'TARGET_ACCESS_DENIED');
    assert.match(head.message, /HeadObject .*s3:GetObject/);
    const list = convertS3Error(sdkError('AccessDenied', 403), { ...ctx, operation: 'ListObjectsV2', key: undefined });
    assert.match(list.message, /^ListObjectsV2 on s3:\/\/b was denied .*s3:ListBucket/);
  });

  it('no credentials at all → TARGET_ACCESS_DENIED with what to set', () => {
    const e = convertS3Error(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), ctx);
    assert.equal(e.code, 'TARGET_ACCESS_DENIED');
    assert.match(e.message, /--s3-access-key/);
    assert.match(e.message, /instance role/);
  });

  it('certificate errors → TARGET_TLS_UNTRUSTED with the custom CA advice', () => {
    for (const [code, msg] of [
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'],
      ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'],
      ['CERT_HAS_EXPIRED', 'certificate has expired'],
    ] as const) {
      const e = convertS3Error(sysError(code, msg), ctx);
      assert.equal(e.code, 'TARGET_TLS_UNTRUSTED', code);
      assert.match(e.message, /set the custom CA \(--s3-endpoint-ca\) to the CA that signed the endpoint's certificate/);
    }
    assert.match(convertS3Error(sysError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), ctx).message, /does not name that host/);
  });

  it('network errors → TARGET_UNREACHABLE, timeouts → TARGET_TIMEOUT', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET']) {
      // node-http-handler renames some socket errors to TimeoutError; the errno decides.
      const e = convertS3Error(Object.assign(sysError(code, `connect ${code}`), { name: 'TimeoutError' }), ctx);
      assert.equal(e.code, 'TARGET_UNREACHABLE', code);
      assert.match(e.message, /Cannot reach https:\/\/minio:9000 for PutObject/);
    }
    assert.equal(convertS3Error(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), ctx).code, 'TARGET_TIMEOUT');
    assert.equal(convertS3Error(sysError('ETIMEDOUT', 'connect ETIMEDOUT'), ctx).code, 'TARGET_TIMEOUT');
    assert.equal(convertS3Error(sdkError('RequestTimeout', 400), ctx).code, 'TARGET_TIMEOUT');
  });

  it('cancellation → OPERATION_ABORTED; ours pass through unchanged', () => {
    const abort = Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
    assert.equal(convertS3Error(abort, ctx).code, 'OPERATION_ABORTED');
    const ours = new EtcdsnapError('SNAPSHOT_EXISTS', 'x');
    assert.equal(convertS3Error(ours, ctx), ours);
  });

  it('a wrong region → INVALID_CONFIG; anything else → TARGET_IO without secrets', () => {
    assert.equal(convertS3Error(sdkError('PermanentRedirect', 301), ctx).code, 'INVALID_CONFIG');
    const e = convertS3Error(sdkError('InternalError', 500, `boom ${SECRET}`), ctx);
    assert.equal(e.code, 'TARGET_IO');
    assert.ok(!e.message.includes(SECRET));
    assert.ok(!JSON.stringify(e.toJSON()).includes(SECRET));
    assert.match(e.message, /InternalError \(HTTP 500\)/);
    assert.equal(e.details?.operation, 'PutObject');
  });

  it('classifies not-found and not-implemented', () => {
    assert.ok(isS3NotFound(sdkError('NoSuchKey', 404)));
    assert.ok(isS3NotFound(sdkError('NotFound', 404)));
    assert.ok(!isS3NotFound(sdkError('NoSuchBucket', 404)));
    assert.ok(isNotImplemented(sdkError('MethodNotAllowed', 405)));
    assert.ok(isNotImplemented(sdkError('NotImplemented', 501)));
    assert.ok(!isNotImplemented(sdkError('AccessDenied', 403)));
  });
});
