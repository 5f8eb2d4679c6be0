/**
 * Summary of a V8 `.cpuprofile` (from `node --cpu-prof`) over a time window: self time by
 * function, and self and inclusive time by "where" (a package under node_modules, a file of
 * etcdsnap, a Node internal module, or V8's pseudo-frames such as `(garbage collector)`).
 * Used by bench/server-load.ts to say where the server's time goes under load.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  what: string;
  ms: number;
  /** Share of the window's sampled time (idle included). */
  share: number;
}

export interface ProfileSummary {
  /** Milliseconds of the window that the profile covers. */
  windowMs: number;
  /** Sampled time that was not idle (ms) — the main thread's busy time. */
  busyMs: number;
  idleMs: number;
  selfByFunction: ProfileRow[];
  selfByWhere: ProfileRow[];
  inclusiveByWhere: ProfileRow[];
  /** Inclusive time of the route handlers and hooks of interest, by function name. */
  inclusiveByFunction: ProfileRow[];
}

/** Where a frame's code lives: `fastify`, `etcdsnap src/server/plans.js`, `node:internal/…`, `(garbage collector)`. */
export function whereOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  const src = url.indexOf('/dist/');
  if (src >= 0) return `etcdsnap ${url.slice(src + '/dist/'.length)}`;
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts.slice(0, Math.min(parts.length, parts[0] === 'internal' ? 2 : 1)).join('/')}`;
  }
  return url;
}

function label(f: ProfileNode['callFrame']): string {
  const where = f.url ? `${whereOf(f.url, f.functionName)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

/**
 * Summarizes the samples whose timestamps fall in a window: `[fromUs, toUs]` on the profile's
 * clock, or `beforeEndSec: [a, b]` = from a s to b s before the profile ended (the process's
 * exit: a caller knows wall times, not the profiler's clock); the whole profile when neither is
 * given. A sample's weight is the time until the next sample. `focus`: function names whose
 * inclusive time is reported.
 */
export function summarizeProfile(file: string, window: { fromUs?: number; toUs?: number; beforeEndSec?: [number, number] } = {}, top = 20, focus: string[] = []): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const from = window.beforeEndSec ? p.endTime - window.beforeEndSec[0] * 1e6 : (window.fromUs ?? p.startTime);
  const to = window.beforeEndSec ? p.endTime - window.beforeEndSec[1] * 1e6 : (window.toUs ?? p.endTime);

  const selfFn = new Map<string, number>();
  const selfWhere = new Map<string, number>();
  const inclWhere = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const focusSet = new Set(focus);
  let t = p.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < from || t > to) continue;
    const weight = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(p.samples[i] as number);
    if (!node) continue;
    total += weight;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += weight;
      continue;
    }
    const add = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + weight);
    add(selfFn, label(f));
    add(selfWhere, whereOf(f.url, f.functionName));
    const seenWhere = new Set<string>();
    const seenFn = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const cf = (byId.get(id) as ProfileNode).callFrame;
      const w = whereOf(cf.url, cf.functionName);
      if (!seenWhere.has(w)) {
        seenWhere.add(w);
        add(inclWhere, w);
      }
      if (focusSet.has(cf.functionName) && !seenFn.has(cf.functionName)) {
        seenFn.add(cf.functionName);
        add(inclFn, cf.functionName);
      }
    }
  }
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([what, ms]) => ({ what, ms, share: total > 0 ? ms / total : 0 }));
  return {
    windowMs: (to - from) / 1000,
    busyMs: total - idle,
    idleMs: idle,
    selfByFunction: rows(selfFn),
    selfByWhere: rows(selfWhere),
    inclusiveByWhere: rows(inclWhere).filter((r) => r.what !== '(root)'),
    inclusiveByFunction: rows(inclFn),
  };
}
