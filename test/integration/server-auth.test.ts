import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimAgent, startTestServer, type TestServer } from '../harness/server.js';

/** Every registered route, with its parameters filled in, so a new route cannot forget auth. */
function concrete(url: string): string {
  return url.replace(/:([A-Za-z]+)/g, (_m, name: string) => `x-${name}`);
}

describe('server auth', () => {
  let server: TestServer;
  let agent: SimAgent;
  let clusterId: string;

  before(async () => {
    server = await startTestServer();
    const c = await server.api<{ id: string }>('POST', '/api/v1/clusters', { name: 'auth' });
    clusterId = c.body.id;
    const join = await server.api<{ registrationToken: string }>('GET', `/api/v1/clusters/${clusterId}/join`);
    agent = new SimAgent(server, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
  });
  after(() => server.stop());

  test('the route list is complete and only /cacerts and /healthz are public', () => {
    const routes = server.app.etcdsnap.routes;
    assert.ok(routes.length >= 20, `only ${routes.length} routes`);
    assert.deepEqual(routes.filter((r) => r.auth === 'public').map((r) => r.url).sort(), ['/cacerts', '/healthz']);
    assert.deepEqual(routes.filter((r) => r.auth === 'registration').map((r) => r.url), ['/api/v1/agent/register']);
    assert.deepEqual(routes.filter((r) => r.auth === 'node').map((r) => r.url).sort(), ['/api/v1/agent/plan', '/api/v1/agent/report']);
  });

  test('every non-public route answers 401 UNAUTHORIZED without a token, and with a wrong one', async () => {
    for (const r of server.app.etcdsnap.routes.filter((x) => x.auth !== 'public')) {
      for (const headers of [{}, { authorization: 'Bearer esa_not-a-real-token-at-all-0000000000000000' }, { authorization: 'Basic Zm9vOmJhcg==' }]) {
        const res = await server.app.inject({ method: r.method as 'GET', url: concrete(r.url), headers, payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        assert.equal(res.statusCode, 401, `${r.method} ${r.url} ${JSON.stringify(headers)}: ${res.statusCode} ${res.body}`);
        assert.equal(res.json().code, 'UNAUTHORIZED');
        assert.equal(res.headers['www-authenticate'], 'Bearer');
      }
    }
  });

  test('a node token is refused (403 FORBIDDEN) on every admin route', async () => {
    for (const r of server.app.etcdsnap.routes.filter((x) => x.auth === 'admin')) {
      const res = await server.app.inject({ method: r.method as 'GET', url: concrete(r.url), headers: { authorization: `Bearer ${agent.nodeToken}` }, payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
      assert.equal(res.statusCode, 403, `${r.method} ${r.url}: ${res.statusCode} ${res.body}`);
      assert.equal(res.json().code, 'FORBIDDEN');
    }
  });

  test('the admin token is refused on agent routes (they need the node’s identity)', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/agent/plan?wait=0'],
      ['POST', '/api/v1/agent/report'],
    ] as const) {
      const res = await server.app.inject({ method, url, headers: { authorization: `Bearer ${server.adminToken}` }, payload: method === 'POST' ? {} : undefined });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
    }
  });

  test('a node reports only for itself', async () => {
    const other = new SimAgent(server, { registrationToken: agent.options.registrationToken, node: 'n2' });
    await other.register();
    (other as unknown as { options: { node: string } }).options.node = 'n1';
    await assert.rejects(other.report(), /report n1: 403 .*FORBIDDEN/);
  });

  test('an unknown route is 401 without a token (no probing) and 404 NOT_FOUND with one', async () => {
    assert.equal((await server.app.inject({ url: '/api/v1/nope' })).statusCode, 401);
    const res = await server.app.inject({ url: '/api/v1/nope', headers: { authorization: `Bearer ${server.adminToken}` } });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'NOT_FOUND');
  });

  test('?token= is accepted by the event stream only', async () => {
    const res = await server.app.inject({ url: `/api/v1/clusters?token=${server.adminToken}` });
    assert.equal(res.statusCode, 401);
  });

  test('public routes: /healthz answers ok, /cacerts says there is no CA on plain HTTP', async () => {
    const h = await server.app.inject({ url: '/healthz' });
    assert.equal(h.statusCode, 200);
    assert.equal(h.body, 'ok\n');
    const c = await server.app.inject({ url: '/cacerts' });
    assert.equal(c.statusCode, 404);
    assert.equal(c.json().code, 'NOT_FOUND');
  });

  test('registration needs the cluster’s registration token; re-registration replaces the node token', async () => {
    const bad = await server.api('POST', '/api/v1/agent/register', { registrationToken: 'esr_wrong-wrong-wrong-wrong-wrong' }, null);
    assert.equal(bad.status, 401);
    const none = await server.api('POST', '/api/v1/agent/register', {}, null);
    assert.equal(none.status, 401);
    const a = new SimAgent(server, { registrationToken: agent.options.registrationToken, node: 'n3' });
    const first = await a.register();
    const oldToken = a.nodeToken;
    const second = await a.register();
    assert.equal(second.nodeId, first.nodeId, 'the node keeps its id');
    assert.notEqual(a.nodeToken, oldToken);
    const stale = await server.api('GET', '/api/v1/agent/plan?wait=0', undefined, oldToken);
    assert.equal(stale.status, 401);
    assert.equal((await a.poll(0)).status, 200);
  });

  test('a valid registration token with an invalid body is a 400 naming the field', async () => {
    const res = await server.api<{ code: string; message: string }>('POST', '/api/v1/agent/register', { registrationToken: agent.options.registrationToken, node: 'Bad_Name' }, null);
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'INVALID_ARGUMENT');
  });

  test('a removed node’s token stops working', async () => {
    const a = new SimAgent(server, { registrationToken: agent.options.registrationToken, node: 'n4' });
    await a.register();
    const del = await server.api('DELETE', `/api/v1/clusters/${clusterId}/nodes/${a.nodeId}`);
    assert.equal(del.status, 204);
    assert.equal((await a.poll(0)).status, 401);
  });

  test('tokens are stored hashed: the database holds no token in clear', async () => {
    const rows = await server.app.etcdsnap.db.selectFrom('tokens').select(['hash', 'kind']).execute();
    assert.ok(rows.some((r) => r.kind === 'admin'));
    for (const r of rows) {
      assert.match(r.hash, /^[0-9a-f]{64}$/);
      assert.notEqual(r.hash, server.adminToken);
    }
  });
});
