import type { ServerEvent } from '../core/api.js';

export type EventListener = (event: ServerEvent) => void;

/**
 * In-process fan-out of ServerEvents to the SSE streams. Publishing never blocks and never
 * throws: a listener that throws is dropped (a broken stream must not stop the others).
 */
export class EventBus {
  private readonly listeners = new Set<EventListener>();

  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  publish(event: ServerEvent): void {
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch {
        this.listeners.delete(fn);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** The clusterId an event concerns, for `?clusterId=` filtering. */
export function eventClusterId(event: ServerEvent): string {
  switch (event.type) {
    case 'operation':
      return event.operation.clusterId;
    case 'snapshot':
      return event.snapshot.clusterId;
    case 'cluster':
      return event.cluster.id;
    case 'node':
      return event.node.clusterId;
  }
}

/** One SSE frame: `event:` the type, `data:` the JSON (one line: JSON.stringify never emits newlines). */
export function sseFrame(event: ServerEvent, id: number): string {
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
