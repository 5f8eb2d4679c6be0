import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { agentCommand, agentConfigFromOptions } from '../cli/agent-command.js';
import { isEtcdsnapError } from '../core/errors.js';
import { flagOf, parseAgentConfig, type AgentConfigInput } from './config.js';

const base: AgentConfigInput = { server: 'https://cp.example:8443/', registrationToken: 'r'.repeat(32), nodeName: 'cp-1', dataDir: '/var/lib/etcdsnap-agent' };

function refused(input: Partial<AgentConfigInput>, flag: string): void {
  assert.throws(
    () => parseAgentConfig({ ...base, ...input }),
    (err: unknown) => isEtcdsnapError(err, 'INVALID_CONFIG') && err.message.includes(flag) && err.details?.flag === flag,
    `expected INVALID_CONFIG naming ${flag}`,
  );
}

describe('agent config', () => {
  it('fills defaults, derives paths and freezes', () => {
    const c = parseAgentConfig(base);
    assert.equal(c.server, 'https://cp.example:8443');
    assert.equal(c.mode, 'managed');
    assert.equal(c.snapshotDir, '/var/lib/etcdsnap-agent/snapshots');
    assert.equal(c.etcdDataDir, '/var/lib/etcdsnap-agent/etcd');
    assert.equal(c.etcdName, 'cp-1');
    assert.equal(c.etcdInitialCluster, 'cp-1=http://127.0.0.1:2380');
    assert.deepEqual(c.etcdEndpoints, ['http://127.0.0.1:2379']);
    assert.equal(c.reportIntervalMs, 10_000);
    assert.equal(c.jitterMs, 5000);
    assert.ok(Object.isFrozen(c));
  });

  it('normalises the CA checksum', () => {
    const hex = 'AB'.repeat(32);
    assert.equal(parseAgentConfig({ ...base, caChecksum: `sha256:${hex.match(/../g)!.join(':')}` }).caChecksum, 'ab'.repeat(32));
  });

  it('names the flag of a bad value', () => {
    refused({ server: 'ftp://x' }, '--server');
    refused({ nodeName: 'CP_1' }, '--node-name');
    refused({ caChecksum: 'abc' }, '--ca-checksum');
    refused({ etcdClientUrl: 'localhost:2379' }, '--etcd-client-url');
    refused({ reportIntervalMs: 5 }, '--report-interval');
    refused({ registrationToken: 'short' }, '--registration-token');
  });

  it('checks combinations', () => {
    refused({ etcdInitialCluster: 'other=http://127.0.0.1:2380' }, '--etcd-initial-cluster');
    refused({ etcdEndpoints: ['http://127.0.0.1:2379'] }, '--etcd-endpoint');
    refused({ mode: 'external', etcdInitialCluster: 'cp-1=http://127.0.0.1:2380' }, '--etcd-initial-cluster');
    refused({ transferListen: '9280' }, '--transfer-listen');
    refused({ transferListen: '0.0.0.0:70000' }, '--transfer-listen');
    refused({ transferUrl: 'http://10.0.0.1:9280' }, '--transfer-url');
    refused({ server: 'http://cp:8080', caChecksum: 'a'.repeat(64) }, '--ca-checksum');
    refused({ retryInitialMs: 5000, retryMaxMs: 1000 }, '--retry-initial');
  });

  it('etcd TLS files are read and checked at start (details in test/integration/agent-etcd-tls.test.ts)', () => {
    refused({ mode: 'external', etcdEndpoints: ['https://127.0.0.1:2379'], etcdCacert: '/nonexistent/etcdsnap/ca.pem' }, '--etcd-cacert');
    refused({ etcdKey: '/nonexistent/etcdsnap/client.key' }, '--etcd-key');
    refused({ etcdCert: '' }, '--etcd-cert');
  });

  it('external mode takes endpoints and commands', () => {
    const c = parseAgentConfig({ ...base, mode: 'external', etcdEndpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], etcdStopCommand: 'systemctl stop etcd' });
    assert.deepEqual(c.etcdEndpoints, ['https://10.0.0.1:2379', 'https://10.0.0.2:2379']);
    assert.equal(c.etcdStopCommand, 'systemctl stop etcd');
  });

  it('restore settings: transfer endpoint, hooks, and --etcd-data-dir in external mode', () => {
    const m = parseAgentConfig(base);
    assert.equal(m.transferListen, '0.0.0.0:9280');
    assert.equal(m.transferHost, '0.0.0.0');
    assert.equal(m.transferPort, 9280);
    assert.equal(m.transferUrl, undefined);
    const e = parseAgentConfig({ ...base, mode: 'external', etcdDataDir: 'rel/etcd', transferListen: '[::1]:0', transferUrl: 'https://cp-1.example:9443/', stopHook: 'systemctl stop rke2-server', startHook: 'systemctl start rke2-server' });
    assert.equal(e.etcdDataDir, `${process.cwd()}/rel/etcd`);
    assert.equal(e.transferHost, '::1');
    assert.equal(e.transferPort, 0);
    assert.equal(e.transferUrl, 'https://cp-1.example:9443');
    assert.equal(e.stopHook, 'systemctl stop rke2-server');
    assert.equal(parseAgentConfig({ ...base, mode: 'external' }).etcdDataDir, undefined, 'external mode has no default data dir');
  });

  it('maps keys to flags', () => {
    assert.equal(flagOf('etcdInitialClusterToken'), '--etcd-initial-cluster-token');
    assert.equal(flagOf('jitterMs'), '--jitter');
    assert.equal(flagOf('etcdCacert'), '--etcd-cacert');
    assert.equal(flagOf('etcdCert'), '--etcd-cert');
    assert.equal(flagOf('etcdKey'), '--etcd-key');
  });
});

