/**
 * The load generator of bench/server-load.ts, run as a child process (fork) so that neither the
 * server nor the latency probes share its event loop. It plays N registered agents the way the
 * real agent (src/agent) behaves with its defaults: a long-poll of the plan with
 * `after=<planId>&wait=30`, re-polled as soon as it returns, and a heartbeat report every 10 s;
 * sockets are kept alive: each simulated agent has its own undici Pool of 2 connections (the
 * real agent has its own keep-alive http.Agent: one socket for the long-poll, one for reports),
 * so the server holds as many sockets as with real agents; or one shared pool (`connections`).
 *
 * Spread, not lockstep: agents start over `rampSec`; the first long-poll of each agent waits a
 * random 1..wait s (so the returns spread evenly over the 30 s cycle); the first heartbeat
 * comes after a random 0..heartbeat s.
 *
 * Protocol (IPC with the parent): `start` → `progress` every second; `window-start` /
 * `window-end` → `window` (stats of that window); `stop` → `stopped` and exit.
 */
import { setMaxListeners } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, Pool, request, type Dispatcher } from 'undici';
import type { AgentReport, NodePlan, PROTOCOL_VERSION } from '../src/core/plans.js';
import { beyondPeriod, dist, type ChildMessage, type ParentMessage, type SimNode, type StartMessage, type WindowStats } from './server-load-common.js';

/** The protocol version (type-checked against src/core/plans.ts without loading it at run time). */
const PROTOCOL: typeof PROTOCOL_VERSION = 'etcdsnap.io/v1';

class Window {
  readonly started = Date.now();
  polls200 = 0;
  polls204 = 0;
  pollErrors: Record<string, number> = {};
  lateness: number[] = [];
  reports = 0;
  reportErrors: Record<string, number> = {};
  reportMs: number[] = [];
  readonly eld = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    this.eld.enable();
  }

  stats(): WindowStats {
    this.eld.disable();
    return {
      seconds: (Date.now() - this.started) / 1000,
      polls200: this.polls200,
      polls204: this.polls204,
      pollErrors: this.pollErrors,
      lateness204: dist(this.lateness),
      reports: this.reports,
      reportErrors: this.reportErrors,
      reportMs: dist(this.reportMs),
      eventLoopDelay: { p50: beyondPeriod(this.eld.percentile(50)), p99: beyondPeriod(this.eld.percentile(99)), max: beyondPeriod(this.eld.max) },
    };
  }
}

