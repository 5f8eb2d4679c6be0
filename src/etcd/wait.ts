/**
 * Waiting for a cluster to become healthy: poll `health()` until every member is healthy
 * and there is a leader, or the time is up. Used after starting or restoring members.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import { EtcdClient } from './client.js';
import type { ClusterHealth } from './types.js';

export interface WaitHealthyOptions {
  /** Pause between polls. Default 100 ms. */
  pollIntervalMs?: number;
  /** Stops waiting with OPERATION_ABORTED. */
  signal?: AbortSignal;
}

/** Each poll may take at most this long, so a poll that hangs cannot eat the whole budget. */
const MAX_POLL_MS = 2000;

/**
 * Resolves with the first healthy ClusterHealth; throws CLUSTER_UNHEALTHY with the last
 * reasons seen when `timeoutMs` passes first.
 */
export async function waitHealthy(endpoints: string[], timeoutMs: number, options: WaitHealthyOptions = {}): Promise<ClusterHealth> {
  const started = Date.now();
  const until = started + timeoutMs;
  const pollIntervalMs = options.pollIntervalMs ?? 100;
  let client: EtcdClient | undefined;
  let last = 'no endpoint answered yet';
  try {
    for (;;) {
      if (options.signal?.aborted) throw new EtcdsnapError('OPERATION_ABORTED', `Stopped waiting for etcd at ${endpoints.join(', ')} to become healthy.`);
      const budget = Math.max(100, Math.min(MAX_POLL_MS, until - Date.now()));
      try {
        client ??= await EtcdClient.connect({ endpoints, dialTimeoutMs: budget, requestTimeoutMs: budget });
        const health = await client.health({ timeoutMs: budget });
        if (health.healthy) return health;
        last = health.reasons.join('; ');
      } catch (err) {
        const e = toEtcdsnapError(err);
        if (e.code === 'INVALID_ARGUMENT') throw e;
        last = e.message;
      }
      if (Date.now() >= until) {
        throw new EtcdsnapError('CLUSTER_UNHEALTHY', `etcd at ${endpoints.join(', ')} did not become healthy within ${timeoutMs} ms: ${last}`, {
          details: { endpoints, timeoutMs, last },
        });
      }
      try {
        await delay(Math.min(pollIntervalMs, Math.max(0, until - Date.now())), undefined, options.signal ? { signal: options.signal } : undefined);
      } catch {
        // Aborted: reported at the top of the loop.
      }
    }
  } finally {
    client?.close();
  }
}
