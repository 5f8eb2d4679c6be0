import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig, type AgentConfigInput } from '../../src/agent/config.js';
import { EtcdAccess } from '../../src/agent/etcd-access.js';
import { agentCommand, agentConfigFromOptions } from '../../src/cli/agent-command.js';
import { isEtcdsnapError } from '../../src/core/errors.js';
import { startEtcdCluster, tempDir, type TestCluster } from '../harness/index.js';
import type { EtcdTlsMaterial } from '../harness/tls.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';
import { testLogger } from './agent-nodes.js';

/**
 * External-mode agents next to etcd run like Kubernetes' (https, client-cert-auth): with
 * --etcd-cacert/--etcd-cert/--etcd-key the agent probes the member and takes a snapshot task
 * over TLS; without them the member is reported unhealthy with the TLS advice in the agent's
 * flag names, and the task fails with a coded error. Bad TLS settings stop the agent at start.
 */
describe('agent: external etcd with TLS and client-cert-auth', () => {
  let cluster: TestCluster;
  let pki: EtcdTlsMaterial;
  let cp: FakeControlPlane;
  let root: string;
  let base: AgentConfigInput;
  const agents: Agent[] = [];

  const start = async (input: AgentConfigInput): Promise<Agent> => {
    const agent = new Agent(parseAgentConfig(input), { logger: testLogger() });
    agents.push(agent);
    await agent.start();
    return agent;
  };

  before(async () => {
    [cluster, cp, root] = await Promise.all([startEtcdCluster({ members: 1, tls: true }), FakeControlPlane.start(), tempDir('etcdsnap-agent-etcd-tls-')]);
    pki = cluster.tls!;
    base = {
      server: cp.url,
      registrationToken: cp.registrationToken,
      nodeName: 'tls-1',
      dataDir: join(root, 'tls-1'),
      mode: 'external',
      etcdEndpoints: [cluster.endpoints[0]!],
      reportIntervalMs: 500,
      jitterMs: 0,
      retryInitialMs: 50,
      retryMaxMs: 500,
      requestTimeoutMs: 5000,
    };
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await cp?.close();
    await cluster?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('bad TLS settings are INVALID_CONFIG naming the flag', () => {
    const refused = (patch: Partial<AgentConfigInput>, flag: string, text: RegExp): void =>
      assert.throws(
        () => parseAgentConfig({ ...base, ...patch }),
        (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && e.details?.flag === flag && e.message.includes(flag) && text.test(e.message),
        `expected INVALID_CONFIG naming ${flag} (${text})`,
      );
    refused({ etcdCacert: join(root, 'nope.pem') }, '--etcd-cacert', /no such file/);
    refused({ etcdCert: pki.clientCertFile }, '--etcd-key', /--etcd-cert was given without --etcd-key/);
    refused({ etcdKey: pki.clientKeyFile }, '--etcd-cert', /--etcd-key was given without --etcd-cert/);
    refused({ etcdCert: pki.clientCertFile, etcdKey: pki.serverKeyFile }, '--etcd-key', /not the private key of that certificate/);
    refused({ etcdCacert: pki.clientKeyFile }, '--etcd-cacert', /not a PEM CA certificate/);
    // The same in managed mode: there the flags configure the agent's client side.
    refused({ mode: 'managed', etcdEndpoints: undefined, etcdCert: pki.clientCertFile }, '--etcd-key', /without --etcd-key/);
  });

  it('CLI: --etcd-cacert/--etcd-cert/--etcd-key, with ETCDCTL_* as fallbacks (an empty one is not set)', () => {
    const parse = (args: string[]): AgentConfigInput => {
      let got: AgentConfigInput | undefined;
      const cmd = agentCommand().action((opts: Parameters<typeof agentConfigFromOptions>[0]) => void (got = agentConfigFromOptions(opts)));
      new Command('etcdsnap').exitOverride().addCommand(cmd.exitOverride()).parse(['node', 'etcdsnap', 'agent', ...args]);
      return got!;
    };
    const required = ['--server', cp.url, '--registration-token', cp.registrationToken, '--node-name', 'n1', '--data-dir', join(root, 'n1'), '--mode', 'external', '--etcd-endpoint', cluster.endpoints[0]!];
    const saved = { ca: process.env.ETCDCTL_CACERT, cert: process.env.ETCDCTL_CERT, key: process.env.ETCDCTL_KEY };
    try {
      const flags = parseAgentConfig(parse([...required, '--etcd-cacert', pki.caFile, '--etcd-cert', pki.clientCertFile, '--etcd-key', pki.clientKeyFile]));
      assert.deepEqual([flags.etcdCacert, flags.etcdCert, flags.etcdKey], [pki.caFile, pki.clientCertFile, pki.clientKeyFile]);
      process.env.ETCDCTL_CACERT = pki.caFile;
      process.env.ETCDCTL_CERT = pki.clientCertFile;
      process.env.ETCDCTL_KEY = '';
      const env = parse([...required, '--etcd-key', pki.clientKeyFile]);
      assert.deepEqual([env.etcdCacert, env.etcdCert, env.etcdKey], [pki.caFile, pki.clientCertFile, pki.clientKeyFile]);
      assert.throws(
        () => parseAgentConfig(parse(required)),
        (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && e.details?.flag === '--etcd-key',
        'ETCDCTL_KEY= is not a key file',
      );
      process.env.ETCDCTL_CACERT = join(root, 'gone.pem');
      assert.throws(
        () => parseAgentConfig(parse([...required, '--etcd-key', pki.clientKeyFile])),
        (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && /--etcd-cacert: cannot read .*gone\.pem \(from \$ETCDCTL_CACERT\): no such file/.test(e.message),
      );
    } finally {
      for (const [k, v] of [['ETCDCTL_CACERT', saved.ca], ['ETCDCTL_CERT', saved.cert], ['ETCDCTL_KEY', saved.key]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('with the TLS flags: registered under etcd’s member name, healthy, a snapshot task succeeds with a file on disk', async () => {
    const agent = await start({ ...base, etcdCacert: pki.caFile, etcdCert: pki.clientCertFile, etcdKey: pki.clientKeyFile });
    await waitFor('a healthy member report over TLS', () => cp.lastReport('tls-1')?.member.state === 'healthy');
    const r = cp.lastReport('tls-1')!;
    assert.match(r.member.etcdVersion ?? '', /^3\.\d+\.\d+/);
    assert.ok((r.member.dbSize ?? 0) > 0);
    // The identity comes from etcd's member list, read over TLS (the node name differs).
    assert.equal(cp.node('tls-1').member.name, cluster.members[0]!.name);
    assert.equal(cp.node('tls-1').member.peerUrl, cluster.members[0]!.peerUrl);

    cp.addTask('tls-1', { id: 'snap-tls-1', kind: 'snapshot', operationId: 'op-tls' });
    const status = await waitFor('the snapshot task to finish', () => {
      const s = cp.taskStatus('tls-1', 'snap-tls-1');
      return s && s.state !== 'running' ? s : undefined;
    });
    assert.equal(status.state, 'succeeded', `${status.code ?? ''} ${status.message ?? ''}`);
    const [snap] = cp.snapshotsOf('tls-1').filter((s) => s.taskId === 'snap-tls-1');
    assert.equal(snap?.state, 'successful');
    const file = fileURLToPath(snap.location);
    assert.equal(file.startsWith(agent.config.snapshotDir), true, file);
    assert.equal((await stat(file)).size, snap.size);
    assert.ok(snap.size > 0);
    assert.equal(snap.metadata?.etcd.memberCount, 1);
    assert.deepEqual(cp.invalid, []);
  });

  it('without the TLS flags: member unhealthy with TLS advice naming --etcd-cacert; the snapshot task fails with a code', async () => {
    const agent = await start({ ...base, nodeName: 'plain-1', dataDir: join(root, 'plain-1') });
    const report = await waitFor('an unhealthy member report', () => {
      const r = cp.lastReport('plain-1');
      return r?.member.state === 'unhealthy' ? r : undefined;
    });
    const error = report.member.error ?? '';
    assert.match(error, /TLS connection to etcd at https:\/\/127\.0\.0\.1:\d+ failed/);
    assert.match(error, /check --etcd-cacert/);
    assert.doesNotMatch(error, /(?<![\w-])--(cacert|cert|key)\b/, 'etcdctl flag names are translated');
    // etcd unreachable: the flags describe the member.
    assert.equal(cp.node('plain-1').member.name, 'plain-1');

    cp.addTask('plain-1', { id: 'snap-plain-1', kind: 'snapshot', operationId: 'op-plain' });
    const status = await waitFor('the snapshot task to fail', () => (cp.taskStatus('plain-1', 'snap-plain-1')?.state === 'failed' ? cp.taskStatus('plain-1', 'snap-plain-1') : undefined));
    assert.equal(status.code, 'ETCD_UNREACHABLE');
    assert.match(status.message ?? '', /TLS connection to etcd .* --etcd-cacert/);
    const failed = cp.snapshotsOf('plain-1').filter((s) => s.taskId === 'snap-plain-1');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.state, 'failed');
    assert.equal(failed[0]!.code, 'ETCD_UNREACHABLE');
    assert.deepEqual((await readdir(agent.config.snapshotDir)).filter((f) => f !== '.metadata'), [], 'nothing written');
  });

  it('with the CA but no client certificate: the advice names --etcd-cert and --etcd-key', async () => {
    await start({ ...base, nodeName: 'ca-only-1', dataDir: join(root, 'ca-only-1'), etcdCacert: pki.caFile });
    const report = await waitFor('an unhealthy member report', () => {
      const r = cp.lastReport('ca-only-1');
      return r?.member.state === 'unhealthy' ? r : undefined;
    });
    assert.match(report.member.error ?? '', /requires a client certificate .* none was given: pass --etcd-cert and --etcd-key/);
  });

  it('rotated files are read again; a half-written rotation keeps the last good material', async () => {
    const dir = join(root, 'rotate');
    const files = { etcdCacert: join(dir, 'ca.pem'), etcdCert: join(dir, 'client.pem'), etcdKey: join(dir, 'client.key') };
    await mkdir(dir);
    await Promise.all([copyFile(pki.caFile, files.etcdCacert), copyFile(pki.clientCertFile, files.etcdCert), copyFile(pki.clientKeyFile, files.etcdKey)]);
    const access = new EtcdAccess(files);
    assert.deepEqual(access.tls()?.cert, await readFile(pki.clientCertFile));
    // A new certificate whose key is not there yet: still the old pair, and connections work.
    await copyFile(pki.serverCertFile, files.etcdCert);
    assert.deepEqual(access.tls()?.cert, await readFile(pki.clientCertFile));
    const client = await access.connect({ endpoints: cluster.endpoints, dialTimeoutMs: 5000 });
    client.close();
    // The key arrives: the new pair is used.
    await copyFile(pki.serverKeyFile, files.etcdKey);
    assert.deepEqual(access.tls()?.cert, await readFile(pki.serverCertFile));
    assert.deepEqual(access.tls()?.key, await readFile(pki.serverKeyFile));
  });
});
