import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NodePlanSchema, type NodePlan, type SnapshotReport, type TaskStatus } from '../core/plans.js';
import { protocolValidator } from './validate.js';

/**
 * What the agent keeps across restarts, in one JSON file in its data dir (mode 0600: it holds
 * the node token and the plan, whose S3 settings carry secrets). Every change is written
 * atomically (tmp file, fsync, rename, fsync of the directory), so a crash leaves either the
 * old or the new state, never a torn one.
 */
export const STATE_FILE = 'agent-state.json';
export const STATE_VERSION = 1;
/** Finished task ids remembered (newest kept), so a task the server lists again is never re-run. */
export const FINISHED_KEPT = 1000;

export interface QueuedSnapshot {
  seq: number;
  report: SnapshotReport;
}
export interface QueuedDeletion {
  seq: number;
  location: string;
}

/**
 * A restore's hold on this node (from restore-stop to restore-finish or -rollback): the agent
 * does not start a managed member on its own start (unless `memberStarted`), and recurring
 * snapshots are skipped.
 */
export interface RestoreHold {
  operationId: string;
  /** Whether the member ran when the restore stopped it (rollback starts it again only then). */
  memberWasRunning: boolean;
  /** The stop hook was started (rollback then runs the start hook). */
  stopHookRan: boolean;
  /** Set by restore-apply before it moves anything: was there a data dir to move aside? */
  dataDirExisted: boolean | null;
  /** restore-start or a rollback began starting the member: a restarted agent starts it too. */
  memberStarted: boolean;
  since: string;
}

/** A raw etcd snapshot staged for a restore under `<dataDir>/restores/<operationId>/`. */
export interface StagedSnapshot {
  operationId: string;
  file: string;
  rawSha256: string;
  rawSize: number;
}

/** A staged file the transfer endpoint serves (the token only as its sha256). */
export interface ServedSnapshot {
  operationId: string;
  file: string;
  size: number;
  tokenSha256: string;
  /** The snapshot's stored (compressed) bytes, served too when present. */
  storedFile?: string;
}

/** An old data dir a finished restore kept (`keepOldDataDays`), removed after `expiresAt`. */
export interface KeptDataDir {
  path: string;
  expiresAt: string;
}

export interface AgentState {
  version: typeof STATE_VERSION;
  /** Server and node the token belongs to; another server or node name drops the token. */
  server: string | null;
  node: string | null;
  nodeId: string | null;
  clusterId: string | null;
  nodeToken: string | null;
  /** PEM of the pinned server CA (https with --ca-checksum). */
  caPem: string | null;
  /** The last plan applied; the schedule runs from it while the server is away. */
  plan: NodePlan | null;
  /** Status of every task started and not yet forgotten (forgotten once finished and off the plan). */
  tasks: Record<string, TaskStatus>;
  /** Ids of finished tasks, oldest first, at most FINISHED_KEPT. */
  finished: string[];
  /** Reports not yet acknowledged by the server. */
  outbox: { seq: number; snapshots: QueuedSnapshot[]; deleted: QueuedDeletion[] };
  /** The current restore's hold (added after v1: absent in older files). */
  hold: RestoreHold | null;
  /** Staged snapshots by operation id. */
  staged: Record<string, StagedSnapshot>;
  /** What the transfer endpoint serves, by operation id. */
  serving: Record<string, ServedSnapshot>;
  /** Port the transfer endpoint was bound to (reused after a restart when --transfer-listen has port 0). */
  transferPort: number | null;
  keptDataDirs: KeptDataDir[];
}

export function emptyState(): AgentState {
  return {
    version: STATE_VERSION,
    server: null,
    node: null,
    nodeId: null,
    clusterId: null,
    nodeToken: null,
    caPem: null,
    plan: null,
    tasks: {},
    finished: [],
    outbox: { seq: 0, snapshots: [], deleted: [] },
    hold: null,
    staged: {},
    serving: {},
    transferPort: null,
    keptDataDirs: [],
  };
}

/**
 * Writes `data` to `file` so that readers see the old or the new content, never a mix:
 * `<file>.tmp-…` with `mode`, fsync, rename over `file`, fsync of the directory.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** fsync of a directory, so a rename in it survives a crash. */
