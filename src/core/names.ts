import { EtcdsnapError } from './errors.js';
import { CODECS, type Codec, codecFromSuffix, codecSuffix } from './codec.js';

/** Base name of snapshots taken by the recurring schedule. */
export const RECURRING_BASE = 'etcd-snapshot';
/** Base name of one-time snapshots without a user-given name. */
export const ON_DEMAND_BASE = 'on-demand';
const KNOWN_BASES = [RECURRING_BASE, ON_DEMAND_BASE];

/** A label (base or node): lowercase letters, digits, `.` and `-`, starting and ending alphanumeric. */
const LABEL = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;
/** Longest snapshot name we accept (file systems allow 255 bytes; leave room for `.part`). */
export const MAX_NAME_LENGTH = 240;

export interface SnapshotName {
  base: string;
  node: string;
  /** Unix seconds of the snapshot's creation. */
  unix: number;
  codec: Codec;
}

function assertLabel(kind: 'base' | 'node', value: string): void {
  if (!LABEL.test(value) || value.includes('..')) {
    throw new EtcdsnapError(
      'INVALID_NAME',
      `Invalid snapshot ${kind} "${value}": use 1-63 lowercase letters, digits, "." or "-", starting and ending with a letter or digit.`,
      { details: { [kind]: value } },
    );
  }
}

export function validateBase(base: string): string {
  assertLabel('base', base);
  return base;
}

export function validateNode(node: string): string {
  assertLabel('node', node);
  return node;
}

/** `<base>-<node>-<unix>[.zst|.gz]` — sorts by base, node, then time. */
export function formatName(n: SnapshotName): string {
  assertLabel('base', n.base);
  assertLabel('node', n.node);
  if (!Number.isSafeInteger(n.unix) || n.unix < 0) {
    throw new EtcdsnapError('INVALID_NAME', `Invalid snapshot time ${n.unix}: expected unix seconds.`);
  }
  return `${n.base}-${n.node}-${n.unix}${codecSuffix(n.codec)}`;
}

/**
 * Checks that a snapshot name is safe to use as a file name or an object key: the name
 * alphabet `[a-z0-9.-]`, no `/`, no `..`, not starting with `.` or `-`. Returns it unchanged.
 */
export function validateSnapshotName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !/^[a-z0-9][a-z0-9.-]*$/.test(name) || name.includes('..') || name.endsWith('.part')) {
    throw new EtcdsnapError(
      'INVALID_NAME',
      `Invalid snapshot name "${name.slice(0, 300)}": names use lowercase letters, digits, "." and "-", start with a letter or digit, contain no "..", and are at most ${MAX_NAME_LENGTH} characters.`,
    );
  }
  return name;
}

export interface ParseHints {
  /** The node that took the snapshot, when known (from metadata or the caller). */
  node?: string;
  /** Extra base names to recognise besides `etcd-snapshot` and `on-demand`. */
  bases?: string[];
}

/**
 * Inverse of {@link formatName}. Base and node may both contain `-`, so the split between
 * them is found from a known node or a known base; without either, the base is the first
 * `-`-separated word. Returns undefined for names that are not of this shape (for example
 * a plain file from `etcdctl snapshot save`).
 */
export function parseName(name: string, hints: ParseHints = {}): SnapshotName | undefined {
  let rest = name;
  let codec: Codec = 'none';
  for (const c of CODECS) {
    const suffix = codecSuffix(c);
    if (suffix && rest.endsWith(suffix)) {
      codec = codecFromSuffix(suffix);
      rest = rest.slice(0, -suffix.length);
      break;
    }
  }
  const m = /^(.+)-([0-9]{1,15})$/.exec(rest);
  if (!m) return undefined;
  const head = m[1] as string;
  const unix = Number(m[2]);
  let base: string | undefined;
  let node: string | undefined;
  if (hints.node !== undefined && head.endsWith(`-${hints.node}`)) {
    node = hints.node;
    base = head.slice(0, -(hints.node.length + 1));
  } else {
    const known = [...(hints.bases ?? []), ...KNOWN_BASES].sort((a, b) => b.length - a.length);
    const kb = known.find((b) => head.startsWith(`${b}-`));
    const cut = kb !== undefined ? kb.length : head.indexOf('-');
    if (cut <= 0) return undefined;
    base = head.slice(0, cut);
    node = head.slice(cut + 1);
  }
  if (!LABEL.test(base) || !LABEL.test(node)) return undefined;
  return { base, node, unix, codec };
}
