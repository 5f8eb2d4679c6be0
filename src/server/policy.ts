import type { Static } from '@sinclair/typebox';
import type { SnapshotPolicyPatchSchema, SnapshotPolicyViewSchema } from '../core/api.js';
import { EtcdsnapError } from '../core/errors.js';
import type { SnapshotPolicy } from '../core/plans.js';
import { parseS3Config, type S3Config } from '../core/s3-config.js';
import { DEFAULT_SCHEDULE, parseSchedule } from '../core/schedule.js';

/** The secret fields of the S3 settings: write-only, stored encrypted, never returned. */
export const S3_SECRET_FIELDS = ['secretAccessKey', 'sessionToken'] as const;
export type S3Secrets = { secretAccessKey?: string; sessionToken?: string };
/** S3 settings as stored in the policy column: validated, defaults filled, no secrets. */
export type StoredS3 = Omit<S3Config, 'secretAccessKey' | 'sessionToken'>;
export type StoredPolicy = Omit<SnapshotPolicy, 's3'> & { s3: StoredS3 | null };
export type PolicyPatch = Static<typeof SnapshotPolicyPatchSchema>;
export type PolicyView = Static<typeof SnapshotPolicyViewSchema>;

export function defaultPolicy(): StoredPolicy {
  return { enabled: true, schedule: DEFAULT_SCHEDULE, retention: 5, compression: 'zstd', s3: null };
}

/** Plain own properties of a parsed config (its redacting toJSON is left behind), split into settings and secrets. */
export function splitS3(cfg: S3Config): { s3: StoredS3; secrets: S3Secrets } {
  const { secretAccessKey, sessionToken, ...rest } = { ...cfg };
  const secrets: S3Secrets = {};
  if (secretAccessKey !== undefined) secrets.secretAccessKey = secretAccessKey;
  if (sessionToken !== undefined) secrets.sessionToken = sessionToken;
  return { s3: rest, secrets };
}

/** The stored settings with their secrets: what agents and the S3 target need. */
export function joinS3(s3: StoredS3, secrets: S3Secrets | null): S3Config {
  return parseS3Config({ ...s3, ...(secrets ?? {}) });
}

/**
 * New S3 settings from an API body: a secret left out keeps the stored one (while an access
 * key id is given — the secret belongs to it; the session token only while the key id is the
 * same), `null` clears it. Validated by parseS3Config (INVALID_CONFIG naming the field).
 */
export function mergeS3Input(input: unknown, current: { s3: StoredS3 | null; secrets: S3Secrets | null }): S3Config {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new EtcdsnapError('INVALID_CONFIG', 'Invalid S3 config: /s3 must be an object with at least "bucket" (or null to remove S3).', { details: { field: 's3' } });
  }
  const merged: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  const keyId = merged.accessKeyId;
  for (const field of S3_SECRET_FIELDS) {
    if (merged[field] === null) {
      delete merged[field];
      continue;
    }
    if (merged[field] !== undefined) continue;
    const stored = current.secrets?.[field];
    const keep = field === 'secretAccessKey' ? keyId !== undefined : keyId !== undefined && keyId === current.s3?.accessKeyId;
    if (stored !== undefined && keep) merged[field] = stored;
  }
  return parseS3Config(merged);
}

/** Validates a schedule at the API edge (INVALID_CONFIG with the reason and an example). */
export function checkSchedule(schedule: string): string {
  parseSchedule(schedule);
  return schedule.trim();
}

/** Applies a policy patch to the stored policy; returns the new policy and secrets. */
export function applyPolicyPatch(current: { policy: StoredPolicy; secrets: S3Secrets | null }, patch: PolicyPatch | undefined): { policy: StoredPolicy; secrets: S3Secrets | null } {
  const policy: StoredPolicy = { ...current.policy };
  let secrets = current.secrets;
  if (!patch) return { policy, secrets };
  if (patch.enabled !== undefined) policy.enabled = patch.enabled;
  if (patch.retention !== undefined) policy.retention = patch.retention;
  if (patch.compression !== undefined) policy.compression = patch.compression;
  if (patch.schedule !== undefined) policy.schedule = checkSchedule(patch.schedule);
  if (patch.s3 === null) {
    policy.s3 = null;
    secrets = null;
  } else if (patch.s3 !== undefined) {
    const split = splitS3(mergeS3Input(patch.s3, { s3: current.policy.s3, secrets }));
    policy.s3 = split.s3;
    secrets = Object.keys(split.secrets).length > 0 ? split.secrets : null;
  }
  return { policy, secrets };
}

/** The policy as agents get it: secrets included. */
export function fullPolicy(policy: StoredPolicy, secrets: S3Secrets | null): SnapshotPolicy {
  return { ...policy, s3: policy.s3 ? { ...joinS3(policy.s3, secrets) } : null };
}

/** The policy as the API shows it: no secrets, flags saying which are set. */
export function policyView(policy: StoredPolicy, secrets: S3Secrets | null): PolicyView {
  return {
    ...policy,
    s3: policy.s3 ? { ...policy.s3, hasSecretAccessKey: secrets?.secretAccessKey !== undefined, hasSessionToken: secrets?.sessionToken !== undefined } : null,
  };
}
