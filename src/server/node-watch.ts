import type { ServerContext } from './context.js';
import { listNodes } from './db/clusters.js';
import { nodeConnected, nodeView } from './views.js';

/**
 * Disconnection is a matter of time passing, not of a request: this loop notices nodes that
 * became disconnected (or came back without a state change in their report) and publishes a
 * `node` event, so an open UI shows it without reloading. Checks every report interval.
 */
export class NodeWatcher {
  private timer: NodeJS.Timeout | undefined;
  private readonly connected = new Map<string, boolean>();

  constructor(private readonly ctx: () => ServerContext) {}

  async check(): Promise<number> {
    const ctx = this.ctx();
    const nodes = await listNodes(ctx.db);
    const seen = new Set<string>();
    let changed = 0;
    for (const n of nodes) {
      seen.add(n.id);
      const now = nodeConnected(ctx, n);
      const before = this.connected.get(n.id);
      this.connected.set(n.id, now);
      if (before !== undefined && before !== now) {
        changed++;
        ctx.events.publish({ type: 'node', node: nodeView(ctx, n) });
        if (!now) ctx.log.warn({ clusterId: n.cluster_id, node: n.name, lastSeenAt: n.last_seen_at }, 'node disconnected');
        else ctx.log.info({ clusterId: n.cluster_id, node: n.name }, 'node reconnected');
      }
    }
    for (const id of [...this.connected.keys()]) if (!seen.has(id)) this.connected.delete(id);
    return changed;
  }

  start(): void {
    if (this.timer) return;
    const period = Math.max(1000, this.ctx().config.reportIntervalMs);
    this.timer = setInterval(() => void this.check().catch((err: unknown) => this.ctx().log.warn({ err }, 'node check failed')), period);
    this.timer.unref();
    void this.check().catch(() => undefined);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
