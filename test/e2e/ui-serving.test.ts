import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../harness/net.js';
import { request, startTestServer, type TestServer } from '../harness/server.js';

/** How the server serves the web UI's static files (src/server/routes/ui.ts), built or not. */
describe('web UI static serving', () => {
  let dir: string;
  let built: TestServer;
  let bare: TestServer;
  const saved = process.env.ETCDSNAP_UI_DIR;

  before(async () => {
    dir = await tempDir('etcdsnap-ui-');
    await mkdir(join(dir, 'ui', 'assets'), { recursive: true });
    await writeFile(join(dir, 'ui', 'index.html'), '<!doctype html><div id="app"></div>');
    await writeFile(join(dir, 'ui', 'assets', 'index-abc123.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'outside the UI dir');
    process.env.ETCDSNAP_UI_DIR = join(dir, 'ui');
    built = await startTestServer();
    process.env.ETCDSNAP_UI_DIR = join(dir, 'not-built');
    bare = await startTestServer();
  });
  after(async () => {
    if (saved === undefined) delete process.env.ETCDSNAP_UI_DIR;
    else process.env.ETCDSNAP_UI_DIR = saved;
    await built?.stop();
    await bare?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the app at / and at client routes, revalidated, with a strict CSP, no token needed', async () => {
    for (const path of ['/', '/clusters/prod', '/clusters/prod/settings', '/operations/abc']) {
      const r = await request(`${built.url}${path}`);
      assert.equal(r.status, 200, path);
      assert.match(r.headers['content-type'] ?? '', /^text\/html/);
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
      assert.match(r.text, /<div id="app">/);
    }
    const etag = (await request(`${built.url}/`)).headers.etag as string;
    assert.equal((await request(`${built.url}/`, { headers: { 'if-none-match': etag } })).status, 304);
  });

  it('caches hashed assets for a year', async () => {
    const r = await request(`${built.url}/assets/index-abc123.js`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /^text\/javascript/);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
  });

  it('leaves the API as it was: unknown API paths and missing files answer 401 without a token', async () => {
    assert.equal((await request(`${built.url}/api/v1/nope`)).status, 401);
    assert.equal((await request(`${built.url}/api/v1/clusters`)).status, 401);
    assert.equal((await request(`${built.url}/assets/missing.js`)).status, 401);
    assert.equal((await request(`${built.url}/healthz`)).status, 200);
    assert.equal((await built.api('GET', '/api/v1/nope')).status, 404);
    assert.equal((await built.api('GET', '/api/v1/clusters')).status, 200);
  });

  it('never serves a file outside the UI dir', async () => {
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt']) {
      const r = await request(`${built.url}${path}`);
      assert.ok(!r.text.includes('outside the UI dir'), path);
    }
  });

  it('without a built UI the server still runs and says so at /', async () => {
    const r = await request(`${bare.url}/`);
    assert.equal(r.status, 503);
    assert.match(r.text, /web UI is not built/);
    assert.match(r.text, /scripts\/setup\.sh/);
    assert.equal((await bare.api('GET', '/api/v1/clusters')).status, 200);
  });
});
