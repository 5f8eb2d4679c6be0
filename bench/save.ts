/**
 * Benchmark of issue 2: `etcdsnap snapshot save` (uncompressed and zstd) against
 * `etcdctl snapshot save`, on one ~1 GiB etcd DB of Kubernetes-like data.
 *
 *   npx tsc -p tsconfig.json && npm run bench            # ~1 GiB, 3 runs each
 *   npm run bench -- --quick                             # ~128 MiB smoke run
 *   BENCH_DB_MB=512 BENCH_RUNS=5 npm run bench
 *
 * One 1-member etcd in a temp dir is filled once; then every round runs each variant once,
 * in an order rotated per round (A B C, B C A, C A B) to spread drift and noise. Each
 * variant is a real child process timed from spawn to exit: etcdctl, and the etcdsnap CLI
 * (bin/etcdsnap.js) with a preload that reports its peak RSS and CPU time (rss-preload.ts).
 * Every output is deleted after its run. Everything started is stopped, also on failure.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  assertOk,
  CLI,
  describeMachine,
  fmt,
  loadavg,
  machine,
  markdownTable,
  median,
  parseOptions,
  processCpuSec,
  removeAtExit,
  removeNow,
  rotation,
  runTimed,
  seededEtcd,
  MiB,
  type ChildRun,
  type SeededEtcd,
  writeJson,
} from './lib.js';
import { tempDir } from '../test/harness/index.js';

interface Variant {
  id: string;
  label: string;
  /** Runs it, writing under `dir`; returns the run and the bytes it stored. */
  run(endpoint: string, dir: string, scratch: string): Promise<{ r: ChildRun; rawSize: number; storedSize: number }>;
  goal?: { ratio: number; rssMB: number };
  /** etcdsnap variants: the CLI flags beyond the common ones. */
  flags?: string[];
}

interface CliOutput {
  metadata: { rawSize: number; storedSize: number; codec: string };
}

function etcdsnapVariant(id: string, label: string, flags: string[], goal?: Variant['goal'], cli = CLI): Variant {
  return {
    id,
    label,
    goal,
    flags,
    async run(endpoint, dir, scratch) {
      const r = assertOk(
        label,
        await runTimed(process.execPath, [cli, 'snapshot', 'save', '--endpoints', endpoint, '--dir', dir, '--node', 'bench', '-o', 'json', ...flags], { usage: 'preload', scratch }),
      );
      const out = JSON.parse(r.stdout) as CliOutput;
      return { r, rawSize: out.metadata.rawSize, storedSize: out.metadata.storedSize };
    },
  };
}

const ETCDCTL: Variant = {
  id: 'etcdctl',
  label: '`etcdctl snapshot save`',
  async run(endpoint, dir, scratch) {
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'snapshot.db');
    const r = assertOk(
      'etcdctl snapshot save',
      // --command-timeout: 3.4 applies it to the whole save (default 5 s).
      await runTimed('etcdctl', [`--endpoints=${endpoint}`, '--command-timeout=30m', 'snapshot', 'save', file], { env: { ETCDCTL_API: '3' }, usage: 'gnu-time', scratch }),
    );
    const size = (await stat(file)).size;
    return { r, rawSize: size, storedSize: size };
  },
};

const VARIANTS: Record<string, Variant> = {
  etcdctl: ETCDCTL,
  etcdsnap: etcdsnapVariant('etcdsnap', '`etcdsnap snapshot save`', [], { ratio: 1.05, rssMB: 150 }),
  'etcdsnap-zstd': etcdsnapVariant('etcdsnap-zstd', '`etcdsnap snapshot save --compress` (zstd-1)', ['--compress'], { ratio: 1.1, rssMB: 150 }),
  // For analysis (--variants): the same without the content summary (keys-only range).
  'etcdsnap-nosummary': etcdsnapVariant('etcdsnap-nosummary', '`etcdsnap snapshot save --no-summary`', ['--no-summary']),
  'etcdsnap-zstd-nosummary': etcdsnapVariant('etcdsnap-zstd-nosummary', '`etcdsnap snapshot save --compress --no-summary`', ['--compress', '--no-summary']),
};
const DEFAULT_VARIANTS = ['etcdctl', 'etcdsnap', 'etcdsnap-zstd'];

