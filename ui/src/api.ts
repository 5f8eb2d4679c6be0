/**
 * The only way the UI reaches the server: JSON over `/api/v1` with the admin token as a bearer
 * header, and the event stream (events.ts). The token lives in sessionStorage only: it is gone
 * when the browser tab closes.
 */
import type { Cluster, ClusterNode, ErrorBody, Operation, SnapshotRecord } from '../../src/core/api.ts';
import type { SnapshotMetadata } from '../../src/core/metadata.ts';

export type { Cluster, ClusterNode, Operation, SnapshotRecord, SnapshotMetadata };
export type RestoreMode = 'etcd' | 'kubernetes-version' | 'all';

export const API = '/api/v1';
const TOKEN_KEY = 'etcdsnap.adminToken';

export const session = {
  token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An error answer of the API (`{code, message, details}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
  /** The field a 400 names (`body.policy.schedule`), if any. */
  get field(): string | undefined {
    return typeof this.details.field === 'string' ? this.details.field : undefined;
  }
}

/** Fired when the server refuses the stored token: the app goes back to sign-in. */
export const SIGNED_OUT = 'etcdsnap:signed-out';

export async function api<T>(method: string, path: string, body?: unknown, token = session.token()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${API}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, 'UNREACHABLE', `The server did not answer (${(err as Error).message}). Check that it runs and the network.`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const e = (data ?? {}) as Partial<ErrorBody>;
    const err = new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (text.slice(0, 200) || res.statusText), e.details ?? {});
    if (res.status === 401 && token === session.token()) window.dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: err.message }));
    throw err;
  }
  return data as T;
}

/** `CODE: message`, as the CLI prints errors. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

const enc = encodeURIComponent;
export const clusterPath = (id: string): string => `/clusters/${enc(id)}`;

export const endpoints = {
  clusters: () => api<Cluster[]>('GET', '/clusters'),
  cluster: (id: string) => api<Cluster>('GET', clusterPath(id)),
  patchCluster: (id: string, patch: unknown) => api<Cluster>('PATCH', clusterPath(id), patch),
  nodes: (id: string) => api<ClusterNode[]>('GET', `${clusterPath(id)}/nodes`),
  snapshots: (id: string) => api<SnapshotRecord[]>('GET', `${clusterPath(id)}/snapshots`),
  snapshotNow: (id: string) => api<Operation>('POST', `${clusterPath(id)}/snapshots`, {}),
  deleteSnapshot: (id: string, recordId: string) => api<{ deleted: boolean; node?: string }>('DELETE', `${clusterPath(id)}/snapshots/${enc(recordId)}`),
  restore: (id: string, body: { snapshot: string; mode: RestoreMode; storage: 'local' | 's3' }) => api<Operation>('POST', `${clusterPath(id)}/restores`, body),
  operations: (clusterId?: string) => api<Operation[]>('GET', `/operations?limit=100${clusterId ? `&clusterId=${enc(clusterId)}` : ''}`),
  operation: (id: string) => api<Operation>('GET', `/operations/${enc(id)}`),
  s3Test: (id: string, s3: unknown) => api<S3TestResult>('POST', `${clusterPath(id)}/s3/test`, { s3 }),
};

export interface S3TestResult {
  ok: boolean;
  failedStep: string | null;
  error: { code: string; message: string } | null;
  steps: Array<{ step: string; ok: boolean; durationMs: number; error?: { code: string; message: string } }>;
}