export async function fsyncDir(dirPath: string): Promise<void> {
  const dir = await open(dirPath, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

const planValidator = protocolValidator(NodePlanSchema);

type Shape = Record<string, 'string' | 'number' | 'boolean' | 'boolean|null'>;
/** `v` is an object whose fields have these types (restore records: anything else is dropped). */
function hasShape<T>(v: unknown, shape: Shape): v is T {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return Object.entries(shape).every(([k, t]) => (t === 'boolean|null' ? o[k] === null || typeof o[k] === 'boolean' : typeof o[k] === t));
}
const HOLD: Shape = { operationId: 'string', memberWasRunning: 'boolean', stopHookRan: 'boolean', dataDirExisted: 'boolean|null', memberStarted: 'boolean', since: 'string' };
const STAGED: Shape = { operationId: 'string', file: 'string', rawSha256: 'string', rawSize: 'number' };
const SERVED: Shape = { operationId: 'string', file: 'string', size: 'number', tokenSha256: 'string' };
const KEPT: Shape = { path: 'string', expiresAt: 'string' };

function records<T>(v: unknown, shape: Shape): Record<string, T> {
  const out: Record<string, T> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) if (hasShape<T>(x, shape)) out[k] = x;
  return out;
}

/** Reads a state file leniently: unknown or broken parts are dropped, the rest kept. */
function revive(raw: unknown): AgentState {
  const s = emptyState();
  if (typeof raw !== 'object' || raw === null || (raw as { version?: unknown }).version !== STATE_VERSION) return s;
  const r = raw as Partial<AgentState>;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  s.server = str(r.server);
  s.node = str(r.node);
  s.nodeId = str(r.nodeId);
  s.clusterId = str(r.clusterId);
  s.nodeToken = str(r.nodeToken);
  s.caPem = str(r.caPem);
  s.plan = r.plan && planValidator.check(r.plan) ? r.plan : null;
  if (r.tasks && typeof r.tasks === 'object') s.tasks = r.tasks;
  if (Array.isArray(r.finished)) s.finished = r.finished.filter((x): x is string => typeof x === 'string');
  if (r.outbox && typeof r.outbox === 'object') {
    s.outbox.snapshots = Array.isArray(r.outbox.snapshots) ? r.outbox.snapshots : [];
    s.outbox.deleted = Array.isArray(r.outbox.deleted) ? r.outbox.deleted : [];
    const maxSeq = Math.max(0, ...s.outbox.snapshots.map((q) => q.seq), ...s.outbox.deleted.map((q) => q.seq));
    s.outbox.seq = Math.max(typeof r.outbox.seq === 'number' ? r.outbox.seq : 0, maxSeq);
  }
  s.hold = hasShape<RestoreHold>(r.hold, HOLD) ? r.hold : null;
  s.staged = records<StagedSnapshot>(r.staged, STAGED);
  s.serving = records<ServedSnapshot>(r.serving, SERVED);
  s.transferPort = typeof r.transferPort === 'number' && Number.isInteger(r.transferPort) ? r.transferPort : null;
  s.keptDataDirs = Array.isArray(r.keptDataDirs) ? r.keptDataDirs.filter((k): k is KeptDataDir => hasShape<KeptDataDir>(k, KEPT)) : [];
  return s;
}

/**
 * The agent's persisted state. `update` changes the in-memory state at once and returns a
 * promise of a write that includes the change; writes are serialised and coalesced (changes
 * made while a write runs go out together in the next one).
 */
export class StateStore {
  readonly file: string;
  private data: AgentState;
  private writing: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  private constructor(file: string, data: AgentState) {
    this.file = file;
    this.data = data;
  }

  /**
   * Opens (or creates) the state in `dir`. A state for another server or node keeps its
   * plan-independent parts but drops the token. A file that cannot be parsed is moved aside
   * (`<file>.corrupt-<ms>`) and the agent starts fresh; `onWarning` says so.
   */
  static async open(dir: string, owner: { server: string; node: string }, onWarning: (message: string) => void = () => undefined): Promise<StateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, STATE_FILE);
    // Leftovers of writes a crash interrupted: never the current state, safe to remove.
    for (const entry of await readdir(dir)) {
      if (entry.startsWith(`${STATE_FILE}.tmp-`)) await unlink(path.join(dir, entry)).catch(() => undefined);
    }
    let data = emptyState();
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      try {
        data = revive(JSON.parse(text));
      } catch {
        const aside = `${file}.corrupt-${Date.now()}`;
        await rename(file, aside);
        onWarning(`The agent state ${file} could not be read; moved it to ${aside} and started fresh (the agent registers again).`);
      }
      await chmod(file, 0o600).catch(() => undefined);
    }
    if (data.server !== owner.server || data.node !== owner.node) {
      if (data.nodeToken !== null) onWarning(`The agent state belongs to server ${data.server} / node ${data.node}; registering as ${owner.node} with ${owner.server}.`);
      Object.assign(data, { server: owner.server, node: owner.node, nodeId: null, clusterId: null, nodeToken: null, caPem: null, plan: null });
    }
    const store = new StateStore(file, data);
    await store.flush();
    return store;
  }

  /** The current state; change it only through {@link update}. */
  get state(): Readonly<AgentState> {
    return this.data;
  }

  update(change: (s: AgentState) => void): Promise<void> {
    change(this.data);
    return this.flush();
  }

  /** Writes the current state (coalescing with a write that has not started yet). */
  flush(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.writing
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return writeFileAtomic(this.file, `${JSON.stringify(this.data)}\n`);
      });
    this.queued = next;
    this.writing = next;
    return next;
  }
}

/** Remembers a finished task id (bounded, newest kept). */
export function rememberFinished(s: AgentState, id: string): void {
  if (!s.finished.includes(id)) s.finished.push(id);
  if (s.finished.length > FINISHED_KEPT) s.finished.splice(0, s.finished.length - FINISHED_KEPT);
}