describe('etcdsnap agent flags', () => {
  function parse(args: string[]): AgentConfigInput {
    let got: AgentConfigInput | undefined;
    const cmd = agentCommand();
    cmd.action((opts: Parameters<typeof agentConfigFromOptions>[0]) => {
      got = agentConfigFromOptions(opts);
    });
    new Command('etcdsnap').exitOverride().addCommand(cmd.exitOverride()).parse(['node', 'etcdsnap', 'agent', ...args]);
    return got as AgentConfigInput;
  }
  const required = ['--server', 'http://127.0.0.1:8080', '--registration-token', 'r'.repeat(32), '--node-name', 'n1', '--data-dir', '/tmp/a'];

  it('durations, lists and defaults', () => {
    const c = parseAgentConfig(parse([...required, '--jitter', '0', '--report-interval', '1500ms', '--mode', 'external', '--etcd-endpoint', 'http://127.0.0.1:1,http://127.0.0.1:2']));
    assert.equal(c.jitterMs, 0);
    assert.equal(c.reportIntervalMs, 1500);
    assert.deepEqual(c.etcdEndpoints, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  });

  it('restore flags', () => {
    const c = parseAgentConfig(parse([...required, '--transfer-listen', '127.0.0.1:0', '--transfer-url', 'https://10.0.0.1:9280', '--stop-hook', 'stop it', '--start-hook', 'start it', '--mode', 'external', '--etcd-data-dir', '/var/lib/etcd']));
    assert.equal(c.transferPort, 0);
    assert.equal(c.transferUrl, 'https://10.0.0.1:9280');
    assert.equal(c.stopHook, 'stop it');
    assert.equal(c.startHook, 'start it');
    assert.equal(c.etcdDataDir, '/var/lib/etcd');
  });

  it('a missing or malformed flag is INVALID_CONFIG naming it', () => {
    assert.throws(() => parse(['--server', 'http://x:1']), (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && /--registration-token/.test(e.message));
    assert.throws(() => parse([...required, '--jitter', 'soon']), (e: unknown) => isEtcdsnapError(e, 'INVALID_CONFIG') && /--jitter/.test(e.message));
  });
});
