/**
 * etcd as Kubernetes runs it: real etcd 3.4 members with https client and peer URLs and
 * --client-cert-auth (certificates from a CA made with openssl for the run). EtcdClient over
 * TLS with a client certificate, the coded errors of a wrong or missing certificate, the
 * --cacert/--cert/--key flags, and a CLI snapshot that restores into a plain cluster.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { etcdTlsFromOptions } from '../../src/cli/etcd-tls-options.js';
import { EtcdsnapError } from '../../src/core/errors.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { type EtcdTls, singleEndpointClient } from '../../src/etcd/endpoint.js';
import { dumpAll, startClusterFromSnapshot, startEtcdCluster, tempDir, type TestCluster } from '../harness/index.js';
import { type EtcdTlsMaterial, makeEtcdTls } from '../harness/tls.js';
import { etcdsnap } from '../harness/cli.js';

/** Rejects with an EtcdsnapError of `code` (and returns it for more checks). */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<EtcdsnapError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EtcdsnapError, `expected an EtcdsnapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

function throwsWith(fn: () => unknown, code: string): EtcdsnapError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof EtcdsnapError, `expected an EtcdsnapError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it returned`);
}

/** Every key and value of the cluster, read over TLS. */
async function readAll(endpoint: string, tls: EtcdTls): Promise<Map<string, string>> {
  const etcd = singleEndpointClient(endpoint, tls);
  try {
    return new Map(Object.entries(await etcd.getAll().strings()));
  } finally {
    etcd.close();
  }
}

describe('etcd with TLS and client-cert-auth (3 members)', () => {
  let cluster: TestCluster;
  let pki: EtcdTlsMaterial;
  let other: EtcdTlsMaterial;
  let work: string;
  let client: EtcdClient | undefined;
  const written = new Map<string, string>();

  before(async () => {
    work = await tempDir('etcdsnap-tls-test-');
    await mkdir(path.join(work, 'other'));
    [cluster, other] = await Promise.all([startEtcdCluster({ members: 3, tls: true }), makeEtcdTls(path.join(work, 'other'), 'other')]);
    pki = cluster.tls!;
    const etcd = singleEndpointClient(cluster.endpoints[0]!, pki.clientTls);
    try {
      for (let i = 0; i < 150; i++) {
        const ns = `ns-${i % 5}`;
        const key = `/registry/configmaps/${ns}/cm-${i}`;
        const value = JSON.stringify({ kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: ns }, data: { n: String(i) } });
        await etcd.put(key).value(value);
        written.set(key, value);
      }
    } finally {
      etcd.close();
    }
  });
  after(async () => {
    client?.close();
    await cluster?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the harness runs https client and peer URLs with client-cert-auth', () => {
    assert.ok(pki, 'cluster.tls is set');
    for (const m of cluster.members) {
      assert.match(m.clientUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.match(m.peerUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    }
  });

  test('health, status and member list over TLS with a client certificate', async () => {
    client = await EtcdClient.connect({ endpoints: cluster.endpoints, tls: pki.clientTls });
    const health = await client.health();
    assert.equal(health.healthy, true, health.reasons.join('; '));
    assert.equal(health.memberCount, 3);
    const members = await client.members();
    assert.deepEqual(members.map((m) => m.name).sort(), ['m1', 'm2', 'm3']);
    for (const m of members) {
      assert.ok(m.clientURLs.every((u) => u.startsWith('https://')), m.clientURLs.join());
      assert.ok(m.peerURLs.every((u) => u.startsWith('https://')), m.peerURLs.join());
    }
    const status = await client.status(cluster.endpoints[1]!);
    assert.match(status.version, /^3\.4\./);
    assert.notEqual(status.leaderId, '0');
    assert.ok(status.revision >= written.size + 1);
  });

  test('snapshot stream over TLS: the whole DB and its sha256 trailer', async () => {
    client ??= await EtcdClient.connect({ endpoints: cluster.endpoints, tls: pki.clientTls });
    const chunks: Buffer[] = [];
    for await (const chunk of client.snapshotStream(cluster.endpoints[2]!)) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    assert.equal(bytes.length % 512, 32, `size ${bytes.length}`);
    const db = bytes.subarray(0, bytes.length - 32);
    assert.deepEqual(createHash('sha256').update(db).digest(), bytes.subarray(bytes.length - 32));
  });

  test('without a client certificate: ETCD_UNREACHABLE saying to pass --cert and --key', async () => {
    const err = await rejectsWith(EtcdClient.connect({ endpoints: cluster.endpoints, tls: { ca: pki.clientTls.ca }, dialTimeoutMs: 3000 }), 'ETCD_UNREACHABLE');
    assert.equal(err.details?.tls, 'client-rejected');
    assert.match(err.message, /^TLS connection to etcd at https:\/\/127\.0\.0\.1:\d+ failed/);
    assert.match(err.message, /requires a client certificate .* none was given: pass --cert and --key/);
  });

  test('a client certificate of another CA: ETCD_UNREACHABLE saying to check --cert and --key', async () => {
    const tls = { ca: pki.clientTls.ca, cert: other.clientTls.cert, key: other.clientTls.key };
    const err = await rejectsWith(EtcdClient.connect({ endpoints: cluster.endpoints, tls, dialTimeoutMs: 3000 }), 'ETCD_UNREACHABLE');
    assert.equal(err.details?.tls, 'client-rejected');
    assert.match(err.message, /rejected the client certificate: check --cert and --key/);
  });

  test('an untrusted CA, or none (system CAs): ETCD_UNREACHABLE saying to check --cacert', async () => {
    const untrusted = { ca: other.clientTls.ca, cert: pki.clientTls.cert, key: pki.clientTls.key };
    for (const tls of [untrusted, undefined]) {
      const err = await rejectsWith(EtcdClient.connect({ endpoints: cluster.endpoints, ...(tls ? { tls } : {}), dialTimeoutMs: 3000 }), 'ETCD_UNREACHABLE');
      assert.equal(err.details?.tls, 'server-untrusted', err.message);
      assert.match(err.message, /server certificate is not trusted: check --cacert/);
    }
  });

  test('an http:// endpoint on a TLS member: ETCD_UNREACHABLE saying to use https://', async () => {
    const plain = cluster.endpoints[0]!.replace('https:', 'http:');
    const err = await rejectsWith(EtcdClient.connect({ endpoints: [plain], tls: pki.clientTls, dialTimeoutMs: 3000 }), 'ETCD_UNREACHABLE');
    assert.equal(err.details?.tls, 'tls-expected', err.message);
    assert.match(err.message, /use an https:\/\/ endpoint with --cacert, --cert and --key/);
  });

  test('--cacert/--cert/--key: INVALID_ARGUMENT naming the flag for unreadable, lone or mismatched files', async () => {
    assert.equal(etcdTlsFromOptions({}), undefined);
    assert.deepEqual(etcdTlsFromOptions({ cacert: pki.caFile }), { ca: pki.clientTls.ca });
    assert.deepEqual(etcdTlsFromOptions({ cacert: pki.caFile, cert: pki.clientCertFile, key: pki.clientKeyFile }), pki.clientTls);

    const missing = path.join(work, 'nope.pem');
    let err = throwsWith(() => etcdTlsFromOptions({ cacert: missing }), 'INVALID_ARGUMENT');
    assert.equal(err.message, `Cannot read --cacert ${missing}: no such file.`);
    err = throwsWith(() => etcdTlsFromOptions({ cacert: pki.caFile, cert: pki.clientCertFile, key: work }), 'INVALID_ARGUMENT');
    assert.match(err.message, /^Cannot read --key .*: it is a directory\.$/);
    err = throwsWith(() => etcdTlsFromOptions({ cacert: pki.caFile, cert: pki.clientCertFile }), 'INVALID_ARGUMENT');
    assert.match(err.message, /^--cert was given without --key/);
    err = throwsWith(() => etcdTlsFromOptions({ key: pki.clientKeyFile }), 'INVALID_ARGUMENT');
    assert.match(err.message, /^--key was given without --cert/);
    err = throwsWith(() => etcdTlsFromOptions({ cert: pki.clientCertFile, key: other.clientKeyFile }), 'INVALID_ARGUMENT');
    assert.match(err.message, /^--key \(with --cert\) is not the private key of that certificate/);
    const junk = path.join(work, 'junk.pem');
    await writeFile(junk, 'not a certificate\n');
    err = throwsWith(() => etcdTlsFromOptions({ cacert: junk }), 'INVALID_ARGUMENT');
    assert.match(err.message, /^--cacert is not a PEM CA certificate/);
  });

  test('CLI: snapshot save over TLS (flags, then $ETCDCTL_*), restored into a plain 1-member cluster with the same keys', async () => {
    const dir = path.join(work, 'snapshots');
    const endpoint = cluster.endpoints[0]!;
    const save = await etcdsnap(['snapshot', 'save', '--endpoints', endpoint, '--cacert', pki.caFile, '--cert', pki.clientCertFile, '--key', pki.clientKeyFile, '--dir', dir, '--node', 'cp-1', '-o', 'json']);
    assert.equal(save.code, 0, save.stderr);
    const saved = JSON.parse(save.stdout) as { name: string; failures: unknown[]; metadata: { etcd: { revision: number }; summary: { keys: number } | null } };
    assert.deepEqual(saved.failures, []);
    assert.equal(saved.metadata.summary?.keys, written.size);

    const source = await readAll(endpoint, pki.clientTls);
    const restored = await startClusterFromSnapshot(path.join(dir, saved.name), { members: 1 });
    try {
      assert.match(restored.endpoints[0]!, /^http:\/\//);
      const dump = await dumpAll(restored.endpoints[0]!);
      assert.equal(dump.kv.size, written.size);
      assert.deepEqual(dump.kv, source);
      for (const [k, v] of written) assert.equal(dump.kv.get(k), v, k);
    } finally {
      await restored.stop();
    }

    const env = { ETCDCTL_CACERT: pki.caFile, ETCDCTL_CERT: pki.clientCertFile, ETCDCTL_KEY: pki.clientKeyFile };
    const viaEnv = await etcdsnap(['snapshot', 'save', '--endpoints', endpoint, '--dir', dir, '--node', 'cp-2', '-o', 'json'], env);
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  });

  test('CLI: a missing client certificate or a lone --cert fails with a coded line naming the flags', async () => {
    const dir = path.join(work, 'refused');
    const noCert = await etcdsnap(['snapshot', 'save', '--endpoints', cluster.endpoints[0]!, '--cacert', pki.caFile, '--dir', dir], { ETCDCTL_CERT: '', ETCDCTL_KEY: '' });
    assert.equal(noCert.code, 1, noCert.stderr);
    assert.match(noCert.stderr, /^error: ETCD_UNREACHABLE: TLS connection to etcd at .* none was given: pass --cert and --key/m);

    const lone = await etcdsnap(['snapshot', 'save', '--endpoints', cluster.endpoints[0]!, '--dir', dir], { ETCDCTL_CACERT: pki.caFile, ETCDCTL_CERT: pki.clientCertFile, ETCDCTL_KEY: '' });
    assert.equal(lone.code, 2, lone.stderr);
    assert.match(lone.stderr, /^error: INVALID_ARGUMENT: --cert was given without --key/m);

    const unreadable = await etcdsnap(['snapshot', 'save', '--endpoints', cluster.endpoints[0]!, '--dir', dir, '--cacert', path.join(work, 'missing-ca.crt')]);
    assert.equal(unreadable.code, 2, unreadable.stderr);
    assert.match(unreadable.stderr, /^error: INVALID_ARGUMENT: Cannot read --cacert .*missing-ca\.crt: no such file\./m);
  });
});
