import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import { ApiClient, fetchPinnedCA } from '../../src/agent/api-client.js';
import { parseAgentConfig, type AgentConfigInput } from '../../src/agent/config.js';
import { isEtcdsnapError } from '../../src/core/errors.js';
import { PROTOCOL_VERSION } from '../../src/core/plans.js';
import { freePort, tempDir } from '../harness/index.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';
import { testLogger } from './agent-nodes.js';

/**
 * HTTPS with the server's own CA, pinned by --ca-checksum (sha256 of the CA's DER): the agent
 * fetches /cacerts, checks the checksum and trusts only that CA; a wrong checksum stops it.
 * External mode, with no etcd running: the agent still registers and reports the member as
 * unhealthy; stop/start commands run through the shell.
 */
describe('agent: HTTPS with a pinned server CA; external mode', () => {
  let cp: FakeControlPlane;
  let other: FakeControlPlane;
  let root: string;
  let input: AgentConfigInput;
  const agents: Agent[] = [];

  before(async () => {
    [cp, other] = await Promise.all([FakeControlPlane.start({ https: true }), FakeControlPlane.start({ https: true })]);
    root = await tempDir('etcdsnap-agent-tls-');
    input = {
      server: cp.url,
      registrationToken: cp.registrationToken,
      caChecksum: cp.caChecksum!,
      nodeName: 'ext-1',
      dataDir: join(root, 'a'),
      mode: 'external',
      etcdEndpoints: [`http://127.0.0.1:${await freePort()}`],
      etcdStopCommand: `touch ${join(root, 'stopped')}`,
      etcdStartCommand: `touch ${join(root, 'started')} && exit 3`,
      reportIntervalMs: 500,
      jitterMs: 0,
      retryInitialMs: 50,
      retryMaxMs: 500,
    };
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await cp?.close();
    await other?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('the right checksum: CA pinned and kept, registered, reports arrive; the member is reported unhealthy', async () => {
    const agent = new Agent(parseAgentConfig(input), { logger: testLogger() });
    agents.push(agent);
    await agent.start();
    await waitFor('a report over https', () => cp.lastReport('ext-1'));
    const r = cp.lastReport('ext-1')!;
    assert.equal(r.member.state, 'unhealthy');
    assert.match(r.member.error ?? '', /etcd/i);
    assert.equal(cp.node('ext-1').member.clientUrl, input.etcdEndpoints![0]);
    assert.equal(agent.state.state.caPem?.trim(), cp.ca!.trim());
  });

  it('external stop/start commands run through the shell; a failing one is ETCD_MEMBER_FAILED with its exit code', async () => {
    const agent = agents[0]!;
    await agent.member.stop();
    assert.ok(existsSync(join(root, 'stopped')));
    await assert.rejects(agent.member.start(), (e: unknown) => isEtcdsnapError(e, 'ETCD_MEMBER_FAILED') && /exited with code 3/.test(e.message));
    assert.ok(existsSync(join(root, 'started')));
  });

  it('a wrong checksum: the agent refuses the server (SERVER_TLS_UNTRUSTED) and never registers', async () => {
    const agent = new Agent(parseAgentConfig({ ...input, nodeName: 'ext-2', dataDir: join(root, 'b'), caChecksum: 'f'.repeat(64) }), { logger: testLogger() });
    agents.push(agent);
    await agent.start();
    await assert.rejects(agent.fatal, (e: unknown) => isEtcdsnapError(e, 'SERVER_TLS_UNTRUSTED') && e.message.includes(cp.caChecksum!) && e.message.includes('f'.repeat(64)));
    assert.equal(cp.nodes.has('ext-2'), false);
  });

  it('without the pinned CA the certificate is untrusted; a pinned CA does not trust another CA’s server', async () => {
    const request = { apiVersion: PROTOCOL_VERSION, registrationToken: cp.registrationToken, node: 'x', agentVersion: '0', mode: 'managed', member: { name: 'x', clientUrl: 'http://127.0.0.1:1', peerUrl: 'http://127.0.0.1:2' } } as const;
    const plain = new ApiClient({ server: cp.url, requestTimeoutMs: 5000 });
    await assert.rejects(plain.register(request), (e: unknown) => isEtcdsnapError(e, 'SERVER_TLS_UNTRUSTED'));
    plain.close();
    const pinned = new ApiClient({ server: other.url, ca: cp.ca!, requestTimeoutMs: 5000 });
    await assert.rejects(pinned.register({ ...request, registrationToken: other.registrationToken }), (e: unknown) => isEtcdsnapError(e, 'SERVER_TLS_UNTRUSTED') && /pinned server CA/.test(e.message));
    pinned.close();
    assert.equal((await fetchPinnedCA(other.url, other.caChecksum!, 5000)).trim(), other.ca!.trim());
  });
});
