import { toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RegistrationRequest } from '../core/plans.js';
import type { ApiClient } from './api-client.js';
import { sleep, type Backoff } from './backoff.js';
import type { StateStore } from './state.js';

export interface RegistrarOptions {
  state: StateStore;
  api: ApiClient;
  request: () => Promise<RegistrationRequest>;
  backoff: Backoff;
  logger?: Logger;
}

/**
 * Registration with the cluster's registration token, once: the node token is kept in the
 * state and used until the server refuses it (401), then the agent registers again. Callers
 * share one attempt at a time.
 */
export class Registrar {
  private inflight: Promise<void> | null = null;

  constructor(private readonly o: RegistrarOptions) {
    o.api.token = o.state.state.nodeToken;
  }

  get registered(): boolean {
    return this.o.state.state.nodeToken !== null;
  }

  /** Resolves once the agent has a node token (retrying with backoff), or when `signal` aborts. */
  ensure(signal: AbortSignal): Promise<void> {
    const token = this.o.state.state.nodeToken;
    if (token !== null) {
      this.o.api.token = token;
      return Promise.resolve();
    }
    this.inflight ??= this.register(signal).finally(() => (this.inflight = null));
    return this.inflight;
  }

  /** The server refused `token`: forget it (if it is still ours) and register again. */
  async refused(token: string | null, signal: AbortSignal): Promise<void> {
    if (token !== null && this.o.state.state.nodeToken === token) {
      this.o.logger?.warn('the server refused the node token; registering again');
      await this.o.state.update((s) => {
        s.nodeToken = null;
      });
    }
    await this.ensure(signal);
  }

  private async register(signal: AbortSignal): Promise<void> {
    const { backoff, logger } = this.o;
    backoff.reset();
    while (!signal.aborted) {
      try {
        const res = await this.o.api.register(await this.o.request(), signal);
        await this.o.state.update((s) => {
          s.nodeToken = res.nodeToken;
          s.nodeId = res.nodeId;
          s.clusterId = res.clusterId;
        });
        this.o.api.token = res.nodeToken;
        logger?.info({ nodeId: res.nodeId, clusterId: res.clusterId }, 'registered');
        backoff.reset();
        return;
      } catch (err) {
        if (signal.aborted) return;
        const e = toEtcdsnapError(err);
        const delay = backoff.next();
        const hint = e.code === 'UNAUTHORIZED' ? ' (is --registration-token right?)' : '';
        logger?.[backoff.attempts <= 1 || e.code !== 'SERVER_UNREACHABLE' ? 'error' : 'debug']({ code: e.code, err: e.message, retryInMs: delay }, `registration failed${hint}`);
        await sleep(delay, signal);
      }
    }
  }
}
