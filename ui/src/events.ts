/**
 * The live event stream. EventSource cannot send headers, so the token goes as `?token=`
 * (the one route that accepts it, see docs/api.md). There is no replay: `onOpen` runs on every
 * (re)connect, and callers read their resources again there.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { API, session, type Cluster, type ClusterNode, type Operation, type SnapshotRecord } from './api.ts';

export type ServerEvent =
  | { type: 'operation'; operation: Operation }
  | { type: 'snapshot'; snapshot: SnapshotRecord; change: 'upsert' | 'delete' }
  | { type: 'cluster'; cluster: Cluster; change: 'upsert' | 'delete' }
  | { type: 'node'; node: ClusterNode };

const TYPES = ['operation', 'snapshot', 'cluster', 'node'] as const;

export function useEvents(clusterId: string | undefined, onEvent: (e: ServerEvent) => void, onOpen: () => void): void {
  const handlers = useRef({ onEvent, onOpen });
  handlers.current = { onEvent, onOpen };
  useEffect(() => {
    const token = session.token();
    if (!token) return;
    const q = new URLSearchParams();
    if (clusterId) q.set('clusterId', clusterId);
    q.set('token', token);
    const es = new EventSource(`${API}/events?${q.toString()}`);
    const listener = (m: MessageEvent<string>): void => {
      try {
        handlers.current.onEvent(JSON.parse(m.data) as ServerEvent);
      } catch {
        // A malformed frame is skipped; the next read of the resources repairs the view.
      }
    };
    for (const t of TYPES) es.addEventListener(t, listener);
    es.addEventListener('open', () => handlers.current.onOpen());
    return () => es.close();
  }, [clusterId]);
}

/** Re-renders every `ms` (ages on screen keep moving). */
export function useTick(ms = 15_000): void {
  const [, setN] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setN((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}
