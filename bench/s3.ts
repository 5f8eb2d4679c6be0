/**
 * Benchmark of issue 3: saving straight to S3 against the sequential way, and listing a
 * folder of 10,000 snapshot records. Against s3rver on loopback (HTTP), the test server.
 *
 *   npx tsc -p tsconfig.json && npm run bench:s3        # ~1 GiB, 3 runs each, 10,000 records
 *   npm run bench:s3 -- --quick                         # ~128 MiB, 2 runs, 10,000 records
 *   BENCH_DB_MB=512 BENCH_LIST_OBJECTS=2000 npm run bench:s3
 *
 * Per round, in an order rotated per round:
 *   (a) `etcdsnap snapshot save --compress --s3 …`: the real CLI (a child process, peak RSS
 *       and CPU from rss-preload.ts), zstd-1, streamed straight into a multipart upload;
 *   (b) sequential: `etcdctl snapshot save` to disk, then `zstd -1 -T1` of the file (the same
 *       codec and level as (a); one worker thread like (a)), then an upload of the .zst with
 *       `@aws-sdk/lib-storage` Upload (16 MiB parts, 4 at once: the S3 target's defaults);
 *   (c) bare `etcdctl snapshot save`.
 * Then 10,000 tiny snapshot objects and their metadata objects are written with the SDK into
 * one folder of another bucket, and the S3 target's list() is timed cold (a new target, empty
 * metadata cache) and warm (the same target again), each pair repeated `--list-runs` times.
 */
import './quiet-sdk.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parseMetadata, serializeMetadata, type SnapshotMetadata } from '../src/core/metadata.js';
import { formatName } from '../src/core/names.js';
import { createS3Target } from '../src/storage/s3.js';
import { tempDir } from '../test/harness/index.js';
import { startS3rver, type S3rverHandle } from '../test/harness/s3rver.js';
import {
  assertOk,
  CLI,
  describeMachine,
  fmt,
  loadavg,
  machine,
  markdownTable,
  median,
  MiB,
  parseOptions,
  processCpuSec,
  removeAtExit,
  removeNow,
  rotation,
  runTimed,
  seededEtcd,
  type SeededEtcd,
  type Usage,
  writeJson,
} from './lib.js';

const BUCKET = 'bench';
const FOLDER = 'bench/save';
const LIST_BUCKET = 'listing';
const LIST_FOLDER = 'clusters/bench';
const CLUSTER_ID = 'bench-cluster';
const PART_SIZE = 16 * MiB;
const QUEUE_SIZE = 4;

const log = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