interface Sample {
  round: number;
  wallSec: number;
  userSec: number | undefined;
  systemSec: number | undefined;
  maxRssKiB: number | undefined;
  /** CPU seconds etcd spent during the run (serving the snapshot, and the summary's reads). */
  etcdCpuSec: number | undefined;
  rawSize: number;
  storedSize: number;
}

const log = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

async function main(): Promise<void> {
  const opts = parseOptions(
    process.argv.slice(2),
    `  --variants a,b,…   of: ${Object.keys(VARIANTS).join(', ')} (default ${DEFAULT_VARIANTS.join(',')}; etcdctl always runs)
  --compare DIR      also run the etcdsnap variants of another built checkout (DIR/bin/etcdsnap.js), e.g. a patch`,
  );
  const wanted = (opts.extra.get('variants') ?? DEFAULT_VARIANTS.join(',')).split(',').map((s) => s.trim());
  const compare = opts.extra.get('compare');
  opts.extra.delete('variants');
  opts.extra.delete('compare');
  if (opts.extra.size > 0) throw new Error(`unknown option --${[...opts.extra.keys()][0]} (see --help)`);
  for (const w of wanted) if (!VARIANTS[w]) throw new Error(`unknown variant "${w}"`);
  const variants = ['etcdctl', ...wanted.filter((w) => w !== 'etcdctl')].map((w) => VARIANTS[w] as Variant);
  if (compare !== undefined) {
    const cli = path.resolve(compare, 'bin', 'etcdsnap.js');
    for (const v of [...variants]) if (v.flags) variants.push(etcdsnapVariant(`${v.id}@compare`, `${v.label} @ ${compare}`, v.flags, undefined, cli));
  }

  const m = await machine();
  const loadBefore = loadavg();
  log(`bench/save: target DB ${opts.dbMiB} MiB, ${opts.runs} runs of ${variants.map((v) => v.id).join(', ')}; load ${loadBefore}`);

  const scratch = await tempDir('etcdsnap-bench-save');
  removeAtExit(scratch);
  let etcd: SeededEtcd | undefined;
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.id, []]));
  try {
    log('starting etcd and filling it');
    etcd = await seededEtcd(opts.dbMiB * MiB, log);
    log(`etcd ready: ${etcd.keys} keys, DB ${fmt.mib(etcd.dbSize)} MiB, fill ${etcd.fillSec.toFixed(0)} s`);

    for (let round = 0; round < opts.runs; round++) {
      for (const v of rotation(variants, round)) {
        const dir = path.join(scratch, `${v.id}-${round}`);
        removeAtExit(dir);
        const etcdBefore = processCpuSec(etcd.pid);
        const { r, rawSize, storedSize } = await v.run(etcd.endpoint, dir, scratch);
        const etcdAfter = processCpuSec(etcd.pid);
        const etcdCpuSec = etcdBefore !== undefined && etcdAfter !== undefined ? etcdAfter - etcdBefore : undefined;
        await removeNow(dir);
        samples.get(v.id)?.push({ round, wallSec: r.wallSec, userSec: r.usage?.userSec, systemSec: r.usage?.systemSec, maxRssKiB: r.usage?.maxRssKiB, etcdCpuSec, rawSize, storedSize });
        log(
          `round ${round + 1}/${opts.runs} ${v.id}: ${fmt.sec(r.wallSec)} s` +
            (r.usage ? `, cpu ${fmt.sec(r.usage.userSec)}+${fmt.sec(r.usage.systemSec)} s, rss ${fmt.mbFromKiB(r.usage.maxRssKiB)} MB` : '') +
            (etcdCpuSec !== undefined ? `, etcd cpu ${fmt.sec(etcdCpuSec)} s` : '') +
            `, ${fmt.mib(storedSize)} MiB stored`,
        );
      }
    }
  } finally {
    await etcd?.cluster.stop();
    await removeNow(scratch);
  }
  const loadAfter = loadavg();

  // --- report ---
  const base = samples.get('etcdctl') ?? [];
  const baseMedian = median(base.map((s) => s.wallSec));
  const rawSize = median(base.map((s) => s.rawSize));
  const rows: (string | number)[][] = [];
  const goals: string[] = [];
  const summary: Record<string, unknown> = {};
  for (const v of variants) {
    const ss = samples.get(v.id) ?? [];
    const walls = ss.map((s) => s.wallSec);
    const med = median(walls);
    const ratio = med / baseMedian;
    // Ratio within each round (same moment, same noise), then the median of those.
    const paired = median(ss.map((s) => s.wallSec / (base.find((b) => b.round === s.round)?.wallSec ?? Number.NaN)));
    const cpu = ss.every((s) => s.userSec !== undefined) ? median(ss.map((s) => (s.userSec ?? 0) + (s.systemSec ?? 0))) : undefined;
    const etcdCpu = ss.every((s) => s.etcdCpuSec !== undefined) ? median(ss.map((s) => s.etcdCpuSec ?? 0)) : undefined;
    const rss = ss.every((s) => s.maxRssKiB !== undefined) ? Math.max(...ss.map((s) => s.maxRssKiB ?? 0)) : undefined;
    const stored = median(ss.map((s) => s.storedSize));
    rows.push([
      v.label,
      fmt.sec(med),
      `${fmt.sec(Math.min(...walls))}–${fmt.sec(Math.max(...walls))}`,
      fmt.mibps(rawSize, med),
      v.id === 'etcdctl' ? '1.00×' : fmt.ratio(ratio),
      v.id === 'etcdctl' ? '–' : fmt.ratio(paired),
      cpu === undefined ? '?' : fmt.sec(cpu),
      etcdCpu === undefined ? '?' : fmt.sec(etcdCpu),
      rss === undefined ? '?' : fmt.mbFromKiB(rss),
      `${fmt.mib(stored)} (${(rawSize / stored).toFixed(2)}:1)`,
    ]);
    if (v.goal) {
      const rssMB = rss === undefined ? Number.NaN : (rss * 1024) / 1e6;
      goals.push(`- ${v.label}: time ≤ ${v.goal.ratio.toFixed(2)}× etcdctl — ${ratio <= v.goal.ratio ? 'met' : 'NOT met'} (${fmt.ratio(ratio)}); peak RSS < ${v.goal.rssMB} MB — ${rssMB < v.goal.rssMB ? 'met' : 'NOT met'} (${rssMB.toFixed(0)} MB)`);
    }
    summary[v.id] = { medianSec: med, ratio, pairedRatio: paired, cpuSec: cpu, etcdCpuSec: etcdCpu, maxRssKiB: rss, storedSize: stored, samples: ss };
  }
  const report = [
    `## bench/save — ${opts.dbMiB} MiB target, ${opts.runs} runs per variant`,
    '',
    describeMachine(m),
    `load average (1/5/15 min) before ${loadBefore}, after ${loadAfter}`,
    `etcd: 1 member, ${etcd?.keys} keys, DB ${fmt.mib(etcd?.dbSize ?? 0)} MiB, snapshot ${fmt.mib(rawSize)} MiB; fill took ${etcd?.fillSec.toFixed(0)} s`,
    '',
    markdownTable(['variant', 'median s', 'min–max s', 'MiB/s', '× etcdctl', 'paired ×', 'CPU s', 'etcd CPU s', 'peak RSS MB', 'stored MiB'], rows),
    '',
    'Goals:',
    ...goals,
    '',
  ].join('\n');
  process.stdout.write(report);
  await writeJson(opts.json, { bench: 'save', options: { dbMiB: opts.dbMiB, runs: opts.runs }, machine: m, loadBefore, loadAfter, etcd: etcd && { keys: etcd.keys, dbSize: etcd.dbSize, fillSec: etcd.fillSec }, rawSize, results: summary });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/save failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
