import { mkdir } from 'node:fs/promises';
import { isEtcdsnapError, toEtcdsnapError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { RECURRING_BASE } from '../core/names.js';
import { PROTOCOL_VERSION, type AgentReport, type NodePlan, type RegistrationRequest } from '../core/plans.js';
import { VERSION } from '../core/version.js';
import { LocalTarget } from '../storage/local.js';
import { ApiClient, certificateChecksum, fetchPinnedCA } from './api-client.js';
import { Backoff, sleep } from './backoff.js';
import type { AgentConfig } from './config.js';
import { createMember, type LocalMember } from './member.js';
import { Mutex } from './mutex.js';
import { PlanLoop } from './plan-loop.js';
import { taskProgress } from './progress.js';
import { Registrar } from './registration.js';
import { Reporter, type ReportBase } from './reporter.js';
import { Scheduler, type Clock } from './scheduler.js';
import { SnapshotWorker } from './snapshots.js';
import { StateStore } from './state.js';
import { TaskRunner } from './task-runner.js';
import { TASK_HANDLERS, type TaskHandlers } from './tasks/index.js';
import { sweepKeptDataDirs } from './tasks/restore-sweep.js';
import { TransferService } from './transfer.js';

export interface AgentOptions {
  /** Default: pino at `config.logLevel` on stderr. */
  logger?: Logger;
  /** Clock of the recurring schedule (tests). */
  clock?: Clock;
  /** Task executor table; default {@link TASK_HANDLERS}. */
  handlers?: TaskHandlers;
}

/** What an agent is doing, for tests and diagnostics. */
export interface AgentStatus {
  registered: boolean;
  nodeId: string | null;
  planId: string | null;
  nextScheduledAt: Date | null;
  /** Snapshot reports and deletions waiting for the server. */
  queued: number;
  lastDelivered: Date | null;
  memberRunning: boolean | null;
}

/**
 * The node agent: runs (or connects to) the local etcd member, keeps the recurring schedule
 * from the last plan (also while the server is away), runs the plan's tasks, and talks to the
 * server: register once, long-poll plans, report after every change and as a heartbeat.
 *
 *   const agent = new Agent(parseAgentConfig({...}));
 *   await agent.start();   // returns once the member runs and the schedule is armed
 *   …
 *   await agent.stop();    // stops loops, the running snapshot (it runs again later) and a managed member
 *
 * `start()` does not wait for the server; `fatal` rejects if the agent gives up on it
 * (its CA does not match --ca-checksum).
 */
export class Agent {
  readonly config: AgentConfig;
  readonly logger: Logger;
  /** Rejects when the agent cannot go on (never resolves). */
  readonly fatal: Promise<never>;
  private failFatal!: (err: unknown) => void;
  private readonly options: AgentOptions;
  private readonly ac = new AbortController();
  private readonly mutex = new Mutex();
  private stateStore: StateStore | undefined;
  private localMember: LocalMember | undefined;
  private snapshots: SnapshotWorker | undefined;
  private scheduler: Scheduler | undefined;
  private runner: TaskRunner | undefined;
  private reporter: Reporter | undefined;
  private registrar: Registrar | undefined;
  private transferService: TransferService | undefined;
  private api: ApiClient | undefined;
  private serverSide: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(config: AgentConfig, options: AgentOptions = {}) {
    this.config = config;
    this.options = options;
    this.logger = (options.logger ?? createLogger(config.logLevel, 'etcdsnap-agent')).child({ node: config.nodeName });
    this.fatal = new Promise<never>((_resolve, reject) => (this.failFatal = reject));
    this.fatal.catch(() => undefined);
  }

  get member(): LocalMember {
    if (!this.localMember) throw new Error('agent not started');
    return this.localMember;
  }

  get state(): StateStore {
    if (!this.stateStore) throw new Error('agent not started');
    return this.stateStore;
  }

  /** The restore transfer endpoint. */
  get transfer(): TransferService {
    if (!this.transferService) throw new Error('agent not started');
    return this.transferService;
  }

  async start(): Promise<void> {
    const c = this.config;
    const signal = this.ac.signal;
    const state = (this.stateStore = await StateStore.open(c.dataDir, { server: c.server, node: c.nodeName }, (m) => this.logger.warn(m)));
    await mkdir(c.snapshotDir, { recursive: true, mode: 0o700 });
    const local = new LocalTarget({ dir: c.snapshotDir });
    const member = (this.localMember = createMember(c, this.logger));
    if (member.etcd.configured && !member.endpoints.some((e) => e.startsWith('https:'))) {
      // As with etcdctl, http endpoints are plaintext whatever TLS material is given.
      this.logger.warn({ endpoints: member.endpoints }, '--etcd-cacert/--etcd-cert/--etcd-key are set but no etcd endpoint is https://: they are not used');
    }
    const transfer = (this.transferService = new TransferService(c, state, this.logger));
    const hold = state.state.hold;
    if (member.mode === 'managed') {
      // A restore's hold keeps the member stopped until its restore-start (or rollback) starts it.
      if (!hold || hold.memberStarted) await member.start();
      else this.logger.info({ operationId: hold.operationId }, 'a restore holds the etcd member stopped; not starting it');
    }
    // Serving a staged snapshot when the agent stopped: serve it again (the other nodes retry).
    await transfer.resume().catch((err: unknown) => this.logger.error({ err: toEtcdsnapError(err).message }, 'could not serve the staged restore snapshot again'));
    await this.sweep();
    const snapshots = (this.snapshots = new SnapshotWorker({ node: c.nodeName, local, member, logger: this.logger }));
    const reporter = (this.reporter = new Reporter({
      state,
      send: (report, sig) => this.requireApi().report(report, sig),
      base: () => this.reportBase(),
      intervalMs: c.reportIntervalMs,
      backoff: new Backoff(c.retryInitialMs, c.retryMaxMs),
      onUnauthorized: (sig) => this.registrar?.refused(this.api?.token ?? null, sig) ?? Promise.resolve(),
      logger: this.logger,
    }));
    this.runner = new TaskRunner({
      state,
      mutex: this.mutex,
      handlers: this.options.handlers ?? TASK_HANDLERS,
      context: (plan, sig, task) => ({
        plan,
        node: c.nodeName,
        local,
        member,
        snapshots,
        logger: this.logger.child({ task: task.id }),
        signal: sig,
        record: (out) => reporter.enqueue(out),
        config: c,
        state,
        transfer,
        progress: taskProgress(state, task.id, () => reporter.notify(), (err) => this.logger.warn({ err }, 'could not record task progress')),
      }),
      onChange: () => reporter.notify(),
      afterTask: () => this.sweep(),
      signal,
      logger: this.logger,
    });
    this.scheduler = new Scheduler({
      jitterMs: c.jitterMs,
      run: (slot) => this.recurring(slot),
      logger: this.logger,
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    // Resume from the last plan at once: the server may be away.
    this.scheduler.update(state.state.plan?.policy ?? null);
    this.runner.kick();
    this.serverSide = this.talkToServer(signal).catch((err: unknown) => {
      if (signal.aborted) return;
      this.logger.fatal({ err: toEtcdsnapError(err).message }, 'the agent stops talking to the server');
      this.failFatal(err);
    });
    this.logger.info({ server: c.server, mode: c.mode, etcdEndpoints: member.endpoints, etcdTls: member.etcd.configured, planId: state.state.plan?.planId ?? null }, 'agent started');
  }

  /** Stops everything it started. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.ac.abort();
      await this.scheduler?.stop();
      await this.runner?.idle();
      await this.serverSide;
      this.snapshots?.close();
      this.api?.close();
      await this.transferService?.close();
      await this.localMember?.close();
      await this.stateStore?.flush();
      this.logger.info('agent stopped');
    })();
    return this.stopping;
  }

  status(): AgentStatus {
    const s = this.stateStore?.state;
    return {
      registered: Boolean(s?.nodeToken),
      nodeId: s?.nodeId ?? null,
      planId: s?.plan?.planId ?? null,
      nextScheduledAt: this.scheduler?.nextAt ?? null,
      queued: this.reporter?.queued ?? 0,
      lastDelivered: this.reporter?.lastDelivered ?? null,
      memberRunning: this.localMember?.running() ?? null,
    };
  }

  /** Report now (e.g. after a test changed something). */
  notify(): void {
    this.reporter?.notify();
  }

  /** Removes old data dirs kept by finished restores once they expired. */
  private async sweep(): Promise<void> {
    await sweepKeptDataDirs(this.state, this.logger).catch((err: unknown) => this.logger.warn({ err: toEtcdsnapError(err).message }, 'sweep of old data dirs failed'));
  }

  private requireApi(): ApiClient {
    if (!this.api) throw new Error('no API client yet');
    return this.api;
  }

  /** Pins the CA, then registers, long-polls plans and reports until stopped. */
  private async talkToServer(signal: AbortSignal): Promise<void> {
    const c = this.config;
    const state = this.state;
    const ca = await this.pinnedCA(signal);
    if (signal.aborted) return;
    const api = (this.api = new ApiClient({ server: c.server, ca, requestTimeoutMs: c.requestTimeoutMs }));
    const registrar = (this.registrar = new Registrar({ state, api, request: () => this.registrationRequest(), backoff: new Backoff(c.retryInitialMs, c.retryMaxMs), logger: this.logger }));
    const planLoop = new PlanLoop({ api, state, registrar, node: c.nodeName, apply: (plan) => this.applyPlan(plan), waitSeconds: c.pollWaitSeconds, backoff: new Backoff(c.retryInitialMs, c.retryMaxMs), logger: this.logger });
    const reporter = this.reporter as Reporter;
    reporter.onDelivered = () => planLoop.wake();
    await Promise.all([
      planLoop.run(signal),
      (async () => {
        await registrar.ensure(signal);
        await reporter.run(signal);
      })(),
    ]);
  }

  /** With https and --ca-checksum: the CA from the state if it still matches, else fetched and checked. */
  private async pinnedCA(signal: AbortSignal): Promise<string | null> {
    const c = this.config;
    if (!c.server.startsWith('https:') || c.caChecksum === undefined) return null;
    const saved = this.state.state.caPem;
    if (saved !== null && certificateChecksum(saved) === c.caChecksum) return saved;
    const backoff = new Backoff(c.retryInitialMs, c.retryMaxMs);
    while (!signal.aborted) {
      try {
        const pem = await fetchPinnedCA(c.server, c.caChecksum, c.requestTimeoutMs, signal);
        await this.state.update((s) => {
          s.caPem = pem;
        });
        this.logger.info({ caChecksum: c.caChecksum }, 'server CA pinned');
        return pem;
      } catch (err) {
        if (signal.aborted) break;
        if (isEtcdsnapError(err, 'SERVER_TLS_UNTRUSTED')) throw err;
        const delay = backoff.next();
        this.logger.warn({ code: toEtcdsnapError(err).code, err: toEtcdsnapError(err).message, retryInMs: delay }, 'could not fetch the server CA');
        await sleep(delay, signal);
      }
    }
    return null;
  }

  private async registrationRequest(): Promise<RegistrationRequest> {
    const c = this.config;
    return { apiVersion: PROTOCOL_VERSION, registrationToken: c.registrationToken, node: c.nodeName, agentVersion: VERSION, mode: c.mode, member: await this.member.identity() };
  }

  private async applyPlan(plan: NodePlan): Promise<void> {
    await this.state.update((s) => {
      s.plan = plan;
      // Statuses of tasks the plan no longer lists are not reported any more.
      for (const id of Object.keys(s.tasks)) if (!plan.tasks.some((t) => t.id === id)) delete s.tasks[id];
    });
    this.logger.info({ planId: plan.planId, tasks: plan.tasks.map((t) => t.id), schedule: plan.policy.enabled ? plan.policy.schedule : null }, 'plan applied');
    this.scheduler?.update(plan.policy);
    this.runner?.kick();
    this.reporter?.notify();
  }

  private async reportBase(): Promise<ReportBase> {
    const s = this.state.state;
    return {
      apiVersion: PROTOCOL_VERSION,
      node: this.config.nodeName,
      agentVersion: VERSION,
      planId: s.plan?.planId ?? null,
      member: await this.member.status(),
      tasks: this.runner?.statuses() ?? [],
      nextScheduledAt: this.scheduler?.nextAt?.toISOString() ?? null,
    } satisfies Omit<AgentReport, 'snapshots' | 'deleted'>;
  }

  /** One recurring snapshot (under the snapshot lock), then retention; results are queued for the server. */
  private async recurring(slot: Date): Promise<void> {
    const signal = this.ac.signal;
    await this.mutex.run(async () => {
      const plan = this.state.state.plan;
      if (signal.aborted || !plan || !plan.policy.enabled) return;
      const hold = this.state.state.hold;
      if (hold) {
        this.logger.info({ slot: slot.toISOString(), operationId: hold.operationId }, 'recurring snapshot skipped: a restore holds the etcd member');
        return;
      }
      this.logger.debug({ slot: slot.toISOString() }, 'recurring snapshot');
      const out = await (this.snapshots as SnapshotWorker).take(plan, { base: RECURRING_BASE, kind: 'recurring', retention: true, signal });
      if (out.error?.code === 'OPERATION_ABORTED') return;
      await (this.reporter as Reporter).enqueue({ snapshots: out.reports, deleted: out.deleted });
    });
  }
}
