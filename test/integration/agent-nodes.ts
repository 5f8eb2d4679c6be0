/**
 * Agents with their own managed etcd members on free loopback ports, for agent integration
 * tests: n nodes sharing one initial cluster, each with its data dir under one temp root.
 * Members still running when the process exits are killed (a failed test must not leave etcd
 * behind).
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig, type AgentConfig, type AgentConfigInput } from '../../src/agent/config.js';
import { ManagedMember } from '../../src/agent/member.js';
import { createLogger } from '../../src/core/log.js';
import { freePort, tempDir } from '../harness/index.js';
import type { FakeControlPlane } from './agent-fake-server.js';

const liveAgents = new Set<Agent>();
let netInstalled = false;
function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  process.on('exit', () => {
    for (const a of liveAgents) {
      const pid = a.member instanceof ManagedMember ? a.member.process?.pid : undefined;
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

export interface AgentNodes {
  root: string;
  names: string[];
  configs: AgentConfig[];
  agents: Array<Agent | undefined>;
  /** Client URLs of the members, in node order. */
  endpoints: string[];
  agent(i: number): Agent;
  /** Starts (or restarts) agent i with its config (a new Agent object, as after a process restart). */
  start(i: number): Promise<Agent>;
  /** Stops agent i (and its managed member). */
  stop(i: number): Promise<void>;
  /** Files in node i's snapshot dir (no hidden ones). */
  files(i: number): Promise<string[]>;
  /** Every entry of node i's snapshot dir, hidden ones and `.metadata/` entries included. */
  allEntries(i: number): Promise<string[]>;
  close(): Promise<void>;
}

export const testLogger = (): ReturnType<typeof createLogger> => createLogger(process.env.AGENT_TEST_LOG ?? 'silent', 'agent-test');

export async function agentNodes(cp: FakeControlPlane, n: number, extra: Partial<AgentConfigInput> = {}, prefix = 'etcdsnap-agent-'): Promise<AgentNodes> {
  installSafetyNet();
  const root = await tempDir(prefix);
  const names = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  const ports: Array<{ client: number; peer: number }> = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = names.map((name, i) => `${name}=http://127.0.0.1:${ports[i]!.peer}`).join(',');
  const configs = names.map((name, i) =>
    parseAgentConfig({
      server: cp.url,
      registrationToken: cp.registrationToken,
      nodeName: name,
      dataDir: join(root, name),
      etcdClientUrl: `http://127.0.0.1:${ports[i]!.client}`,
      etcdPeerUrl: `http://127.0.0.1:${ports[i]!.peer}`,
      etcdInitialCluster: initial,
      etcdInitialClusterToken: `agent-test-${root.slice(-6).toLowerCase()}`,
      reportIntervalMs: 1000,
      jitterMs: 0,
      retryInitialMs: 100,
      retryMaxMs: 1000,
      requestTimeoutMs: 5000,
      ...(cp.caChecksum ? { caChecksum: cp.caChecksum } : {}),
      ...extra,
    }),
  );
  const agents: Array<Agent | undefined> = names.map(() => undefined);
  const nodes: AgentNodes = {
    root,
    names,
    configs,
    agents,
    endpoints: configs.map((c) => c.etcdClientUrl),
    agent(i) {
      const a = agents[i];
      if (!a) throw new Error(`agent ${i} is not running`);
      return a;
    },
    async start(i) {
      if (agents[i]) throw new Error(`agent ${i} already runs`);
      const agent = new Agent(configs[i]!, { logger: testLogger() });
      agents[i] = agent;
      liveAgents.add(agent);
      await agent.start();
      return agent;
    },
    async stop(i) {
      const a = agents[i];
      agents[i] = undefined;
      await a?.stop();
      if (a) liveAgents.delete(a);
    },
    async files(i) {
      return (await readdir(configs[i]!.snapshotDir).catch(() => [])).filter((f) => !f.startsWith('.')).sort();
    },
    async allEntries(i) {
      const dir = configs[i]!.snapshotDir;
      const top = await readdir(dir).catch(() => [] as string[]);
      const meta = await readdir(join(dir, '.metadata')).catch(() => [] as string[]);
      return [...top.filter((e) => e !== '.metadata'), ...meta.map((m) => `.metadata/${m}`)].sort();
    },
    async close() {
      await Promise.all(names.map((_, i) => nodes.stop(i)));
      await rm(root, { recursive: true, force: true });
    },
  };
  return nodes;
}
