/**
 * Benchmark of issue 5: a whole-cluster restore through etcdsnap (server + 3 agents + 3 managed
 * members, real CLI processes) against the floor of any restore: one `etcdctl snapshot restore`
 * of the same data plus one member started on it until healthy.
 *
 *   npx tsc -p tsconfig.json && npm run bench:restore           # ~1 GiB, 2 rounds (~10 min)
 *   npm run bench:restore -- --quick                            # ~128 MiB smoke run
 *
 * Set-up (not timed): a 1-member etcd is filled with Kubernetes-like data and saved with
 * `etcdctl snapshot save` (the raw file); the three members of the stack are restored from it
 * (so the stack starts with the data in a few seconds instead of a 3-way fill), the agents
 * join, and one one-time snapshot is taken through etcdsnap (zstd, on every node).
 * Each round (order alternating) then times:
 *   - baseline: `etcdctl snapshot restore raw.db` into a fresh dir + one etcd member started on it
 *     until healthy (spawn to healthy);
 *   - reference: what 3 members cost on this one host — 3 `etcdctl snapshot restore` at once + a
 *     3-member cluster started on them until healthy (on real nodes each restore has its own CPU);
 *   - etcdsnap: `etcdsnap snapshot restore CLUSTER NAME --mode etcd --yes --wait` from spawn to exit
 *     (request → Finished, CLI start-up included), with the phase durations from the operation's
 *     history.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Operation } from '../src/core/api.js';
import { startMember } from '../src/etcd/member.js';
import { waitHealthy } from '../src/etcd/wait.js';
import { freePort, tempDir } from '../test/harness/index.js';
import { startStack } from '../test/harness/stack.js';
import { assertOk, CLI, describeMachine, fmt, loadavg, machine, markdownTable, median, MiB, parseOptions, removeAtExit, removeNow, runTimed, seededEtcd, writeJson } from './lib.js';

const GOAL = 1.5;
const ETCDCTL_ENV = { ETCDCTL_API: '3' };

interface Round {
  round: number;
  baselineRestoreSec: number;
  baselineStartSec: number;
  baselineSec: number;
  etcdsnapSec: number;
  /** The same on this host for 3 members: 3 etcdctl restores at once + 3 members started until healthy. */
  floor3Sec: number;
  /** Server-side: operation created → finished. */
  operationSec: number;
  /** Members down: Shutdown + Restore + RestartCluster. */
  downtimeSec: number;
  history: Operation['history'];
  phases: Record<string, number>;
  loadavg: string;
}

