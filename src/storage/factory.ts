import type { Readable } from 'node:stream';
import { folderPrefix, isParsedS3Config, parseS3Config, type S3Config } from '../core/s3-config.js';
import { validateSnapshotName } from '../core/names.js';
import { LocalTarget } from './local.js';
import { s3Url } from './s3-errors.js';
import type { S3Target } from './s3.js';
import type { BackupTarget, OpenedSnapshot, PutOptions, StoredSnapshot } from './target.js';

export type TargetSpec = { kind: 'local'; dir: string } | { kind: 's3'; config: S3Config | unknown; clusterId?: string };

/**
 * The S3 target, loaded on first use: the AWS SDK costs ~0.1 s and ~12 MB of RSS at start-up,
 * which a local-only command should not pay. The config is validated at once.
 */
class LazyS3Target implements BackupTarget {
  readonly kind = 's3' as const;
  private readonly config: S3Config;
  private target: Promise<S3Target> | undefined;
  private loaded: S3Target | undefined;

  constructor(
    config: unknown,
    private readonly clusterId: string | undefined,
  ) {
    this.config = isParsedS3Config(config) ? config : parseS3Config(config);
  }

  private get(): Promise<S3Target> {
    return (this.target ??= import('./s3.js').then((m) => (this.loaded = m.createS3Target(this.config, this.clusterId ? { clusterId: this.clusterId } : {}))));
  }

  location(name: string): string {
    return s3Url(this.config.bucket, `${folderPrefix(this.config)}${validateSnapshotName(name)}`);
  }

  async put(name: string, body: Readable, options: PutOptions): Promise<StoredSnapshot> {
    return (await this.get()).put(name, body, options);
  }

  async open(name: string, signal?: AbortSignal): Promise<OpenedSnapshot> {
    return (await this.get()).open(name, signal);
  }

  async list(signal?: AbortSignal): Promise<StoredSnapshot[]> {
    return (await this.get()).list(signal);
  }

  async stat(name: string, signal?: AbortSignal): Promise<StoredSnapshot> {
    return (await this.get()).stat(name, signal);
  }

  async delete(name: string, signal?: AbortSignal): Promise<void> {
    return (await this.get()).delete(name, signal);
  }

  close(): void {
    this.loaded?.close();
  }
}

/** The one switch from settings to a BackupTarget implementation. */
export function createTarget(spec: TargetSpec): BackupTarget {
  switch (spec.kind) {
    case 'local':
      return new LocalTarget({ dir: spec.dir });
    case 's3':
      return new LazyS3Target(spec.config, spec.clusterId);
  }
}

/** Releases what a target holds (S3 sockets); a no-op for others. */
export function closeTarget(target: BackupTarget): void {
  (target as BackupTarget & { close?: () => void }).close?.();
}
