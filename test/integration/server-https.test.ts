import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fetchPinnedCA } from '../../src/agent/api-client.js';
import type { JoinInfo } from '../../src/core/api.js';
import { ensureServerTls } from '../../src/server/tls.js';
import { tempDir } from '../harness/net.js';
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

describe('server HTTPS with a given certificate', () => {
  test('serves it; with --tls-ca the CA is pinned in join commands, without it there is nothing to pin', async () => {
    // A certificate from "someone else's" PKI: another server's CA and leaf.
    const pki = await tempDir('etcdsnap-given-pki');
    const made = await ensureServerTls(pki, ['given.example.test']);
    const files = { cert: join(pki, 'server.pem'), key: join(pki, 'server-key.pem'), ca: join(pki, 'ca.pem') };
    const withCA = await startTestServer({ https: true, config: { tlsCert: files.cert, tlsKey: files.key, tlsCA: files.ca } });
    try {
      assert.equal(withCA.caChecksum, made.caChecksum);
      assert.equal((await withCA.api('GET', '/cacerts')).text, made.caPem);
      await withCA.api('POST', '/api/v1/clusters', { name: 'given' });
      const join1 = await withCA.api<JoinInfo>('GET', '/api/v1/clusters/given/join');
      assert.equal(join1.body.caChecksum, made.caChecksum);
    } finally {
      await withCA.stop();
    }
    const withoutCA = await startTestServer({ https: true, config: { tlsCert: files.cert, tlsKey: files.key } });
    try {
      // The harness has no CA to trust here: call with the PKI's CA explicitly.
      const res = await request(`${withoutCA.url}/cacerts`, { ca: made.caPem as string });
      assert.equal(res.status, 404);
      const c = await request<{ id: string }>(`${withoutCA.url}/api/v1/clusters`, { method: 'POST', body: { name: 'given' }, token: withoutCA.adminToken, ca: made.caPem as string });
      const join2 = await request<JoinInfo>(`${withoutCA.url}/api/v1/clusters/${c.body.id}/join`, { token: withoutCA.adminToken, ca: made.caPem as string });
      assert.equal(join2.body.caChecksum, null);
      assert.ok(!join2.body.command.includes('--ca-checksum'));
    } finally {
      await withoutCA.stop();
      await rm(pki, { recursive: true, force: true });
    }
  });

  test('an unreadable certificate stops the start with INVALID_CONFIG', async () => {
    await assert.rejects(startTestServer({ https: true, config: { tlsCert: '/nonexistent/cert.pem', tlsKey: '/nonexistent/key.pem' } }), /Cannot read the TLS certificate/);
  });
});
