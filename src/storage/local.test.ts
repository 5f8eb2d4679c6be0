import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runTargetContract } from '../../test/contract/target-contract.js';
import { LocalTarget } from './local.js';

async function walk(dir: string, root = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, root)));
    else out.push(relative(root, p));
  }
  return out.sort();
}

runTargetContract('local disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'etcdsnap-local-'));
  return {
    target: new LocalTarget({ dir }),
    leftovers: () => walk(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
