import type { S3Config } from '../core/s3-config.js';
import { LocalTarget } from './local.js';
import { createS3Target } from './s3.js';
import type { BackupTarget } from './target.js';

export type TargetSpec = { kind: 'local'; dir: string } | { kind: 's3'; config: S3Config | unknown; clusterId?: string };

/** The one switch from settings to a BackupTarget implementation. */
export function createTarget(spec: TargetSpec): BackupTarget {
  switch (spec.kind) {
    case 'local':
      return new LocalTarget({ dir: spec.dir });
    case 's3':
      return createS3Target(spec.config, spec.clusterId ? { clusterId: spec.clusterId } : {});
  }
}

/** Releases what a target holds (S3 sockets); a no-op for others. */
export function closeTarget(target: BackupTarget): void {
  (target as BackupTarget & { close?: () => void }).close?.();
}