function phaseDurations(op: Operation): Record<string, number> {
  const out: Record<string, number> = {};
  const h = op.history;
  for (let i = 0; i < h.length; i++) {
    const cur = h[i];
    const next = h.slice(i + 1).find((x) => x.phase !== cur?.phase);
    if (!cur || !next || out[cur.phase] !== undefined) continue;
    const first = h.find((x) => x.phase === cur.phase) as { at: string };
    out[cur.phase] = (Date.parse(next.at) - Date.parse(first.at)) / 1000;
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const runs = opts.extra.has('runs') ? opts.runs : Math.min(opts.runs, 2);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const m = await machine();
  log(describeMachine(m));
  const scratch = await tempDir('etcdsnap-bench-restore-');
  removeAtExit(scratch);

  // --- set-up: data, raw snapshot, a stack whose members hold the data ---------------------
  log(`filling a 1-member etcd to ~${opts.dbMiB} MiB…`);
  const seeded = await seededEtcd(opts.dbMiB * MiB, log);
  const raw = path.join(scratch, 'raw.db');
  try {
    assertOk('etcdctl snapshot save', await runTimed('etcdctl', ['snapshot', 'save', raw, `--endpoints=${seeded.endpoint}`], { env: ETCDCTL_ENV, scratch }));
  } finally {
    await seeded.cluster.stop();
  }
  log(`DB ${fmt.mib(seeded.dbSize)} MiB, ${seeded.keys} keys`);

  const dir = path.join(scratch, 'stack');
  const ports = await Promise.all(Array.from({ length: 7 }, () => freePort()));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'ports.json'), JSON.stringify(ports));
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 + 2 * i]}`;
  const initialCluster = [0, 1, 2].map((i) => `node-${i + 1}=${peer(i)}`).join(',');
  for (let i = 0; i < 3; i++) {
    const args = ['snapshot', 'restore', raw, `--data-dir=${path.join(dir, `agent-${i + 1}`, 'etcd')}`, `--name=node-${i + 1}`, `--initial-cluster=${initialCluster}`, `--initial-advertise-peer-urls=${peer(i)}`, '--initial-cluster-token=etcdsnap-stack'];
    assertOk('etcdctl snapshot restore (set-up)', await runTimed('etcdctl', args, { env: ETCDCTL_ENV, scratch }));
  }
  const stack = await startStack({ dir, nodes: 3 });
  const cliEnv = { ETCDSNAP_CONFIG: path.join(dir, 'cli-config.json') };
  const rounds: Round[] = [];
  try {
    await stack.join('bench', ['--no-enabled', '--kubernetes-version', 'v1.30.4+rke2r1']);
    for (const until = Date.now() + 180_000; ; ) {
      const ls = JSON.parse((await stack.cli(['cluster', 'ls', '-o', 'json'])).stdout) as { nodes: { healthy: number } }[];
      if (ls[0]?.nodes.healthy === 3) break;
      if (Date.now() > until) throw new Error('the stack did not become healthy');
      await new Promise((r) => setTimeout(r, 500));
    }
    const save = assertOk('etcdsnap snapshot save', await runTimed(process.execPath, [CLI, 'snapshot', 'save', 'bench', '--wait', '--name', 'bench'], { env: cliEnv, scratch }));
    log(`one-time snapshot through etcdsnap: ${save.wallSec.toFixed(1)} s`);
    const records = JSON.parse((await stack.cli(['snapshot', 'ls', 'bench', '-o', 'json'])).stdout) as { name: string; node: string; storage: string; size: number }[];
    const snap = records.find((r) => r.node === 'node-1' && r.name.startsWith('bench-'));
    if (!snap) throw new Error('no snapshot of node-1');
    log(`restoring ${snap.name} (${fmt.mib(snap.size)} MiB stored)`);

    for (let round = 1; round <= runs; round++) {
      const order = round % 2 === 1 ? ['baseline', 'floor3', 'etcdsnap'] : ['etcdsnap', 'floor3', 'baseline'];
      const r: Partial<Round> = { round, loadavg: loadavg() };
      for (const which of order) {
        if (which === 'baseline') {
          const dataDir = path.join(scratch, `baseline-${round}`);
          const restored = assertOk('etcdctl snapshot restore', await runTimed('etcdctl', ['snapshot', 'restore', raw, `--data-dir=${dataDir}`, '--name=b', '--initial-cluster=b=http://127.0.0.1:1', '--initial-advertise-peer-urls=http://127.0.0.1:1'], { env: ETCDCTL_ENV, scratch }));
          const [client, peerPort] = [await freePort(), await freePort()];
          const t0 = process.hrtime.bigint();
          const member = await startMember({
            name: 'b',
            dataDir,
            clientUrl: `http://127.0.0.1:${client}`,
            peerUrl: `http://127.0.0.1:${peerPort}`,
            initialCluster: `b=http://127.0.0.1:${peerPort}`,
            initialClusterState: 'new',
            initialClusterToken: 'bench',
          });
          try {
            await waitHealthy([`http://127.0.0.1:${client}`], 180_000);
          } finally {
            await member.stop();
          }
          r.baselineRestoreSec = restored.wallSec;
          r.baselineStartSec = Number(process.hrtime.bigint() - t0) / 1e9;
          r.baselineSec = r.baselineRestoreSec + r.baselineStartSec;
          await removeNow(dataDir);
          log(`round ${round} baseline: etcdctl restore ${r.baselineRestoreSec.toFixed(1)} s + member start ${r.baselineStartSec.toFixed(1)} s`);
        } else if (which === 'floor3') {
          const t0 = process.hrtime.bigint();
          const ports3 = await Promise.all(Array.from({ length: 6 }, () => freePort()));
          const peers = [0, 1, 2].map((i) => `f${i}=http://127.0.0.1:${ports3[2 * i + 1]}`).join(',');
          const dirs = [0, 1, 2].map((i) => path.join(scratch, `floor-${round}-${i}`));
          await Promise.all(
            [0, 1, 2].map(async (i) =>
              assertOk('etcdctl snapshot restore (3 at once)', await runTimed('etcdctl', ['snapshot', 'restore', raw, `--data-dir=${dirs[i]}`, `--name=f${i}`, `--initial-cluster=${peers}`, `--initial-advertise-peer-urls=http://127.0.0.1:${ports3[2 * i + 1]}`, '--initial-cluster-token=floor'], { env: ETCDCTL_ENV, scratch })),
            ),
          );
          const members = await Promise.all(
            [0, 1, 2].map((i) =>
              startMember({ name: `f${i}`, dataDir: dirs[i] as string, clientUrl: `http://127.0.0.1:${ports3[2 * i]}`, peerUrl: `http://127.0.0.1:${ports3[2 * i + 1]}`, initialCluster: peers, initialClusterState: 'new', initialClusterToken: 'floor' }),
            ),
          );
          try {
            await waitHealthy([0, 1, 2].map((i) => `http://127.0.0.1:${ports3[2 * i]}`), 180_000);
          } finally {
            await Promise.all(members.map((mm) => mm.stop()));
          }
          r.floor3Sec = Number(process.hrtime.bigint() - t0) / 1e9;
          for (const d of dirs) await removeNow(d);
          log(`round ${round} 3 members on this host: 3 etcdctl restores at once + 3 members started: ${r.floor3Sec.toFixed(1)} s`);
        } else {
          const run = assertOk('etcdsnap snapshot restore', await runTimed(process.execPath, [CLI, 'snapshot', 'restore', 'bench', snap.name, '--mode', 'etcd', '--yes', '--wait', '-o', 'json'], { env: cliEnv, scratch }));
          const ops = JSON.parse((await stack.cli(['operation', 'ls', 'bench', '-o', 'json'])).stdout) as Operation[];
          const op = ops.filter((o) => o.kind === 'restore').sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0] as Operation;
          if (op.phase !== 'Finished') throw new Error(`restore ended ${op.phase}: ${op.message ?? ''}`);
          r.etcdsnapSec = run.wallSec;
          r.operationSec = (Date.parse(op.finishedAt as string) - Date.parse(op.createdAt)) / 1000;
          r.phases = phaseDurations(op);
          r.downtimeSec = (r.phases.Shutdown ?? 0) + (r.phases.Restore ?? 0) + (r.phases.RestartCluster ?? 0);
          r.history = op.history;
          log(`round ${round} etcdsnap: ${run.wallSec.toFixed(1)} s (operation ${r.operationSec.toFixed(1)} s; ${Object.entries(r.phases).map(([p, s]) => `${p} ${s.toFixed(1)} s`).join(', ')})`);
        }
      }
      rounds.push(r as Round);
    }
  } finally {
    await stack.stop();
  }

  const base = median(rounds.map((r) => r.baselineSec));
  const ours = median(rounds.map((r) => r.etcdsnapSec));
  const phases = ['Started', 'Shutdown', 'Restore', 'RestartCluster'];
  process.stdout.write(`\n${describeMachine(m)}\nDB ${fmt.mib(seeded.dbSize)} MiB, ${seeded.keys} keys; 3-member cluster; ${runs} round(s)\n\n`);
  process.stdout.write(
    `${markdownTable(
      ['round', 'etcdctl restore + member start (s)', 'etcdsnap restore, request → Finished (s)', 'ratio', '3 members on this host: 3 restores + 3 starts (s)', 'ratio to that', ...phases.map((p) => `${p} (s)`), 'members down (s)', 'load'],
      rounds.map((r) => [
        r.round,
        `${r.baselineRestoreSec.toFixed(1)} + ${r.baselineStartSec.toFixed(1)} = ${r.baselineSec.toFixed(1)}`,
        `${r.etcdsnapSec.toFixed(1)} (op ${r.operationSec.toFixed(1)})`,
        (r.etcdsnapSec / r.baselineSec).toFixed(2),
        r.floor3Sec.toFixed(1),
        (r.etcdsnapSec / r.floor3Sec).toFixed(2),
        ...phases.map((p) => (r.phases[p] ?? 0).toFixed(1)),
        r.downtimeSec.toFixed(1),
        r.loadavg,
      ]),
    )}\n`,
  );
  process.stdout.write(`\nmedian: baseline ${base.toFixed(1)} s, etcdsnap ${ours.toFixed(1)} s → ${(ours / base).toFixed(2)}× (goal ≤ ${GOAL}×: ${ours / base <= GOAL ? 'met' : 'NOT met'})\n`);
  await writeJson(opts.json, { machine: m, dbSize: seeded.dbSize, keys: seeded.keys, rounds });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
