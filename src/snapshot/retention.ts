import { toEtcdsnapError, EtcdsnapError } from '../core/errors.js';
import { validateBase } from '../core/names.js';
import { compareNewestFirst, type BackupTarget, type StoredSnapshot } from '../storage/target.js';

/** Default number of snapshots kept per node and base name. */
export const DEFAULT_RETENTION = 5;

export interface RetentionRule {
  /** Only snapshots with this base name are considered (never another base's). */
  base: string;
  /** Keep this many, newest first. */
  keep: number;
  /** `node` (default): count per node; `cluster`: count across all nodes. */
  scope?: 'node' | 'cluster';
  /** With scope `node`: only prune this node's snapshots (an agent prunes its own). */
  node?: string;
}

/**
 * Base and node come from the metadata only: names alone are ambiguous when base and node
 * both contain "-", so a file without a sidecar (e.g. from etcdctl) is never pruned.
 */
function baseAndNode(s: StoredSnapshot): { base: string; node: string } | undefined {
  return s.metadata ? { base: s.metadata.base, node: s.metadata.node } : undefined;
}

/** Pure: which snapshots a rule would delete. Snapshots without metadata are never selected. */
export function selectForPruning(snapshots: StoredSnapshot[], rule: RetentionRule): StoredSnapshot[] {
  validateBase(rule.base);
  if (!Number.isInteger(rule.keep) || rule.keep < 1) {
    throw new EtcdsnapError('INVALID_ARGUMENT', `Retention must be a whole number of at least 1, got ${rule.keep}.`);
  }
  const groups = new Map<string, StoredSnapshot[]>();
  for (const s of snapshots) {
    const bn = baseAndNode(s);
    if (!bn || bn.base !== rule.base) continue;
    if (rule.node !== undefined && bn.node !== rule.node) continue;
    const key = rule.scope === 'cluster' ? '' : bn.node;
    const group = groups.get(key) ?? [];
    group.push(s);
    groups.set(key, group);
  }
  const doomed: StoredSnapshot[] = [];
  for (const group of groups.values()) doomed.push(...group.sort(compareNewestFirst).slice(rule.keep));
  return doomed;
}

export interface PruneResult {
  deleted: string[];
  kept: number;
  failures: Array<{ name: string; error: string; code: string }>;
}

/** Applies a rule to a target; deletes what it selected and reports partial results. */
export async function prune(target: BackupTarget, rule: RetentionRule, signal?: AbortSignal): Promise<PruneResult> {
  const all = await target.list(signal);
  const doomed = selectForPruning(all, rule);
  const result: PruneResult = { deleted: [], kept: 0, failures: [] };
  for (const s of doomed) {
    try {
      await target.delete(s.name, signal);
      result.deleted.push(s.name);
    } catch (err) {
      const e = toEtcdsnapError(err);
      result.failures.push({ name: s.name, error: e.message, code: e.code });
    }
  }
  result.kept = all.filter((s) => (baseAndNode(s)?.base ?? '') === rule.base).length - result.deleted.length;
  return result;
}
