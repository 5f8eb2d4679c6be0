/**
 * The demo of `./scripts/run.sh`: the etcdsnap server and a local cluster of three etcd
 * members, each supervised by its own etcdsnap agent, with Kubernetes-like data and a
 * recurring schedule. Prints the URL, the admin token and commands to try, then runs until
 * Ctrl-C. Data lives in .demo/stack and is reused by the next run.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillKubernetesLike } from '../test/harness/fill.js';
import { startStack } from '../test/harness/stack.js';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dir = join(root, '.demo', 'stack');
const basePort = Number(process.env.ETCDSNAP_DEMO_PORT ?? 18443);

function step(text: string): void {
  process.stdout.write(`\x1b[1m==> ${text}\x1b[0m\n`);
}

async function waitHealthy(cli: (a: string[]) => Promise<{ stdout: string }>): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const list = JSON.parse((await cli(['cluster', 'ls', '-o', 'json'])).stdout || '[]') as Array<{ name: string; nodes: { healthy: number } }>;
    if (list.find((c) => c.name === 'demo')?.nodes.healthy === 3) return;
    if (Date.now() > deadline) throw new Error('the demo cluster did not become healthy in 90 s; see the logs in .demo/stack/*.log');
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  const firstRun = !existsSync(join(dir, 'server'));
  step(firstRun ? 'Starting the etcdsnap server (first run: creating its CA and admin token)' : 'Starting the etcdsnap server on the data of the last run');
  const stack = await startStack({ dir, nodes: 3, basePort });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping agents, etcd members and the server…\n');
    await stack.stop();
    process.stdout.write('Stopped. Run it again to continue on the same data.\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  step('Starting three agents, each supervising its etcd member (managed mode)');
  const config = join(dir, 'cluster-config.yaml');
  await writeFile(config, 'cni: canal\ndisable:\n  - rke2-ingress-nginx\nwrite-kubeconfig-mode: "0644"\n');
  await stack.join('demo', ['--kubernetes-version', 'v1.30.4+rke2r1', '--cluster-config', config, '--schedule', '*/5 * * * *', '--retention', '5']);
  await waitHealthy(stack.cli);

  if (firstRun) {
    step('Filling etcd with 32 MiB of Kubernetes-like objects');
    const fill = await fillKubernetesLike(stack.nodes.map((n) => n.clientUrl), { totalBytes: 32 * 1024 * 1024 });
    process.stdout.write(`${fill.keys} keys\n`);
    step('Taking a one-time snapshot of every node (etcdsnap snapshot save demo --wait)');
    const r = await stack.cli(['snapshot', 'save', 'demo', '--wait']);
    process.stdout.write(r.stdout + r.stderr);
  }
  const ls = await stack.cli(['snapshot', 'ls', 'demo']);
  process.stdout.write(ls.stdout);

  const env = `ETCDSNAP_CONFIG=${join(dir, 'cli-config.json')}`;
  process.stdout.write(
    [
      '',
      `\x1b[32metcdsnap is running.\x1b[0m`,
      `  server       ${stack.url}   (its CA: sha256 ${stack.caChecksum})`,
      `  admin token  ${stack.adminToken}`,
      `  web UI       ${stack.url}/   (your browser will warn about the demo's own CA; sign in with the admin token)`,
      `  API          ${stack.url}/api/v1  (OpenAPI: /api/v1/openapi.json)`,
      `  etcd         ${stack.nodes.map((n) => n.clientUrl).join(' ')}`,
      `  schedule     every 5 minutes (*/5 * * * *), 5 kept per node`,
      '',
      'Try, in another terminal:',
      `  ${env} node bin/etcdsnap.js cluster show demo -o table`,
      `  ${env} node bin/etcdsnap.js snapshot save demo --wait`,
      `  ${env} node bin/etcdsnap.js snapshot ls demo`,
      `  ${env} node bin/etcdsnap.js snapshot restore demo <NAME from snapshot ls> --mode etcd --wait`,
      `  ${env} node bin/etcdsnap.js operation ls`,
      '',
      'Logs: .demo/stack/*.log. Ctrl-C stops everything; running it again reuses the data.',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
