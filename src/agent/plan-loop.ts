import { toEtcdsnapError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Value } from '@sinclair/typebox/value';
import { NodePlanSchema, type NodePlan } from '../core/plans.js';
import { S3ConfigSchema } from '../core/s3-config.js';
import { protocolValidator } from './validate.js';
import type { ApiClient } from './api-client.js';
import { sleep, type Backoff } from './backoff.js';
import type { Registrar } from './registration.js';
import type { StateStore } from './state.js';

const planValidator = protocolValidator(NodePlanSchema);

/**
 * ajv does not apply defaults inside unions (`s3: S3Config | null`): fill the S3 settings'
 * defaults first, so a server that sends only the fields it has set is understood.
 */
export function withS3Defaults(raw: unknown): unknown {
  const policy = (raw as { policy?: { s3?: unknown } } | null)?.policy;
  if (policy && typeof policy.s3 === 'object' && policy.s3 !== null && !Array.isArray(policy.s3)) {
    policy.s3 = Value.Default(S3ConfigSchema, { ...(policy.s3 as Record<string, unknown>) });
  }
  return raw;
}

export interface PlanLoopOptions {
  api: ApiClient;
  state: StateStore;
  registrar: Registrar;
  node: string;
  /** Applies a new plan (persist, reschedule, run tasks, report). */
  apply: (plan: NodePlan) => Promise<void>;
  waitSeconds: number;
  backoff: Backoff;
  logger?: Logger;
}

/**
 * Long-polls the server for this node's plan (`after` = the plan last applied) and applies
 * every new one. A plan that does not validate (or names another node) is not applied: the
 * loop waits for the next plan id instead, keeping the last good plan.
 */
export class PlanLoop {
  private pause: AbortController | undefined;

  constructor(private readonly o: PlanLoopOptions) {}

  /** Cuts a retry delay short (the reporter just reached the server: it is back). */
  wake(): void {
    this.pause?.abort();
  }

  /** A retry delay that {@link wake} ends early. */
  private async backoffSleep(ms: number, signal: AbortSignal): Promise<void> {
    this.pause = new AbortController();
    await sleep(ms, AbortSignal.any([signal, this.pause.signal]));
    this.pause = undefined;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { api, state, backoff, logger } = this.o;
    let refusedId: string | null = null;
    while (!signal.aborted) {
      try {
        await this.o.registrar.ensure(signal);
        if (signal.aborted) break;
        const after = refusedId ?? state.state.plan?.planId ?? null;
        const raw = withS3Defaults(await api.plan(after, this.o.waitSeconds, signal));
        backoff.reset();
        if (raw === null) continue;
        const id = (raw as { planId?: unknown }).planId;
        if (!planValidator.check(raw) || raw.node !== this.o.node) {
          const why = planValidator.check(raw) ? `it is for node ${raw.node}, not ${this.o.node}` : this.describe(raw);
          logger?.error({ planId: id, why }, 'the server sent a plan this agent cannot apply; keeping the last one');
          refusedId = typeof id === 'string' ? id : null;
          if (refusedId === null) await this.backoffSleep(backoff.next(), signal);
          continue;
        }
        refusedId = null;
        if (raw.planId === after) {
          // 200 with the plan we have: nothing changed; do not spin.
          await sleep(Math.min(1000, backoff.next()), signal);
          continue;
        }
        await this.o.apply(raw);
      } catch (err) {
        if (signal.aborted) break;
        const e = toEtcdsnapError(err);
        if (e.code === 'UNAUTHORIZED') {
          await this.o.registrar.refused(api.token, signal);
          await sleep(backoff.next(), signal); // a server refusing fresh tokens must not make a busy loop
          continue;
        }
        const delay = backoff.next();
        logger?.[backoff.attempts <= 1 ? 'warn' : 'debug']({ code: e.code, err: e.message, retryInMs: delay }, 'plan poll failed');
        await this.backoffSleep(delay, signal);
      }
    }
  }

  private describe(raw: unknown): string {
    try {
      planValidator.parse(raw, 'plan');
      return 'invalid';
    } catch (err) {
      return (err as Error).message;
    }
  }
}
