import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, tempDir } from '../harness/index.js';
import { FakeControlPlane, waitFor } from './agent-fake-server.js';

/**
 * `etcdsnap agent` as a real process (the command as the CLI registers it): flag errors,
 * SIGKILL of the agent (its managed etcd is left running and is taken over by the next run),
 * a finished task not repeated across the crash, and a clean SIGTERM shutdown.
 */
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const RUNNER = `
import { Command } from 'commander';
import { agentCommand } from ${JSON.stringify(pathToFileURL(join(repo, 'dist/src/cli/agent-command.js')).href)};
import { toEtcdsnapError } from ${JSON.stringify(pathToFileURL(join(repo, 'dist/src/core/errors.js')).href)};
const program = new Command('etcdsnap').exitOverride();
program.addCommand(agentCommand().exitOverride());
try {
  await program.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (err) {
  if (String(err?.code ?? '').startsWith('commander.')) process.exit(2);
  const e = toEtcdsnapError(err);
  process.stderr.write('error: ' + e.toLine() + '\\n');
  process.exitCode = e.code === 'INVALID_CONFIG' ? 2 : 1;
}
`;

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function agentProcess(args: string[]): Proc {
  const child = spawn(process.execPath, ['--input-type=module', '-e', RUNNER, 'agent', ...args], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exited };
}

/** Running (not a zombie), per /proc. */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('etcdsnap agent as a process', () => {
  let cp: FakeControlPlane;
  let root: string;
  let args: string[];
  const procs: Proc[] = [];
  const etcdPids = new Set<number>();

  before(async () => {
    cp = await FakeControlPlane.start({ policy: { enabled: false } });
    root = await tempDir('etcdsnap-agent-proc-');
    const [client, peer] = [await freePort(), await freePort()];
    args = [
      '--server', cp.url,
      '--registration-token', cp.registrationToken,
      '--node-name', 'solo',
      '--data-dir', join(root, 'agent'),
      '--etcd-client-url', `http://127.0.0.1:${client}`,
      '--etcd-peer-url', `http://127.0.0.1:${peer}`,
      '--report-interval', '500ms',
      '--jitter', '0',
      '--log-level', 'warn',
    ];
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    for (const pid of etcdPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await cp?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a bad flag stops it at once with INVALID_CONFIG naming the flag (exit 2)', async () => {
    const p = agentProcess([...args, '--etcd-client-url', 'localhost:2379']);
    procs.push(p);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /INVALID_CONFIG: Invalid agent setting --etcd-client-url/);
  });

  it('SIGKILL of the agent: the next run takes over its etcd, does not repeat the finished task; SIGTERM stops cleanly', async () => {
    const pidFile = join(root, 'agent', 'etcd.pid');
    const first = agentProcess(args);
    procs.push(first);
    await waitFor('registered, healthy', () => cp.nodes.has('solo') && cp.lastReport('solo')?.member.state === 'healthy', 30_000);
    cp.addTask('solo', { id: 'pt1', kind: 'snapshot', operationId: 'o1' });
    await waitFor('task done', () => cp.taskStatus('solo', 'pt1')?.state === 'succeeded');
    const etcd1 = Number((await readFile(pidFile, 'utf8')).trim());
    etcdPids.add(etcd1);

    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(alive(etcd1), 'etcd outlives an agent killed with SIGKILL');

    const reportsBefore = cp.reportsOf('solo').length;
    const second = agentProcess(args);
    procs.push(second);
    await waitFor('the restarted agent reports a healthy member', () => cp.reportsOf('solo').length > reportsBefore && cp.lastReport('solo')?.member.state === 'healthy', 30_000);
    const etcd2 = Number((await readFile(pidFile, 'utf8')).trim());
    etcdPids.add(etcd2);
    assert.notEqual(etcd2, etcd1);
    assert.equal(alive(etcd1), false, 'the orphaned member was stopped');
    const after = cp.reportsOf('solo').slice(reportsBefore);
    // Delivery is at least once: a report accepted just before the kill may come again (the
    // server upserts by location), but no new snapshot was taken.
    const taken = new Set(cp.reportsOf('solo').slice(0, reportsBefore).flatMap((r) => r.snapshots.map((x) => x.location)));
    assert.ok(after.every((r) => r.snapshots.every((x) => taken.has(x.location))), 'no second snapshot');
    assert.equal((await readdir(join(root, 'agent', 'snapshots'))).filter((f) => !f.startsWith('.')).length, 1);
    assert.ok(after.some((r) => r.tasks.some((t) => t.id === 'pt1' && t.state === 'succeeded')));
    assert.equal(cp.node('solo').registrations, 1);

    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.stderr());
    assert.equal(alive(etcd2), false, 'SIGTERM stops the managed member');
    assert.equal(existsSync(pidFile), false);
  });
});
