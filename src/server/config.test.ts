import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseListen, parseServerConfig, publicUrl } from './config.js';

test('defaults, frozen', () => {
  const c = parseServerConfig({ dataDir: '/d' });
  assert.equal(c.listen, '0.0.0.0:8443');
  assert.equal(c.insecureHttp, false);
  assert.equal(c.reportIntervalMs, 30_000);
  assert.equal(c.nodeTimeoutMs, 600_000);
  assert.equal(c.reconcileIntervalMs, 60_000);
  assert.equal(c.failedRecordTtlMs, 86_400_000);
  assert.equal(c.sseHeartbeatMs, 15_000);
  assert.deepEqual(c.hostnames, []);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.hostnames));
});

test('unknown keys and bad combinations are refused with INVALID_CONFIG', () => {
  assert.throws(() => parseServerConfig({ dataDir: '/d', colour: 'red' } as never), /INVALID_CONFIG|colour/);
  assert.throws(() => parseServerConfig({ dataDir: '/d', tlsCert: '/c' }), /--tls-cert and --tls-key go together/);
  assert.throws(() => parseServerConfig({ dataDir: '/d', insecureHttp: true, tlsCert: '/c', tlsKey: '/k' }), /cannot be combined/);
  assert.throws(() => parseServerConfig({ dataDir: '/d', tlsCA: '/ca' }), /--tls-ca needs/);
  assert.throws(() => parseServerConfig({ dataDir: '/d', listen: 'nope' }), /Invalid listen address/);
  assert.throws(() => parseServerConfig({ dataDir: '/d', url: 'http://x:1' }), /uses http: but the server serves HTTPS/);
});

test('listen addresses, IPv6 included', () => {
  assert.deepEqual(parseListen('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseListen('host:70000'));
});

test('the public URL: --url, else the first hostname, else the listen host (or this machine for a wildcard)', () => {
  assert.equal(publicUrl(parseServerConfig({ dataDir: '/d', url: 'https://lb.example:443/' }), 'h'), 'https://lb.example:443');
  assert.equal(publicUrl(parseServerConfig({ dataDir: '/d', hostnames: ['a.example', 'b'] }), 'h'), 'https://a.example:8443');
  assert.equal(publicUrl(parseServerConfig({ dataDir: '/d' }), 'node7'), 'https://node7:8443');
  assert.equal(publicUrl(parseServerConfig({ dataDir: '/d', listen: '127.0.0.1:0', insecureHttp: true }), 'h', 4000), 'http://127.0.0.1:4000');
  assert.equal(publicUrl(parseServerConfig({ dataDir: '/d', listen: '[::1]:9' }), 'h'), 'https://[::1]:9');
});