function errorKey(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  return e.code ?? e.name ?? String(e.message ?? err).slice(0, 60);
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

async function run(start: StartMessage): Promise<void> {
  const send = (m: ChildMessage): void => {
    if (process.connected) process.send?.(m);
  };
  const stopping = new AbortController();
  // Every loop waits on this one signal.
  setMaxListeners(0, stopping.signal);
  const options = {
    pipelining: 1,
    // Below the server's keep-alive (Fastify: 72 s), like a keep-alive http.Agent.
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: (start.waitSec + 60) * 1000,
    bodyTimeout: 60_000,
    connect: start.ca ? { ca: start.ca } : {},
  };
  // Like the real agent (one keep-alive http.Agent each: the long-poll's socket and the
  // reports' socket), every simulated agent has its own pool of 2; or one shared pool.
  const shared = start.connections > 0 ? new Agent({ ...options, connections: start.connections }) : undefined;
  const pools: Dispatcher[] = [];
  const dispatcherFor = (): Dispatcher => {
    if (shared) return shared;
    const p = new Pool(start.url, { ...options, connections: 2 });
    pools.push(p);
    return p;
  };
  const total = new Window();
  let win: Window | undefined;
  let open = 0;
  let started = 0;
  let lastError: string | undefined;
  const all = (): Window[] => (win ? [total, win] : [total]);

  const pollLoop = async (n: SimNode, dispatcher: Dispatcher): Promise<void> => {
    let wait = 1 + Math.floor(Math.random() * start.waitSec);
    const headers = { authorization: `Bearer ${n.token}`, accept: 'application/json' };
    while (!stopping.signal.aborted) {
      const t0 = performance.now();
      open++;
      let retry = false;
      try {
        const res = await request(`${start.url}/api/v1/agent/plan?after=${encodeURIComponent(n.planId)}&wait=${wait}`, { method: 'GET', headers, dispatcher, signal: stopping.signal });
        const ms = performance.now() - t0;
        if (res.statusCode === 200) {
          const plan = (await res.body.json()) as NodePlan;
          n.planId = plan.planId;
          for (const w of all()) w.polls200++;
        } else if (res.statusCode === 204) {
          await res.body.dump();
          for (const w of all()) {
            w.polls204++;
            w.lateness.push(ms - wait * 1000);
          }
        } else {
          const text = await res.body.text();
          lastError = `plan ${res.statusCode}: ${text.slice(0, 200)}`;
          for (const w of all()) bump(w.pollErrors, `HTTP ${res.statusCode}`);
          retry = true;
        }
      } catch (err) {
        if (stopping.signal.aborted) break;
        lastError = `plan: ${String(err)}`;
        for (const w of all()) bump(w.pollErrors, errorKey(err));
        retry = true;
      } finally {
        open--;
      }
      wait = start.waitSec;
      // Like the agent's backoff: never a busy loop against a failing server.
      if (retry) await sleep(1000 + Math.random() * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  };

  const heartbeatLoop = async (n: SimNode, dispatcher: Dispatcher): Promise<void> => {
    await sleep(Math.random() * start.heartbeatSec * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    const member = { name: n.node, clientUrl: `https://${n.node}:2379`, peerUrl: `https://${n.node}:2380`, state: 'healthy' as const, etcdVersion: '3.5.16', dbSize: 52_428_800, revision: 123_456 };
    const nextScheduledAt = new Date(Math.ceil(Date.now() / 18_000_000) * 18_000_000).toISOString();
    while (!stopping.signal.aborted) {
      const body: AgentReport = { apiVersion: PROTOCOL, node: n.node, agentVersion: '0.1.0', planId: n.planId, member, tasks: [], snapshots: [], deleted: [], nextScheduledAt };
      const t0 = performance.now();
      try {
        const res = await request(`${start.url}/api/v1/agent/report`, {
          method: 'POST',
          headers: { authorization: `Bearer ${n.token}`, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          dispatcher,
          signal: stopping.signal,
        });
        const text = await res.body.text();
        const ms = performance.now() - t0;
        if (res.statusCode === 200) {
          for (const w of all()) {
            w.reports++;
            w.reportMs.push(ms);
          }
        } else {
          lastError = `report ${res.statusCode}: ${text.slice(0, 200)}`;
          for (const w of all()) bump(w.reportErrors, `HTTP ${res.statusCode}`);
        }
      } catch (err) {
        if (stopping.signal.aborted) break;
        lastError = `report: ${String(err)}`;
        for (const w of all()) bump(w.reportErrors, errorKey(err));
      }
      await sleep(start.heartbeatSec * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  };

  const progress = setInterval(() => {
    const errors = Object.values(total.pollErrors).reduce((a, b) => a + b, 0) + Object.values(total.reportErrors).reduce((a, b) => a + b, 0);
    send({ type: 'progress', started, open, polls: total.polls200 + total.polls204, reports: total.reports, errors, lastError });
  }, 1000);

  process.on('message', (m: ParentMessage) => {
    if (m.type === 'window-start') win = new Window();
    else if (m.type === 'window-end' && win) {
      send({ type: 'window', stats: win.stats() });
      win = undefined;
    } else if (m.type === 'stop') {
      stopping.abort();
      clearInterval(progress);
      const totals = total.stats();
      void Promise.allSettled([...(shared ? [shared] : pools)].map((d) => d.destroy())).finally(() => {
        send({ type: 'stopped', totals });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 200).unref();
      });
    }
  });

  // Ramp: agents start evenly over rampSec.
  const loops: Promise<void>[] = [];
  const gap = (start.rampSec * 1000) / Math.max(1, start.nodes.length);
  for (const n of start.nodes) {
    if (stopping.signal.aborted) break;
    const d = dispatcherFor();
    loops.push(pollLoop(n, d), heartbeatLoop(n, d));
    started++;
    if (gap >= 1) await sleep(gap, undefined, { signal: stopping.signal }).catch(() => undefined);
  }
  await Promise.all(loops);
}

// The parent going away (crash, SIGKILL) ends this process too.
process.on('disconnect', () => process.exit(0));
process.once('message', (m: ParentMessage) => {
  if (m.type !== 'start') return;
  run(m).catch((err: unknown) => {
    if (process.connected) process.send?.({ type: 'error', message: String((err as Error)?.stack ?? err) } satisfies ChildMessage);
    process.exit(1);
  });
});