/** Runs `fn` over 0..n-1 with at most `limit` at a time. */
async function forEachLimit(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

async function deleteKeys(client: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (const key of keys) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

interface Timed {
  wallSec: number;
  usage?: Usage | undefined;
  /** CPU seconds etcd spent during the run. */
  etcdCpuSec?: number | undefined;
}

interface RoundResult {
  round: number;
  a?: Timed & { rawSize: number; storedSize: number };
  /** (a) with the CLI of the `--compare` checkout. */
  a2?: Timed & { rawSize: number; storedSize: number };
  b?: { wallSec: number; etcdCpuSec?: number | undefined; etcdctlSec: number; zstdSec: number; uploadSec: number; storedSize: number; zstdUsage?: Usage | undefined; etcdctlUsage?: Usage | undefined };
  c?: Timed & { rawSize: number };
}

async function variantA(etcd: SeededEtcd, s3: S3rverHandle, scratch: string, round: number, cliPath = CLI): Promise<NonNullable<RoundResult['a']> & { name: string }> {
  const cli = [cliPath, 'snapshot', 'save', '--endpoints', etcd.endpoint, '--node', `a${round}`, '--compress', '--cluster-id', CLUSTER_ID, '-o', 'json'];
  const s3Flags = ['--s3', '--s3-bucket', BUCKET, '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--s3-force-path-style', '--s3-folder', FOLDER];
  // Keys from the environment, as an operator would pass them (flags show in ps).
  const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
  const r = assertOk('(a) etcdsnap snapshot save --s3 --compress', await runTimed(process.execPath, [...cli, ...s3Flags], { env, usage: 'preload', scratch }));
  const out = JSON.parse(r.stdout) as { name: string; failures: unknown[]; metadata: { rawSize: number; storedSize: number } };
  if (out.failures.length > 0) throw new Error(`(a) failed: ${JSON.stringify(out.failures)}`);
  return { wallSec: r.wallSec, usage: r.usage, rawSize: out.metadata.rawSize, storedSize: out.metadata.storedSize, name: out.name };
}

async function variantB(etcd: SeededEtcd, client: S3Client, scratch: string, round: number): Promise<NonNullable<RoundResult['b']>> {
  const dir = path.join(scratch, `b-${round}`);
  removeAtExit(dir);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'snapshot.db');
  const zst = `${file}.zst`;
  const key = `${FOLDER}/sequential-${round}.db.zst`;
  try {
    const started = process.hrtime.bigint();
    const save = assertOk(
      '(b) etcdctl snapshot save',
      await runTimed('etcdctl', [`--endpoints=${etcd.endpoint}`, '--command-timeout=30m', 'snapshot', 'save', file], { env: { ETCDCTL_API: '3' }, usage: 'gnu-time', scratch }),
    );
    const zstd = assertOk('(b) zstd', await runTimed('zstd', ['-1', '-T1', '-q', '-f', file, '-o', zst], { usage: 'gnu-time', scratch }));
    const upStarted = process.hrtime.bigint();
    await new Upload({
      client,
      params: { Bucket: BUCKET, Key: key, Body: createReadStream(zst, { highWaterMark: 1 << 20 }), ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
    }).done();
    const ended = process.hrtime.bigint();
    const storedSize = (await stat(zst)).size;
    return {
      wallSec: Number(ended - started) / 1e9,
      etcdctlSec: save.wallSec,
      zstdSec: zstd.wallSec,
      uploadSec: Number(ended - upStarted) / 1e9,
      storedSize,
      etcdctlUsage: save.usage,
      zstdUsage: zstd.usage,
    };
  } finally {
    await removeNow(dir);
    await deleteKeys(client, BUCKET, [key]);
  }
}

async function variantC(etcd: SeededEtcd, scratch: string, round: number): Promise<NonNullable<RoundResult['c']>> {
  const dir = path.join(scratch, `c-${round}`);
  removeAtExit(dir);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'snapshot.db');
  try {
    const r = assertOk(
      '(c) etcdctl snapshot save',
      await runTimed('etcdctl', [`--endpoints=${etcd.endpoint}`, '--command-timeout=30m', 'snapshot', 'save', file], { env: { ETCDCTL_API: '3' }, usage: 'gnu-time', scratch }),
    );
    return { wallSec: r.wallSec, usage: r.usage, rawSize: (await stat(file)).size };
  } finally {
    await removeNow(dir);
  }
}

// --- listing ------------------------------------------------------------------------------

/** Writes `n` tiny snapshot objects and their metadata (from `template`), 3 nodes, one hour apart. */
async function createRecords(client: S3Client, template: SnapshotMetadata, n: number): Promise<void> {
  const start = Math.floor(Date.UTC(2026, 0, 1) / 1000);
  await forEachLimit(n, 32, async (i) => {
    const node = `node-${(i % 3) + 1}`;
    const unix = start + Math.floor(i / 3) * 3600;
    const name = formatName({ base: 'etcd-snapshot', node, unix, codec: 'zstd' });
    const body = Buffer.from(`tiny snapshot ${i}\n`);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const metadata: SnapshotMetadata = {
      ...template,
      name,
      base: 'etcd-snapshot',
      node,
      kind: 'recurring',
      cluster: { id: CLUSTER_ID, name: CLUSTER_ID },
      createdAt: new Date(unix * 1000).toISOString(),
      storedSize: body.length,
      sha256,
    };
    await client.send(new PutObjectCommand({ Bucket: LIST_BUCKET, Key: `${LIST_FOLDER}/${name}`, Body: body, ContentType: 'application/octet-stream' }));
    await client.send(new PutObjectCommand({ Bucket: LIST_BUCKET, Key: `${LIST_FOLDER}/.metadata/${name}.json`, Body: serializeMetadata(metadata), ContentType: 'application/json' }));
  });
}

/** Both paginated listings list() makes, alone: the floor the server sets. */
async function rawListing(client: S3Client): Promise<{ sec: number; objects: number; pages: number }> {
  const started = process.hrtime.bigint();
  let objects = 0;
  let pages = 0;
  await Promise.all(
    [`${LIST_FOLDER}/`, `${LIST_FOLDER}/.metadata/`].map(async (prefix) => {
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: LIST_BUCKET, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
        pages += 1;
        objects += page.Contents?.length ?? 0;
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    }),
  );
  return { sec: Number(process.hrtime.bigint() - started) / 1e9, objects, pages };
}

interface ListingResult {
  records: number;
  createSec: number;
  cold: number[];
  warm: number[];
  listed: number;
  raw: { sec: number; objects: number; pages: number }[];
  requests: { cold: number; warm: number };
}

async function listingBench(s3: S3rverHandle, template: SnapshotMetadata, n: number, runs: number): Promise<ListingResult> {
  await s3.createBucket(LIST_BUCKET);
  const client = s3.client();
  try {
    log(`listing: writing ${n} snapshot objects and ${n} metadata objects`);
    const t0 = process.hrtime.bigint();
    await createRecords(client, template, n);
    const createSec = Number(process.hrtime.bigint() - t0) / 1e9;
    log(`listing: written in ${createSec.toFixed(1)} s`);
    const settings = { ...s3.targetConfig(LIST_BUCKET), folder: LIST_FOLDER };
    const cold: number[] = [];
    const warm: number[] = [];
    const raw: ListingResult['raw'] = [];
    let listed = 0;
    for (let r = 0; r < runs; r++) {
      raw.push(await rawListing(client));
      const target = createS3Target(settings, { clusterId: CLUSTER_ID });
      try {
        for (const into of [cold, warm]) {
          const t = process.hrtime.bigint();
          const list = await target.list();
          into.push(Number(process.hrtime.bigint() - t) / 1e9);
          listed = list.length;
          if (listed !== n) throw new Error(`list() returned ${listed} snapshots, expected ${n}`);
        }
      } finally {
        target.close();
      }
      log(`listing run ${r + 1}/${runs}: cold ${fmt.sec(cold[r] ?? 0)} s, warm ${fmt.sec(warm[r] ?? 0)} s (raw listings alone ${fmt.sec(raw[r]?.sec ?? 0)} s)`);
    }
    // Requests per listing, counted on a client of our own (same SDK, same server).
    let count = 0;
    const counting: Pick<S3Client, 'send'> = {
      send: ((...a: Parameters<S3Client['send']>) => {
        count += 1;
        return client.send(...a);
      }) as S3Client['send'],
    };
    const target = createS3Target(settings, { clusterId: CLUSTER_ID, client: counting });
    await target.list();
    const coldRequests = count;
    count = 0;
    await target.list();
    const requests = { cold: coldRequests, warm: count };
    return { records: n, createSec, cold, warm, listed, raw, requests };
  } finally {
    client.destroy();
  }
}

// --- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions(
    process.argv.slice(2),
    [
      '  --list-objects N   snapshot records for the listing (BENCH_LIST_OBJECTS, default 10000; 0: no listing)',
      '  --list-runs N      cold+warm listing pairs (default 3)',
      '  --compare DIR      also run (a) with the CLI of another built checkout (DIR/bin/etcdsnap.js), e.g. a patch',
    ].join('\n'),
  );
  const listObjects = Number(opts.extra.get('list-objects') ?? process.env.BENCH_LIST_OBJECTS ?? 10_000);
  const listRuns = Number(opts.extra.get('list-runs') ?? 3);
  const compare = opts.extra.get('compare');
  opts.extra.delete('compare');
  opts.extra.delete('list-objects');
  opts.extra.delete('list-runs');
  if (opts.extra.size > 0) throw new Error(`unknown option --${[...opts.extra.keys()][0]} (see --help)`);
  if (!Number.isInteger(listObjects) || listObjects < 0 || !Number.isInteger(listRuns) || listRuns < 1) throw new Error('--list-objects and --list-runs must be whole numbers');

  const m = await machine();
  const loadBefore = loadavg();
  log(`bench/s3: target DB ${opts.dbMiB} MiB, ${opts.runs} runs of (a) (b) (c), listing of ${listObjects}; load ${loadBefore}`);
  const scratch = await tempDir('etcdsnap-bench-s3');
  removeAtExit(scratch);
  let etcd: SeededEtcd | undefined;
  let s3: S3rverHandle | undefined;
  let client: S3Client | undefined;
  const rounds: RoundResult[] = [];
  let template: SnapshotMetadata | undefined;
  let listing: ListingResult | undefined;
  try {
    log('starting etcd and filling it');
    etcd = await seededEtcd(opts.dbMiB * MiB, log);
    log(`etcd ready: ${etcd.keys} keys, DB ${fmt.mib(etcd.dbSize)} MiB`);
    s3 = await startS3rver();
    await s3.createBucket(BUCKET);
    const sdk = s3.client();
    client = sdk;
    log(`s3rver at ${s3.endpoint}`);

    for (let round = 0; round < opts.runs; round++) {
      const rr: RoundResult = { round };
      for (const v of rotation(compare ? (['a', 'a2', 'b', 'c'] as const) : (['a', 'b', 'c'] as const), round)) {
        const etcdBefore = processCpuSec(etcd.pid);
        const etcdCpu = (): number | undefined => {
          const after = processCpuSec(etcd?.pid);
          return etcdBefore !== undefined && after !== undefined ? after - etcdBefore : undefined;
        };
        if (v === 'a' || v === 'a2') {
          const a = await variantA(etcd, s3, scratch, round, v === 'a2' && compare ? path.resolve(compare, 'bin', 'etcdsnap.js') : CLI);
          const etcdCpuSec = etcdCpu();
          const metaKey = `${FOLDER}/.metadata/${a.name}.json`;
          if (!template) {
            const got = await sdk.send(new GetObjectCommand({ Bucket: BUCKET, Key: metaKey }));
            template = parseMetadata((await got.Body?.transformToString('utf8')) ?? '', metaKey);
          }
          await deleteKeys(sdk, BUCKET, [`${FOLDER}/${a.name}`, metaKey]);
          rr[v] = { wallSec: a.wallSec, usage: a.usage, etcdCpuSec, rawSize: a.rawSize, storedSize: a.storedSize };
          log(
            `round ${round + 1}/${opts.runs} (${v}) etcdsnap → S3: ${fmt.sec(a.wallSec)} s` +
              (a.usage ? `, cpu ${fmt.sec(a.usage.userSec + a.usage.systemSec)} s, rss ${fmt.mbFromKiB(a.usage.maxRssKiB)} MB` : '') +
              `, etcd cpu ${fmt.sec(etcdCpuSec ?? Number.NaN)} s, ${fmt.mib(a.storedSize)} MiB stored`,
          );
        } else if (v === 'b') {
          rr.b = { ...(await variantB(etcd, sdk, scratch, round)), etcdCpuSec: etcdCpu() };
          log(`round ${round + 1}/${opts.runs} (b) sequential: ${fmt.sec(rr.b.wallSec)} s (etcdctl ${fmt.sec(rr.b.etcdctlSec)} + zstd ${fmt.sec(rr.b.zstdSec)} + upload ${fmt.sec(rr.b.uploadSec)})`);
        } else {
          rr.c = { ...(await variantC(etcd, scratch, round)), etcdCpuSec: etcdCpu() };
          log(`round ${round + 1}/${opts.runs} (c) etcdctl: ${fmt.sec(rr.c.wallSec)} s, etcd cpu ${fmt.sec(rr.c.etcdCpuSec ?? Number.NaN)} s`);
        }
      }
      rounds.push(rr);
    }
    // etcd is no longer needed: free its CPU and memory for the listing.
    await etcd.cluster.stop();
    if (listObjects > 0 && template) listing = await listingBench(s3, template, listObjects, listRuns);
  } finally {
    client?.destroy();
    await etcd?.cluster.stop();
    await s3?.stop();
    await removeNow(scratch);
  }
  const loadAfter = loadavg();

  // --- report ---
  const med = (f: (r: RoundResult) => number | undefined): number => median(rounds.map(f).filter((x): x is number => x !== undefined));
  const a = med((r) => r.a?.wallSec);
  const b = med((r) => r.b?.wallSec);
  const c = med((r) => r.c?.wallSec);
  const raw = med((r) => r.c?.rawSize);
  const pairedAB = med((r) => (r.a && r.b ? r.a.wallSec / r.b.wallSec : undefined));
  const pairedAC = med((r) => (r.a && r.c ? r.a.wallSec / r.c.wallSec : undefined));
  const range = (f: (r: RoundResult) => number | undefined): string => {
    const xs = rounds.map(f).filter((x): x is number => x !== undefined);
    return `${fmt.sec(Math.min(...xs))}–${fmt.sec(Math.max(...xs))}`;
  };
  const rssA = Math.max(...rounds.map((r) => r.a?.usage?.maxRssKiB ?? 0));
  const cpu = (u: Usage | undefined): number | undefined => (u ? u.userSec + u.systemSec : undefined);
  const rows = [
    [
      '(a) `etcdsnap snapshot save --compress --s3`, streamed',
      fmt.sec(a),
      range((r) => r.a?.wallSec),
      fmt.mibps(raw, a),
      fmt.sec(med((r) => cpu(r.a?.usage))),
      fmt.sec(med((r) => r.a?.etcdCpuSec)),
      fmt.mbFromKiB(rssA),
      fmt.mib(med((r) => r.a?.storedSize)),
    ],
    ...(compare
      ? [
          [
            `(a) @ ${compare}`,
            fmt.sec(med((r) => r.a2?.wallSec)),
            range((r) => r.a2?.wallSec),
            fmt.mibps(raw, med((r) => r.a2?.wallSec)),
            fmt.sec(med((r) => cpu(r.a2?.usage))),
            fmt.sec(med((r) => r.a2?.etcdCpuSec)),
            fmt.mbFromKiB(Math.max(...rounds.map((r) => r.a2?.usage?.maxRssKiB ?? 0))),
            fmt.mib(med((r) => r.a2?.storedSize)),
          ],
        ]
      : []),
    [
      `(b) sequential: etcdctl ${fmt.sec(med((r) => r.b?.etcdctlSec))} + zstd ${fmt.sec(med((r) => r.b?.zstdSec))} + upload ${fmt.sec(med((r) => r.b?.uploadSec))}`,
      fmt.sec(b),
      range((r) => r.b?.wallSec),
      fmt.mibps(raw, b),
      `${fmt.sec(med((r) => cpu(r.b?.etcdctlUsage)))} + ${fmt.sec(med((r) => cpu(r.b?.zstdUsage)))} + ?`,
      fmt.sec(med((r) => r.b?.etcdCpuSec)),
      '–',
      fmt.mib(med((r) => r.b?.storedSize)),
    ],
    ['(c) `etcdctl snapshot save`', fmt.sec(c), range((r) => r.c?.wallSec), fmt.mibps(raw, c), fmt.sec(med((r) => cpu(r.c?.usage))), fmt.sec(med((r) => r.c?.etcdCpuSec)), fmt.mbFromKiB(med((r) => r.c?.usage?.maxRssKiB)), fmt.mib(raw)],
  ];
  const lines = [
    `## bench/s3 — ${opts.dbMiB} MiB target, ${opts.runs} runs per variant, s3rver over HTTP on loopback`,
    '',
    describeMachine(m),
    `load average (1/5/15 min) before ${loadBefore}, after ${loadAfter}`,
    `etcd: 1 member, ${etcd?.keys} keys, snapshot ${fmt.mib(raw)} MiB`,
    '',
    markdownTable(['variant', 'median s', 'min–max s', 'MiB/s (raw)', 'CPU s', 'etcd CPU s', 'peak RSS MB', 'stored MiB'], rows),
    '',
    'Goals:',
    `- a/b ≤ 0.60 — ${a / b <= 0.6 ? 'met' : 'NOT met'} (${(a / b).toFixed(2)}; per-round median ${pairedAB.toFixed(2)})`,
    `- a/c ≤ 1.25 — ${a / c <= 1.25 ? 'met' : 'NOT met'} (${(a / c).toFixed(2)}; per-round median ${pairedAC.toFixed(2)})`,
  ];
  if (compare) {
    const a2 = med((r) => r.a2?.wallSec);
    lines.push(`- with ${compare}: a/b ${(a2 / b).toFixed(2)}, a/c ${(a2 / c).toFixed(2)}`);
  }
  if (listing) {
    lines.push(
      `- listing of ${listing.records} snapshot records < 2 s — cold ${listing.cold.some((x) => x >= 2) ? 'NOT met' : 'met'} (median ${fmt.sec(median(listing.cold))} s), warm ${listing.warm.some((x) => x >= 2) ? 'NOT met' : 'met'} (median ${fmt.sec(median(listing.warm))} s)`,
      '',
      markdownTable(
        ['listing (S3 target list(), cluster-scoped)', 'median s', 'runs s', 'requests'],
        [
          ['cold: new target, empty metadata cache', fmt.sec(median(listing.cold)), listing.cold.map(fmt.sec).join(', '), String(listing.requests.cold)],
          ['warm: same target again', fmt.sec(median(listing.warm)), listing.warm.map(fmt.sec).join(', '), String(listing.requests.warm)],
          [
            `the two ListObjectsV2 listings alone (${listing.raw[0]?.pages ?? '?'} pages)`,
            fmt.sec(median(listing.raw.map((x) => x.sec))),
            listing.raw.map((x) => fmt.sec(x.sec)).join(', '),
            String(listing.raw[0]?.pages ?? '?'),
          ],
        ],
      ),
      '',
      `(${listing.records} snapshot objects + ${listing.records} metadata objects written with the SDK in ${listing.createSec.toFixed(1)} s, 32 at once)`,
    );
  }
  lines.push('');
  process.stdout.write(lines.join('\n'));
  await writeJson(opts.json, { bench: 's3', options: { dbMiB: opts.dbMiB, runs: opts.runs, listObjects, listRuns }, machine: m, loadBefore, loadAfter, rawSize: raw, rounds, listing });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/s3 failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
