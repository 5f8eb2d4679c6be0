/**
 * Fills etcd with Kubernetes-like data: keys `/registry/<resource>/<namespace>/<name>` (and
 * a few cluster-scoped `/registry/<resource>/<name>`) with JSON values of realistic sizes,
 * deterministic from the seed, plus a handful of keys outside /registry, counted `(other)`.
 *
 * Fast enough for benchmarks: puts go in txns of up to 128 ops and ~1 MiB (etcd's limits are
 * 128 ops and 1.5 MiB per request) with several txns in flight.
 */
import { Etcd3, type IRequestOp } from 'etcd3';
import { EtcdClient } from '../../src/etcd/client.js';
import { resourceOfKey } from './dump.js';

export interface FillOptions {
  /** Stop once about this many value bytes were written. */
  totalBytes: number;
  /** Default 1. The same seed writes the same keys and values. */
  seed?: number;
  /** Txns in flight. Default 8. */
  concurrency?: number;
}

export interface FillResult {
  keys: number;
  /** Value bytes written. */
  bytes: number;
  byResource: Record<string, number>;
  /** Revision after the last write. */
  revision: number;
  durationMs: number;
}

interface Kind {
  resource: string;
  kind: string;
  weight: number;
  min: number;
  max: number;
  /** Cluster-scoped: no namespace segment. */
  cluster?: boolean;
  namespace?: string;
  /** Occasionally a much bigger value (configmaps holding files). */
  big?: { chance: number; min: number; max: number };
  /** Base64 payload, as in secrets (compresses badly). */
  binary?: boolean;
}

