/**
 * What bench/server-load.ts and its load generator (bench/server-load-agents.ts) share: the IPC
 * messages and a latency distribution. No side effects: both processes import it.
 */

export interface SimNode {
  node: string;
  token: string;
  /** The plan the agent applied (sent as `after` and in reports). */
  planId: string;
}

export interface StartMessage {
  type: 'start';
  url: string;
  ca: string | undefined;
  nodes: SimNode[];
  waitSec: number;
  heartbeatSec: number;
  rampSec: number;
  /** > 0: one shared pool of that many sockets; 0: a pool of 2 per agent (like real agents). */
  connections: number;
}

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface WindowStats {
  seconds: number;
  polls200: number;
  polls204: number;
  pollErrors: Record<string, number>;
  /** How much later than `wait` a 204 came back (ms): the server's timer and event-loop delay. */
  lateness204: Dist;
  reports: number;
  reportErrors: Record<string, number>;
  /** Heartbeat report round trip (ms). */
  reportMs: Dist;
  /** This process's event-loop delay beyond the 10 ms sampling period (ms): if high, the generator itself distorts the numbers. */
  eventLoopDelay: { p50: number; p99: number; max: number };
}

export interface Progress {
  type: 'progress';
  /** Agents whose loops have started (the ramp). */
  started: number;
  /** Long-polls in flight. */
  open: number;
  polls: number;
  reports: number;
  errors: number;
  lastError: string | undefined;
}

export type ParentMessage = StartMessage | { type: 'window-start' } | { type: 'window-end' } | { type: 'stop' };
export type ChildMessage = Progress | { type: 'window'; stats: WindowStats } | { type: 'stopped'; totals: WindowStats } | { type: 'error'; message: string };

/** Nearest-rank percentiles (ms), max and mean; NaN when empty. */
export function dist(values: ArrayLike<number>): Dist {
  if (values.length === 0) return { n: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const s = Float64Array.from(values).sort();
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] as number, mean: sum / s.length };
}

/**
 * monitorEventLoopDelay (here and prom-client's, both with a 10 ms period) records the whole
 * interval between its timer's runs, so an idle loop shows ~10 ms: the delay beyond the
 * period, in ms, from a value in ns.
 */
export function beyondPeriod(ns: number, periodMs = 10): number {
  return Number.isFinite(ns) ? Math.max(0, ns / 1e6 - periodMs) : NaN;
}
