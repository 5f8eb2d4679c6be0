import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { EtcdsnapError, isAbortError } from '../core/errors.js';
import { parseMetadata, serializeMetadata, type SnapshotMetadata } from '../core/metadata.js';
import { validateSnapshotName } from '../core/names.js';
import { compareNewestFirst, type BackupTarget, type OpenedSnapshot, type PutOptions, type StoredSnapshot } from './target.js';

export const METADATA_DIR = '.metadata';

export interface LocalTargetOptions {
  /** Directory holding snapshots; created on first write. */
  dir: string;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function ioError(action: string, path: string, err: unknown): EtcdsnapError {
  if (err instanceof EtcdsnapError) return err;
  if (isAbortError(err)) return new EtcdsnapError('OPERATION_ABORTED', `${action} ${path} was cancelled.`, { cause: err });
  const code = (err as NodeJS.ErrnoException)?.code;
  const hint = code === 'ENOSPC' ? ' The disk is full: free space or lower the retention.' : code === 'EACCES' ? ' Permission denied: check the owner of the snapshot directory.' : '';
  return new EtcdsnapError('TARGET_IO', `Could not ${action} ${path}: ${(err as Error)?.message ?? String(err)}.${hint}`, { cause: err });
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Snapshots as files: `<dir>/<name>` with the sidecar `<dir>/.metadata/<name>.json`.
 * A put writes `<name>.part`, fsyncs, then writes the sidecar and renames both into place,
 * so a crash or failure never leaves a visible half snapshot.
 */
export class LocalTarget implements BackupTarget {
  readonly kind = 'local' as const;
  readonly dir: string;

  constructor(options: LocalTargetOptions) {
    this.dir = resolve(options.dir);
  }

  location(name: string): string {
    return pathToFileURL(this.dataPath(validateSnapshotName(name))).href;
  }

  dataPath(name: string): string {
    return join(this.dir, validateSnapshotName(name));
  }

  metadataPath(name: string): string {
    return join(this.dir, METADATA_DIR, `${validateSnapshotName(name)}.json`);
  }

  async put(name: string, body: Readable, options: PutOptions): Promise<StoredSnapshot> {
    const dataPath = this.dataPath(name);
    const metaPath = this.metadataPath(name);
    const tag = randomBytes(4).toString('hex');
    const partPath = `${dataPath}.${tag}.part`;
    const metaPartPath = `${metaPath}.${tag}.part`;
    options.signal?.throwIfAborted();
    try {
      await mkdir(join(this.dir, METADATA_DIR), { recursive: true });
    } catch (err) {
      body.destroy();
      throw ioError('create', this.dir, err);
    }
    if (await this.exists(name)) {
      body.destroy();
      throw new EtcdsnapError('SNAPSHOT_EXISTS', `Snapshot ${name} already exists in ${this.dir}: choose another name or delete it first.`);
    }
    let committed = false;
    try {
      await pipeline(body, createWriteStream(partPath, { flags: 'wx', highWaterMark: 1 << 20 }), { signal: options.signal });
      await fsyncPath(partPath);
      const metadata = await options.metadata();
      await writeFile(metaPartPath, serializeMetadata(metadata), { flag: 'wx' });
      await fsyncPath(metaPartPath);
      // The data file appears first; readers skip data without a sidecar only while the
      // sidecar is being renamed, which is one rename away.
      await rename(partPath, dataPath);
      committed = true;
      await rename(metaPartPath, metaPath);
      await fsyncPath(this.dir);
      const st = await stat(dataPath);
      return { name, location: this.location(name), size: st.size, modifiedAt: st.mtime, metadata };
    } catch (err) {
      await rm(partPath, { force: true });
      await rm(metaPartPath, { force: true });
      if (committed) await rm(dataPath, { force: true });
      throw ioError('write', dataPath, err);
    }
  }

  async open(name: string, signal?: AbortSignal): Promise<OpenedSnapshot> {
    const snap = await this.stat(name);
    const stream = createReadStream(this.dataPath(name), signal ? { signal } : {});
    return { stream, size: snap.size, metadata: snap.metadata };
  }

  async list(): Promise<StoredSnapshot[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw ioError('list', this.dir, err);
    }
    const out: StoredSnapshot[] = [];
    for (const entry of entries) {
      if (entry.startsWith('.') || entry.endsWith('.part')) continue;
      try {
        validateSnapshotName(entry);
      } catch {
        continue; // not ours: a file with a name we would never write
      }
      const snap = await this.tryStat(entry);
      if (snap) out.push(snap);
    }
    return out.sort(compareNewestFirst);
  }

  async stat(name: string): Promise<StoredSnapshot> {
    const snap = await this.tryStat(validateSnapshotName(name));
    if (!snap) throw new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Snapshot ${name} not found in ${this.dir}: list snapshots with "etcdsnap snapshot ls --dir ${this.dir}".`);
    return snap;
  }

  async delete(name: string): Promise<void> {
    const dataPath = this.dataPath(name);
    const metaPath = this.metadataPath(name);
    let found = false;
    for (const p of [dataPath, metaPath]) {
      try {
        await unlink(p);
        found = true;
      } catch (err) {
        if (!isNotFound(err)) throw ioError('delete', p, err);
      }
    }
    if (!found) throw new EtcdsnapError('SNAPSHOT_NOT_FOUND', `Snapshot ${name} not found in ${this.dir}.`);
  }

  private async exists(name: string): Promise<boolean> {
    for (const p of [this.dataPath(name), this.metadataPath(name)]) {
      try {
        await stat(p);
        return true;
      } catch (err) {
        if (!isNotFound(err)) throw ioError('stat', p, err);
      }
    }
    return false;
  }

  private async tryStat(name: string): Promise<StoredSnapshot | undefined> {
    const dataPath = this.dataPath(name);
    let st;
    try {
      st = await stat(dataPath);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw ioError('stat', dataPath, err);
    }
    if (!st.isFile()) return undefined;
    return { name, location: this.location(name), size: st.size, modifiedAt: st.mtime, metadata: await this.readMetadata(name) };
  }

  private async readMetadata(name: string): Promise<SnapshotMetadata | undefined> {
    const metaPath = this.metadataPath(name);
    let text: string;
    try {
      text = await readFile(metaPath, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw ioError('read', metaPath, err);
    }
    return parseMetadata(text, `metadata ${metaPath}`);
  }
}