const KINDS: Kind[] = [
  { resource: 'pods', kind: 'Pod', weight: 26, min: 3 * 1024, max: 8 * 1024 },
  { resource: 'events', kind: 'Event', weight: 24, min: 800, max: 1300 },
  { resource: 'configmaps', kind: 'ConfigMap', weight: 9, min: 500, max: 6 * 1024, big: { chance: 0.05, min: 20 * 1024, max: 50 * 1024 } },
  { resource: 'secrets', kind: 'Secret', weight: 8, min: 800, max: 4 * 1024, binary: true },
  { resource: 'replicasets', kind: 'ReplicaSet', weight: 6, min: 3 * 1024, max: 6 * 1024 },
  { resource: 'deployments', kind: 'Deployment', weight: 4, min: 4 * 1024, max: 8 * 1024 },
  { resource: 'services', kind: 'Service', weight: 4, min: 800, max: 2 * 1024 },
  { resource: 'endpointslices', kind: 'EndpointSlice', weight: 4, min: 1024, max: 3 * 1024 },
  { resource: 'leases', kind: 'Lease', weight: 4, min: 250, max: 350, namespace: 'kube-node-lease' },
  { resource: 'serviceaccounts', kind: 'ServiceAccount', weight: 3, min: 300, max: 700 },
  { resource: 'namespaces', kind: 'Namespace', weight: 0.6, min: 300, max: 500, cluster: true },
  { resource: 'clusterroles', kind: 'ClusterRole', weight: 1, min: 1024, max: 6 * 1024, cluster: true },
  { resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', weight: 0.8, min: 400, max: 900, cluster: true },
  { resource: 'minions', kind: 'Node', weight: 0.3, min: 8 * 1024, max: 16 * 1024, cluster: true },
  { resource: 'apiextensions.k8s.io/customresourcedefinitions', kind: 'CustomResourceDefinition', weight: 0.2, min: 20 * 1024, max: 50 * 1024, cluster: true },
];
const TOTAL_WEIGHT = KINDS.reduce((s, k) => s + k.weight, 0);

const OTHER_KEYS = ['/other/x', '/other/y', '/other/config/feature-gates', 'compact_rev_key', '/calico/ipam/v2/host/node-1'];

const WORDS =
  'kube system default app web api worker cache redis postgres nginx envoy istio sidecar proxy controller manager scheduler node pool zone region east west metrics logging monitoring prometheus grafana alert rule config volume claim mount path image registry pull policy always ifnotpresent container port protocol tcp udp http https grpc health probe liveness readiness startup timeout period threshold resources limits requests cpu memory storage ephemeral label selector match expression operator in notin exists annotation owner reference replica set deployment strategy rolling update surge unavailable revision history'.split(
    ' ',
  );
const NAMESPACES = ['default', 'kube-system', 'kube-public', 'monitoring', 'logging', 'ingress-nginx', 'cert-manager', 'argocd', 'team-a', 'team-b', 'payments', 'checkout', 'search', 'data', 'ml', 'staging'];
const MAX_OPS = 128;
const MAX_TXN_BYTES = 1024 * 1024;

/** mulberry32: small, fast, deterministic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text pools values are sliced from: words (compresses like JSON) and base64 (secrets). */
function pools(rand: () => number): { words: string; base64: string } {
  const parts: string[] = [];
  let n = 0;
  while (n < 1 << 20) {
    const w = WORDS[Math.floor(rand() * WORDS.length)]!;
    const sep = rand() < 0.1 ? '","' : rand() < 0.15 ? '-' : ' ';
    parts.push(w, sep);
    n += w.length + sep.length;
  }
  const bytes = Buffer.alloc(192 * 1024);
  for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(Math.floor(rand() * 4294967296), i);
  return { words: parts.join(''), base64: bytes.toString('base64') };
}

export interface KubernetesLikeItem {
  key: string;
  value: Buffer;
  /** `resourceOfKey(key)` */
  resource: string;
}

/** The items fillKubernetesLike writes, in order: the same for the same seed and size. */
export function* kubernetesLikeItems(seed: number, totalBytes: number): Generator<KubernetesLikeItem> {
  const rand = rng(seed);
  const { words, base64 } = pools(rand);
  const slice = (pool: string, len: number): string => {
    const start = Math.floor(rand() * (pool.length - len - 1));
    return pool.slice(Math.max(0, start), Math.max(0, start) + len);
  };
  const hex = (len: number): string => Math.floor(rand() * 16 ** len).toString(16).padStart(len, '0');
  for (const key of OTHER_KEYS) yield { key, value: Buffer.from(`{"seed":${seed},"key":"${key}"}`), resource: '(other)' };
  let written = 0;
  for (let i = 0; written < totalBytes; i++) {
    let pick = rand() * TOTAL_WEIGHT;
    let kind = KINDS[0]!;
    for (const k of KINDS) {
      pick -= k.weight;
      if (pick <= 0) {
        kind = k;
        break;
      }
    }
    const big = kind.big && rand() < kind.big.chance ? kind.big : undefined;
    const size = Math.floor((big?.min ?? kind.min) + rand() * ((big?.max ?? kind.max) - (big?.min ?? kind.min)));
    const name = `${WORDS[Math.floor(rand() * WORDS.length)]}-${i.toString(36)}-${hex(5)}`;
    const ns = kind.namespace ?? NAMESPACES[Math.floor(rand() * NAMESPACES.length)]!;
    const key = kind.cluster ? `/registry/${kind.resource}/${name}` : `/registry/${kind.resource}/${ns}/${name}`;
    const head =
      `{"apiVersion":"v1","kind":"${kind.kind}","metadata":{"name":"${name}",` +
      (kind.cluster ? '' : `"namespace":"${ns}",`) +
      `"uid":"${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}","resourceVersion":"${i + 1}","labels":{"app":"${name.split('-')[0]}"}},"data":{"payload":"`;
    const tail = '"}}';
    const fill = Math.max(0, size - head.length - tail.length);
    const value = Buffer.from(head + slice(kind.binary ? base64 : words, fill) + tail);
    written += value.length;
    yield { key, value, resource: resourceOfKey(key) };
  }
}

/** The leader's endpoint alone when known (saves followers forwarding every txn: ~1.5× faster), else all. */
async function leaderFirst(endpoints: string[]): Promise<string[]> {
  const client = await EtcdClient.connect({ endpoints });
  try {
    const statuses = await Promise.all(endpoints.map((e) => client.status(e).catch(() => undefined)));
    const leader = statuses.find((s) => s && s.memberId === s.leaderId);
    return leader ? [leader.endpoint] : endpoints;
  } finally {
    client.close();
  }
}

/** Writes Kubernetes-like keys until about `totalBytes` of values; see the file comment. */
export async function fillKubernetesLike(endpoints: string[], options: FillOptions): Promise<FillResult> {
  const started = Date.now();
  const etcd = new Etcd3({ hosts: await leaderFirst(endpoints), grpcOptions: { 'grpc.max_send_message_length': 4 << 20 } });
  const result: FillResult = { keys: 0, bytes: 0, byResource: {}, revision: 0, durationMs: 0 };
  const inFlight = new Set<Promise<void>>();
  const concurrency = options.concurrency ?? 8;
  let failure: unknown;
  const send = (ops: IRequestOp[]): void => {
    const p = etcd.kv.txn({ success: ops }).then(
      (res) => {
        result.revision = Math.max(result.revision, Number(res.header.revision));
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  try {
    let ops: IRequestOp[] = [];
    let opBytes = 0;
    for (const { key, value, resource } of kubernetesLikeItems(options.seed ?? 1, options.totalBytes)) {
      if (ops.length === MAX_OPS || (ops.length > 0 && opBytes + value.length + key.length > MAX_TXN_BYTES)) {
        send(ops);
        ops = [];
        opBytes = 0;
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (failure) throw failure;
      }
      ops.push({ request_put: { key: Buffer.from(key), value } });
      opBytes += value.length + key.length;
      result.keys += 1;
      result.bytes += value.length;
      result.byResource[resource] = (result.byResource[resource] ?? 0) + 1;
    }
    if (ops.length > 0) send(ops);
    await Promise.all(inFlight);
    if (failure) throw failure;
  } finally {
    etcd.close();
  }
  result.durationMs = Date.now() - started;
  return result;
}
