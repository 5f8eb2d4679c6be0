import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServerContext } from './context.js';
import { countOperations } from './db/operations.js';
import { lastSuccessfulByCluster } from './db/snapshots.js';
import { nodeConnected } from './views.js';

/**
 * Prometheus metrics of one server (its own registry: two servers in one test process do not
 * share counters). Gauges about clusters are read from the database at scrape time, so they are
 * right after a restart; counters count from the database's totals at start.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly saveDuration: Histogram<'cluster' | 'storage'>;
  readonly operations: Counter<'kind' | 'result'>;
  readonly snapshotsRecorded: Counter<'cluster' | 'state'>;

  constructor(ctx: () => ServerContext) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'etcdsnap_server_' });
    this.saveDuration = new Histogram({
      name: 'etcdsnap_snapshot_save_duration_seconds',
      help: 'Time agents took to save a snapshot (from their reports).',
      labelNames: ['cluster', 'storage'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: [r],
    });
    this.operations = new Counter({ name: 'etcdsnap_operations_total', help: 'Operations ended, by kind and result (Finished or Failed).', labelNames: ['kind', 'result'], registers: [r] });
    this.snapshotsRecorded = new Counter({ name: 'etcdsnap_snapshot_reports_total', help: 'New snapshot records from agent reports, by state.', labelNames: ['cluster', 'state'], registers: [r] });

    new Gauge({
      name: 'etcdsnap_last_successful_snapshot_timestamp_seconds',
      help: 'Creation time of the newest successful snapshot of each cluster.',
      labelNames: ['cluster'],
      registers: [r],
      async collect() {
        const c = ctx();
        this.reset();
        const names = await clusterNames(c);
        for (const [id, s] of await lastSuccessfulByCluster(c.db)) this.set({ cluster: names.get(id) ?? id }, s.created_at / 1000);
      },
    });
    new Gauge({
      name: 'etcdsnap_last_successful_snapshot_size_bytes',
      help: 'Stored size of the newest successful snapshot of each cluster.',
      labelNames: ['cluster'],
      registers: [r],
      async collect() {
        const c = ctx();
        this.reset();
        const names = await clusterNames(c);
        for (const [id, s] of await lastSuccessfulByCluster(c.db)) this.set({ cluster: names.get(id) ?? id }, s.size);
      },
    });
    new Gauge({
      name: 'etcdsnap_connected_agents',
      help: 'Agents seen within three report intervals, per cluster.',
      labelNames: ['cluster'],
      registers: [r],
      async collect() {
        const c = ctx();
        this.reset();
        const names = await clusterNames(c);
        for (const name of names.values()) this.set({ cluster: name }, 0);
        const nodes = await c.db.selectFrom('nodes').select(['cluster_id', 'last_seen_at']).execute();
        for (const n of nodes) if (nodeConnected(c, n)) this.inc({ cluster: names.get(n.cluster_id) ?? n.cluster_id });
      },
    });
    new Gauge({
      name: 'etcdsnap_plan_long_polls',
      help: 'Agent plan requests being held (long-poll).',
      registers: [r],
      collect() {
        this.set(ctx().plans.waiting);
      },
    });
    new Gauge({
      name: 'etcdsnap_event_streams',
      help: 'Open server-sent event streams.',
      registers: [r],
      collect() {
        this.set(ctx().events.size);
      },
    });
  }

  /** Starts the operation counters at the database's totals. */
  async init(c: ServerContext): Promise<void> {
    for (const row of await countOperations(c.db)) {
      if (row.phase === 'Finished' || row.phase === 'Failed') this.operations.inc({ kind: row.kind, result: row.phase }, row.n);
    }
  }
}

async function clusterNames(c: ServerContext): Promise<Map<string, string>> {
  const rows = await c.db.selectFrom('clusters').select(['id', 'name']).execute();
  return new Map(rows.map((r) => [r.id, r.name]));
}
