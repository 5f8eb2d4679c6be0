import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fetchPinnedCA } from '../../src/agent/api-client.js';
import type { JoinInfo } from '../../src/core/api.js';
import { request, SimAgent, startTestServer, type TestServer } from '../harness/server.js';

describe('server HTTPS with its own CA', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ https: true, config: { hostnames: ['etcdsnap.example.test', '10.9.8.7'] } });
  });
  after(() => server.stop());

  test('the URL is https; /cacerts serves the CA whose sha256 is the join command’s checksum', async () => {
    assert.match(server.publicUrl, /^https:\/\/etcdsnap\.example\.test:\d+$/);
    const cacerts = await request(`${server.url}/cacerts`, { ca: server.ca });
    assert.equal(cacerts.status, 200);
    assert.match(cacerts.headers['content-type'] ?? '', /pem/);
    const ca = new X509Certificate(cacerts.text);
    assert.ok(ca.ca, 'a CA certificate');
    const sum = createHash('sha256').update(ca.raw).digest('hex');
    await server.api('POST', '/api/v1/clusters', { name: 'tls' });
    const join = await server.api<JoinInfo>('GET', '/api/v1/clusters/tls/join');
    assert.equal(join.body.caChecksum, sum);
    assert.ok(join.body.command.includes(`--ca-checksum ${sum}`));
    assert.equal(join.body.server, server.publicUrl);
  });

  test('the leaf carries the hostnames, localhost and 127.0.0.1, and is signed by the CA', async () => {
    const pem = server.app.etcdsnap.tls?.cert as string;
    const leaf = new X509Certificate(pem);
    assert.ok(leaf.checkIssued(new X509Certificate(server.ca as string)));
    for (const name of ['DNS:etcdsnap.example.test', 'IP Address:10.9.8.7', 'DNS:localhost', 'IP Address:127.0.0.1']) assert.ok(leaf.subjectAltName?.includes(name), name);
  });

  test('a client trusting only that CA connects; one trusting only the system roots does not', async () => {
    const url = server.url;
    const ok = await request(`${url}/api/v1/clusters`, { token: server.adminToken, ca: server.ca });
    assert.equal(ok.status, 200);
    await assert.rejects(request(`${url}/api/v1/clusters`, { token: server.adminToken }), /self[- ]signed|unable to verify|certificate/i);
    // A scripted agent with the pinned CA works end to end.
    const join = await server.api<JoinInfo>('GET', '/api/v1/clusters/tls/join');
    const agent = new SimAgent({ url, ca: server.ca }, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
    assert.equal((await agent.poll(0)).status, 200);
  });

  test('the agent’s own CA pinning (fetchPinnedCA) accepts this server’s /cacerts and checksum', async () => {
    const pem = await fetchPinnedCA(server.url, server.caChecksum as string, 5000);
    assert.equal(pem.trim(), (server.ca as string).trim());
    await assert.rejects(fetchPinnedCA(server.url, '0'.repeat(64), 5000), /SERVER_TLS_UNTRUSTED|does not trust/);
  });

  test('nothing answers plain HTTP on the port', async () => {
    const port = Number(new URL(server.url).port);
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 3000 }, (res) => resolve(`status ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.on('timeout', () => {
        req.destroy();
        resolve('timeout');
      });
    });
    assert.doesNotMatch(outcome, /^status 200/);
    assert.ok(!outcome.startsWith('status 2'), outcome);
  });

  test('a restart keeps the CA (agents keep trusting it) and the admin token', async () => {
    const before = server.caChecksum;
    const leafBefore = server.app.etcdsnap.tls?.cert;
    server = await server.restart();
    assert.equal(server.caChecksum, before);
    assert.equal(server.app.etcdsnap.tls?.cert, leafBefore, 'a fresh leaf is not remade');
    const res = await server.api('GET', '/api/v1/clusters');
    assert.equal(res.status, 200);
  });

  test('a new hostname remakes the leaf under the same CA', async () => {
    const before = server.caChecksum;
    server = await server.restart({ config: { hostnames: ['other.example.test'] } });
    assert.equal(server.caChecksum, before);
    const leaf = new X509Certificate(server.app.etcdsnap.tls?.cert as string);
    assert.ok(leaf.subjectAltName?.includes('DNS:other.example.test'));
  });
});
