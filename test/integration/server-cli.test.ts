import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from '../harness/server.js';
import { tempDir } from '../harness/net.js';

/** `etcdsnap server` as a process: first start prints the admin token once, HTTPS by default, SIGTERM stops it cleanly. */

const commandModule = fileURLToPath(new URL('../../src/cli/server-command.js', import.meta.url));
const dirs: string[] = [];
const children = new Set<ChildProcess>();
after(async () => {
  // A failed assertion must not leave a server process behind.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function startServer(args: string[]): { child: ChildProcess; lines: Promise<{ token?: string; url: string; caLine: boolean }>; stdout: () => string; stderr: () => string } {
  const script = `import(${JSON.stringify(commandModule)}).then((m) => m.serverCommand().parseAsync(process.argv.slice(1), { from: 'user' })).catch((e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const lines = new Promise<{ token?: string; url: string; caLine: boolean }>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /etcdsnap server: (\S+)/.exec(out);
      if (m) resolve({ token: /admin token: (\S+)/.exec(out)?.[1], url: m[1] as string, caLine: /CA sha256 [0-9a-f]{64}/.test(out) });
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  return { child, lines, stdout: () => out, stderr: () => err };
}

function stopServer(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

test('first start: admin token printed once, HTTPS with its CA; restart: no token; SIGTERM exits 0', async () => {
  const dir = await tempDir('etcdsnap-server-cli');
  dirs.push(dir);
  const first = startServer(['--data-dir', dir, '--listen', '127.0.0.1:0', '--hostname', 'backup.example.test', '--log-level', 'warn', '--node-timeout', '2m']);
  const a = await first.lines;
  assert.match(a.token ?? '', /^esa_/);
  assert.match(a.url, /^https:\/\/backup\.example\.test:\d+$/);
  assert.ok(a.caLine);
  const port = new URL(a.url).port;
  const ca = await request(`https://127.0.0.1:${port}/cacerts`, { ca: undefined, headers: {} }).catch(() => undefined);
  assert.equal(ca, undefined, 'a client without the CA does not connect');
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, 'server.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'tls', 'ca-key.pem'))).mode & 0o777, 0o600);
  assert.equal(await stopServer(first.child), 0);
  assert.ok(!first.stderr().includes(a.token as string), 'the token is not logged');

  const second = startServer(['--data-dir', dir, '--listen', '127.0.0.1:0', '--insecure-http', '--log-level', 'warn']);
  const b = await second.lines;
  assert.equal(b.token, undefined, 'printed only at first start');
  const res = await request(`${b.url}/api/v1/clusters`, { token: a.token });
  assert.equal(res.status, 200);
  assert.equal(await stopServer(second.child), 0);
});

test('bad flags stop the start with a clear message', async () => {
  const dir = await tempDir('etcdsnap-server-cli');
  dirs.push(dir);
  const s = startServer(['--data-dir', dir, '--listen', 'nowhere', '--insecure-http']);
  await assert.rejects(s.lines, /Invalid listen address "nowhere"/);
});
