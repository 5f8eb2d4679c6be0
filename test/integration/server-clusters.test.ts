import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { pino } from 'pino';
import type { Cluster, JoinInfo } from '../../src/core/api.js';
import type { NodePlan } from '../../src/core/plans.js';
import { SimAgent, startTestServer, type HttpResult, type TestServer } from '../harness/server.js';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY';
const SESSION = 'FwoGZXIvYXdzEXAMPLESESSIONTOKENsecret';

describe('server clusters', () => {
  let server: TestServer;
  const logLines: string[] = [];
  const responses: string[] = [];
  /** Every response body of the test goes through here, to be searched for secrets at the end. */
  const api = async <T>(method: string, path: string, body?: unknown): Promise<HttpResult<T>> => {
    const res = await server.api<T>(method, path, body);
    responses.push(`${method} ${path} ${res.status} ${res.text}`);
    return res;
  };

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString('utf8'));
        cb();
      },
    });
    server = await startTestServer({ logger: pino({ level: 'trace' }, sink) });
  });
  after(() => server.stop());

  test('create with defaults, show by id and by name, list', async () => {
    const res = await api<Cluster>('POST', '/api/v1/clusters', { name: 'alpha', kubernetesVersion: 'v1.30.4', clusterConfig: 'kind: Cluster\nspec: {}\n' });
    assert.equal(res.status, 201);
    assert.deepEqual(res.body.policy, { enabled: true, schedule: '0 */5 * * *', retention: 5, compression: 'zstd', s3: null });
    assert.equal(res.body.kubernetesVersion, 'v1.30.4');
    assert.equal(res.body.clusterConfig, 'kind: Cluster\nspec: {}\n');
    assert.deepEqual(res.body.nodes, { total: 0, healthy: 0, connected: 0 });
    assert.equal(res.body.runningOperationId, null);
    assert.ok(res.body.nextScheduledSnapshotAt);
    const byId = await api<Cluster>('GET', `/api/v1/clusters/${res.body.id}`);
    const byName = await api<Cluster>('GET', '/api/v1/clusters/alpha');
    assert.deepEqual(byId.body, res.body);
    assert.deepEqual(byName.body, res.body);
    const list = await api<Cluster[]>('GET', '/api/v1/clusters');
    assert.deepEqual(
      list.body.map((c) => c.name),
      ['alpha'],
    );
  });

  test('cluster names are unique (409 CONFLICT)', async () => {
    const res = await api<{ code: string }>('POST', '/api/v1/clusters', { name: 'alpha' });
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'CONFLICT');
  });

  test('validation: a bad cron is 400 INVALID_CONFIG explaining; bad fields are 400 INVALID_ARGUMENT naming them', async () => {
    const cron = await api<{ code: string; message: string }>('POST', '/api/v1/clusters', { name: 'beta', policy: { schedule: '61 * * * *' } });
    assert.equal(cron.status, 400);
    assert.equal(cron.body.code, 'INVALID_CONFIG');
    assert.match(cron.body.message, /Invalid schedule "61 \* \* \* \*"/);
    assert.match(cron.body.message, /@every 12h/);
    const patchCron = await api<{ code: string }>('PATCH', '/api/v1/clusters/alpha', { policy: { schedule: '@every 0s' } });
    assert.equal(patchCron.status, 400);
    assert.equal(patchCron.body.code, 'INVALID_CONFIG');

    const cases: [unknown, string][] = [
      [{ name: 'Bad_Name' }, 'body.name'],
      [{ name: 'gamma', colour: 'red' }, 'body.colour'],
      [{ name: 'gamma', policy: { retention: 0 } }, 'body.policy.retention'],
      [{ name: 'gamma', policy: { retention: '5' } }, 'body.policy.retention'],
      [{ name: 'gamma', policy: { compression: 'lz4' } }, 'body.policy.compression'],
      [{}, 'body.name'],
    ];
    for (const [body, field] of cases) {
      const res = await api<{ code: string; message: string; details: { field: string } }>('POST', '/api/v1/clusters', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.equal(res.body.details.field, field, res.body.message);
      assert.ok(res.body.message.includes(field), res.body.message);
    }
    const s3 = await api<{ code: string; message: string }>('POST', '/api/v1/clusters', { name: 'gamma', policy: { s3: { bucket: 'b', endpoint: 'ftp://x' } } });
    assert.equal(s3.status, 400);
    assert.equal(s3.body.code, 'INVALID_CONFIG');
  });

  test('the interval form of a schedule is accepted', async () => {
    const res = await api<Cluster>('PATCH', '/api/v1/clusters/alpha', { policy: { schedule: '@every 12h' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.policy.schedule, '@every 12h');
    await api('PATCH', '/api/v1/clusters/alpha', { policy: { schedule: '0 */5 * * *' } });
  });

  test('S3 secrets are write-only: hasSecretAccessKey in views, kept by a PATCH that leaves them out, cleared by null', async () => {
    const create = await api<Cluster>('POST', '/api/v1/clusters', {
      name: 'secret',
      policy: { s3: { bucket: 'backups', endpoint: 'http://127.0.0.1:9', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET, sessionToken: SESSION, folder: 'prod/' } },
    });
    assert.equal(create.status, 201, create.text);
    const s3 = create.body.policy.s3 as Record<string, unknown>;
    assert.equal(s3.hasSecretAccessKey, true);
    assert.equal(s3.hasSessionToken, true);
    assert.equal(s3.folder, 'prod');
    assert.equal(s3.secretAccessKey, undefined);
    assert.equal(s3.sessionToken, undefined);

    const join = await api<JoinInfo>('GET', `/api/v1/clusters/${create.body.id}/join`);
    const agent = new SimAgent(server, { registrationToken: join.body.registrationToken, node: 'n1' });
    await agent.register();
    const plan = (await agent.poll(0)).body;
    assert.equal(plan.policy.s3?.secretAccessKey, SECRET, 'agents get the secret');
    assert.equal(plan.policy.s3?.sessionToken, SESSION);

    // A PATCH with S3 settings but without the secret keeps it (same key id: the session token too).
    const kept = await api<Cluster>('PATCH', '/api/v1/clusters/secret', { policy: { s3: { bucket: 'backups2', endpoint: 'http://127.0.0.1:9', accessKeyId: 'AKIAEXAMPLE' } } });
    assert.equal(kept.status, 200, kept.text);
    assert.equal((kept.body.policy.s3 as Record<string, unknown>).hasSecretAccessKey, true);
    assert.equal((kept.body.policy.s3 as Record<string, unknown>).hasSessionToken, true);
    const plan2 = (await agent.poll(0)).body;
    assert.notEqual(plan2.planId, plan.planId);
    assert.equal(plan2.policy.s3?.bucket, 'backups2');
    assert.equal(plan2.policy.s3?.secretAccessKey, SECRET);

    // Another policy field does not touch S3.
    const other = await api<Cluster>('PATCH', '/api/v1/clusters/secret', { policy: { retention: 7 } });
    assert.equal((other.body.policy.s3 as Record<string, unknown>).hasSecretAccessKey, true);

    // null clears the session token; a new key id drops the old session token.
    const cleared = await api<Cluster>('PATCH', '/api/v1/clusters/secret', { policy: { s3: { bucket: 'backups2', accessKeyId: 'AKIAEXAMPLE', sessionToken: null } } });
    assert.equal((cleared.body.policy.s3 as Record<string, unknown>).hasSessionToken, false);
    assert.equal((cleared.body.policy.s3 as Record<string, unknown>).hasSecretAccessKey, true);

    // A node of another cluster never sees these settings.
    const otherCluster = await api<Cluster>('POST', '/api/v1/clusters', { name: 'other' });
    const otherJoin = await api<JoinInfo>('GET', `/api/v1/clusters/${otherCluster.body.id}/join`);
    const stranger = new SimAgent(server, { registrationToken: otherJoin.body.registrationToken, node: 'n1' });
    await stranger.register();
    const strangerPlan = await stranger.poll(0);
    assert.ok(!strangerPlan.text.includes(SECRET));
    assert.equal((strangerPlan.body as NodePlan).cluster.name, 'other');

    // Removing S3 removes the secrets.
    const none = await api<Cluster>('PATCH', '/api/v1/clusters/secret', { policy: { s3: null } });
    assert.equal(none.body.policy.s3, null);
    const row = await server.app.etcdsnap.db.selectFrom('clusters').select('s3_secrets').where('name', '=', 'secret').executeTakeFirstOrThrow();
    assert.equal(row.s3_secrets, null);
    await api('PATCH', '/api/v1/clusters/secret', { policy: { s3: { bucket: 'backups', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET, sessionToken: SESSION } } });
  });

  test('a secret given without its key id is refused without echoing it', async () => {
    const res = await api<{ code: string; message: string }>('PATCH', '/api/v1/clusters/secret', { policy: { s3: { bucket: 'backups', secretAccessKey: SECRET } } });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'INVALID_CONFIG');
  });

  test('the S3 secret is stored encrypted: no file of the data dir holds it', async () => {
    // Checkpoint so the main database file holds the rows too, not only the WAL.
    await sql`PRAGMA wal_checkpoint(FULL)`.execute(server.app.etcdsnap.db);
    for (const f of await readdir(server.dataDir, { recursive: true })) {
      const bytes = await readFile(join(server.dataDir, f)).catch(() => Buffer.alloc(0));
      assert.equal(bytes.includes(SECRET), false, `${f} holds the secret`);
      assert.equal(bytes.includes(SESSION), false, `${f} holds the session token`);
    }
  });

  test('edit version and config; delete; then 404', async () => {
    const patched = await api<Cluster>('PATCH', '/api/v1/clusters/alpha', { kubernetesVersion: 'v1.31.0', clusterConfig: null });
    assert.equal(patched.body.kubernetesVersion, 'v1.31.0');
    assert.equal(patched.body.clusterConfig, null);
    const del = await api('DELETE', '/api/v1/clusters/alpha');
    assert.equal(del.status, 204);
    const gone = await api<{ code: string }>('GET', '/api/v1/clusters/alpha');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'NOT_FOUND');
  });

  test('join info: a ready command with the server URL and the registration token; rotation replaces it', async () => {
    const join = await api<JoinInfo>('GET', '/api/v1/clusters/secret/join');
    assert.equal(join.body.server, server.publicUrl);
    assert.equal(join.body.caChecksum, null);
    assert.equal(join.body.command, `etcdsnap agent --server ${server.publicUrl} --registration-token ${join.body.registrationToken} --node-name <NODE> --data-dir /var/lib/etcdsnap-agent`);
    const rotated = await api<JoinInfo>('POST', '/api/v1/clusters/secret/join/rotate');
    assert.notEqual(rotated.body.registrationToken, join.body.registrationToken);
    const old = await server.api('POST', '/api/v1/agent/register', { registrationToken: join.body.registrationToken }, null);
    assert.equal(old.status, 401);
  });

  test('the OpenAPI document lists the routes', async () => {
    const doc = await api<{ openapi: string; paths: Record<string, unknown> }>('GET', '/api/v1/openapi.json');
    assert.equal(doc.status, 200);
    assert.match(doc.body.openapi, /^3\./);
    for (const p of ['/api/v1/clusters', '/api/v1/clusters/{id}', '/api/v1/clusters/{id}/snapshots', '/api/v1/agent/plan', '/api/v1/events']) assert.ok(doc.body.paths[p], p);
  });

  test('no response body and no log line ever held an S3 secret', () => {
    assert.ok(responses.length > 20);
    for (const r of responses) {
      assert.equal(r.includes(SECRET), false, `response holds the secret: ${r.slice(0, 200)}`);
      assert.equal(r.includes(SESSION), false, `response holds the session token: ${r.slice(0, 200)}`);
    }
    assert.ok(logLines.length > 10, 'the log was captured');
    const log = logLines.join('');
    assert.equal(log.includes(SECRET), false, 'the log holds the secret');
    assert.equal(log.includes(SESSION), false, 'the log holds the session token');
    assert.equal(log.includes(server.adminToken), false, 'the log holds the admin token');
  });
});
