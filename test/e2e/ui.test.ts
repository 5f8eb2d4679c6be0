import assert from 'node:assert/strict';
import { access, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Cluster, Operation, SnapshotRecord } from '../../src/core/api.js';
import { dumpAll, fillKubernetesLike, keyCountsByResource, tempDir, type Dump } from '../harness/index.js';
import { assertSameData, dumpMembers, mutate } from '../harness/restore-e2e.js';
import { collectErrors, launchChromium, newPage, screenshot, SCREENSHOTS } from '../harness/browser.js';
import { startS3rver, type S3rverHandle } from '../harness/s3rver.js';
import { startStack, type Stack } from '../harness/stack.js';
import { until } from '../harness/until.js';


/**
 * The web UI in Debian's chromium against real processes: `etcdsnap server` (serving the built
 * UI), three agents and their etcd members. Screenshots: test-output/screenshots/ui-*.png.
 */
describe('web UI (chromium, server + 3 agents + 3 etcd members)', () => {
  let dir: string;
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  /** etcd's keyspace when the one-time snapshot was taken (what a restore brings back). */
  let atSnapshot: Dump;
  let s3: S3rverHandle | undefined;

  const json = async <T>(args: string[]): Promise<T> => {
    const r = await stack.cli([...args, '-o', 'json']);
    assert.equal(r.code, 0, `etcdsnap ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const cluster = (): Promise<Cluster> => json<Cluster[]>(['cluster', 'ls']).then((l) => l.find((c) => c.name === 'prod') as Cluster);
  const records = (): Promise<SnapshotRecord[]> => json<SnapshotRecord[]>(['snapshot', 'ls', 'prod']);

  before(async () => {
    await access(join(process.cwd(), 'dist', 'ui', 'index.html')).catch(() => {
      throw new Error('The web UI is not built: run scripts/setup.sh (or npm run build:ui) first.');
    });
    dir = await tempDir('etcdsnap-ui-e2e-');
    stack = await startStack({ dir, nodes: 3 });
    await stack.join('prod', ['--kubernetes-version', 'v1.30.4+rke2r1', '--no-enabled']);
    await until('3 healthy nodes', async () => (await cluster()).nodes.healthy === 3, 60_000);
    await fillKubernetesLike(stack.nodes.map((n) => n.clientUrl), { totalBytes: 512 * 1024 });
    browser = await launchChromium();
    ({ context, page } = await newPage(browser));
    errors = collectErrors(page);
  });
  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await stack?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sign in: a wrong token is refused with a message, the admin token opens the clusters list', async () => {
    await page.goto(`${stack.url}/`);
    await page.getByLabel('Admin token').fill('esa_not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const err = page.locator('#token-error');
    await err.waitFor();
    assert.match(await err.innerText(), /refused/);
    await screenshot(page, '01-signin-error');
    await page.getByLabel('Admin token').fill(stack.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const row = page.locator('tr[data-cluster="prod"]');
    await row.waitFor();
    assert.match(await row.innerText(), /v1\.30\.4\+rke2r1/);
    await until('3/3 healthy on the page', async () => /3\/3 healthy/.test(await row.innerText()));
    // (Page-side code as strings: the test tsconfig has no DOM types.)
    assert.equal(await page.evaluate('sessionStorage.length'), 1, 'the token is kept in sessionStorage');
    assert.equal(await page.evaluate('localStorage.length'), 0, 'nothing in localStorage');
    await screenshot(page, '02-clusters');
  });

  it('settings: an invalid cron is explained inline and not saved; a valid one is previewed and saved', async () => {
    await page.locator('tr[data-cluster="prod"] a').click();
    await page.getByRole('link', { name: 'Settings' }).click();
    const schedule = page.getByLabel('Schedule', { exact: true });
    await schedule.fill('61 * * * *');
    const preview = page.getByTestId('schedule-preview');
    await until('the inline error', async () => /Invalid schedule/.test(await preview.innerText()));
    assert.equal(await schedule.getAttribute('aria-invalid'), 'true');
    await page.getByRole('button', { name: 'Save settings' }).click();
    assert.match(await preview.innerText(), /Invalid schedule "61 \* \* \* \*"/);
    await screenshot(page, '03-settings-invalid');
    assert.equal((await cluster()).policy.schedule, '0 */5 * * *', 'nothing was saved');

    await schedule.fill('0 */6 * * *');
    await until('the preview', async () => /Next: /.test(await preview.innerText()));
    const text = await preview.innerText();
    assert.equal(text.split(' · ').length, 3, `three next runs: ${text}`);
    await page.getByLabel('Local snapshots kept per node').fill('7');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    const saved = await cluster();
    assert.equal(saved.policy.schedule, '0 */6 * * *');
    assert.equal(saved.policy.retention, 7);
    assert.equal(saved.policy.enabled, false, 'fields left alone keep their value');
    await screenshot(page, '04-settings-saved');
  });

  it('Snapshot now: the operation goes through its phases live, then a row per node appears', async () => {
    await page.getByRole('link', { name: 'Snapshots' }).click();
    const button = page.getByRole('button', { name: 'Snapshot now' });
    await until('Snapshot now enabled', () => button.isEnabled());
    // Collect every phase the page shows (from the event stream), from the click on.
    await page.evaluate(`(() => {
      const seen = (window.seenPhases = []);
      const note = () => {
        const p = document.querySelector('section.panel [data-operation]')?.getAttribute('data-phase');
        if (p && seen[seen.length - 1] !== p) seen.push(p);
      };
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-phase'] });
    })()`);
    await button.click();
    await page.waitForSelector('section.panel [data-operation][data-phase="Finished"]', { timeout: 60_000 });
    atSnapshot = await dumpAll(stack.nodes[0]!.clientUrl);
    const seen = (await page.evaluate('window.seenPhases')) as string[];
    assert.equal(seen[0], 'Started', `phases seen: ${seen.join(' → ')}`);
    assert.equal(seen[seen.length - 1], 'Finished', `phases seen: ${seen.join(' → ')}`);
    assert.ok(seen.every((p) => ['Started', 'RestartCluster', 'Finished'].includes(p)), seen.join(' → '));
    assert.equal(await page.locator('section.panel .stepper .step.done').count(), 3);
    await until('a row per node', async () => (await page.locator('tr[data-name^="on-demand-"]').count()) === 3);
    const nodes = await page.locator('tr[data-name^="on-demand-"] td:nth-child(3)').allInnerTexts();
    assert.deepEqual(nodes.sort(), ['node-1', 'node-2', 'node-3']);
    await screenshot(page, '05-snapshots');
  });

  it('search and the location filter narrow the list', async () => {
    await page.getByLabel('Search').fill('node-2');
    assert.equal(await page.locator('tbody tr[data-name]').count(), 1);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Location').selectOption('s3');
    await page.getByText('No snapshot matches.').waitFor();
    await page.getByLabel('Location').selectOption('all');
    assert.equal(await page.locator('tbody tr[data-name]').count(), 3);
  });

  it('Inspect shows the metadata and the keys per resource', async () => {
    const counts = await keyCountsByResource(stack.nodes[0]!.clientUrl);
    const [top, n] = Object.entries(counts.byResource).sort((a, b) => b[1] - a[1])[0]!;
    const row = page.locator('tr[data-name^="on-demand-node-1-"]');
    await row.getByRole('button', { name: /^Inspect/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const text = await dialog.innerText();
    assert.match(text, /Kubernetes version\s+v1\.30\.4\+rke2r1/);
    assert.match(text, /etcd version\s+3\./);
    assert.match(text, /sha256 \(stored\)\s+[0-9a-f]{64}/);
    assert.match(text, new RegExp(`Content: ${counts.keys} keys`));
    assert.equal(await dialog.locator('table.summary tr', { has: page.locator(`th:text-is("${top}")`) }).locator('td').innerText(), String(n));
    await screenshot(page, '06-inspect');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('Delete asks first, then the node deletes the file and the row goes', async () => {
    const victim = (await records()).find((r) => r.node === 'node-3' && r.name.startsWith('on-demand-')) as SnapshotRecord;
    const row = page.locator(`tr[data-record="${victim.id}"]`);
    await row.getByRole('button', { name: /^Delete/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete snapshot' });
    assert.match(await dialog.innerText(), new RegExp(victim.name.replace(/\./g, '\\.')));
    await screenshot(page, '07-delete-confirm');
    await dialog.getByRole('button', { name: 'Delete snapshot' }).click();
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    const files = await readdir(stack.nodes[2]!.snapshotDir);
    assert.ok(!files.includes(victim.name), `${victim.name} still on node-3`);
    assert.ok(!(await records()).some((r) => r.id === victim.id));
  });

  it('Nodes tab: member, health, etcd version, DB size, last seen, agent version', async () => {
    await page.getByRole('link', { name: 'Nodes' }).click();
    await page.locator('table.nodes tr[data-node="node-3"]').waitFor();
    for (const name of ['node-1', 'node-2', 'node-3']) {
      const cells = await page.locator(`table.nodes tr[data-node="${name}"] > *`).allInnerTexts();
      assert.equal(cells[0], name);
      assert.equal(cells[1], name, 'member name');
      assert.equal(cells[2], 'healthy');
      assert.match(cells[3] ?? '', /^3\.\d+\.\d+/);
      assert.match(cells[4] ?? '', /(KiB|MiB)$/);
      assert.match(cells[5] ?? '', /ago|just now/);
      assert.match(cells[6] ?? '', /\d+\.\d+\.\d+ \(managed\)/);
    }
    await screenshot(page, '08-nodes');
  });

  it('Operations tab lists history; an operation opens in its own view', async () => {
    await page.getByRole('link', { name: 'Operations' }).click();
    const first = page.locator('table.operations tbody tr').first();
    await first.waitFor();
    assert.match(await first.innerText(), /one-time snapshot\s+Finished/);
    await screenshot(page, '09-operations');
    await first.locator('a').click();
    await page.waitForURL(/\/operations\//);
    await page.locator('[data-operation][data-phase="Finished"]').waitFor();
    assert.equal(await page.locator('table.steps tbody tr').count(), 3);
    await screenshot(page, '10-operation');
  });

  /** Records every phase shown by the operation on screen (cluster panel or operation page). */
  const watchPhases = (): Promise<unknown> =>
    page.evaluate(`(() => {
      const seen = (window.seenPhases = []);
      const note = () => {
        const p = document.querySelector('main .operation[data-phase]')?.getAttribute('data-phase');
        if (p && seen[seen.length - 1] !== p) seen.push(p);
      };
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-phase'] });
      note();
    })()`);
  const seenPhases = async (): Promise<string[]> => (await page.evaluate('window.seenPhases')) as string[];
  const healthy = (): Promise<boolean> => cluster().then((c) => c.nodes.healthy === 3 && c.runningOperationId === null);

  /** Opens the restore dialog of node-1's on-demand snapshot, keeps "etcd only", confirms with the name. */
  const startRestoreFromUi = async (shot?: string): Promise<void> => {
    await page.goto(`${stack.url}/clusters/prod`);
    await until('Snapshot now enabled (cluster healthy, idle)', () => page.getByRole('button', { name: 'Snapshot now' }).isEnabled(), 60_000);
    await page.locator('tr[data-name^="on-demand-node-1-"]').getByRole('button', { name: /^Restore/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore prod' });
    await dialog.waitFor();
    const radios = dialog.getByRole('radio');
    assert.equal(await radios.count(), 2, 'the snapshot has a version but no config: two modes');
    assert.ok(await dialog.getByRole('radio', { name: /^etcd only/ }).isChecked(), 'etcd only by default');
    assert.ok(await dialog.getByRole('radio', { name: /^etcd and Kubernetes version/ }).isVisible());
    const changes = await dialog.getByTestId('restore-changes').innerText();
    assert.match(changes, /Kubernetes version: stays v1\.30\.4\+rke2r1/);
    assert.match(changes, /Cluster config: stays as it is/);
    const submit = dialog.getByRole('button', { name: 'Restore etcd only' });
    assert.ok(await submit.isDisabled(), 'disabled until the name is typed');
    await dialog.getByLabel(/Type the cluster name/).fill('pro');
    assert.ok(await submit.isDisabled());
    await dialog.getByLabel(/Type the cluster name/).fill('prod');
    assert.ok(await submit.isEnabled());
    if (shot) await screenshot(page, shot);
    await watchPhases();
    await submit.click();
    await page.waitForURL(/\/operations\//);
  };

  it('restore dialog, "etcd and Kubernetes version": the version change is shown before confirming; cancelling starts nothing', async () => {
    const edit = await stack.cli(['cluster', 'edit', 'prod', '--kubernetes-version', 'v1.31.2+rke2r1']);
    assert.equal(edit.code, 0, edit.stderr);
    try {
      await page.goto(`${stack.url}/clusters/prod`);
      await until('Snapshot now enabled (cluster healthy, idle)', () => page.getByRole('button', { name: 'Snapshot now' }).isEnabled(), 60_000);
      await page.locator('tr[data-name^="on-demand-node-1-"]').getByRole('button', { name: /^Restore/ }).click();
      const dialog = page.getByRole('dialog', { name: 'Restore prod' });
      await dialog.waitFor();
      const changes = dialog.getByTestId('restore-changes');
      await until('the current version in the dialog', async () => /Kubernetes version: stays v1\.31\.2\+rke2r1/.test(await changes.innerText()));
      await dialog.getByRole('radio', { name: /^etcd and Kubernetes version/ }).check();
      await until('the version change shown', async () => /Kubernetes version: v1\.31\.2\+rke2r1\s*→\s*v1\.30\.4\+rke2r1/.test(await changes.innerText()));
      assert.ok(await dialog.getByRole('button', { name: /^Restore etcd and Kubernetes version/ }).isVisible(), 'the button says what it restores');
      await screenshot(page, '12b-restore-dialog-version');
      const opsBefore = (await json<Operation[]>(['operation', 'ls', 'prod'])).length;
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });
      assert.equal((await json<Operation[]>(['operation', 'ls', 'prod'])).length, opsBefore, 'cancelling started no operation');
    } finally {
      await stack.cli(['cluster', 'edit', 'prod', '--kubernetes-version', 'v1.30.4+rke2r1']);
    }
  });

  it('restore "etcd only" from the dialog: the stepper goes live through every phase to Finished, and the data is back', async () => {
    await mutate(stack.nodes.map((n) => n.clientUrl), 'ui-after-snapshot');
    await startRestoreFromUi('12-restore-dialog');
    await page.waitForSelector('main .operation[data-phase="Finished"]', { timeout: 180_000 });
    const seen = await seenPhases();
    const order = ['Started', 'Shutdown', 'Restore', 'RestartCluster', 'Finished'];
    assert.deepEqual(seen.filter((p) => order.includes(p)), seen, `phases seen: ${seen.join(' → ')}`);
    assert.deepEqual([...seen].sort((a, b) => order.indexOf(a) - order.indexOf(b)), seen, `in order: ${seen.join(' → ')}`);
    assert.ok(seen.length >= 3 && seen.includes('Restore'), `phases seen live: ${seen.join(' → ')}`);
    assert.equal(await page.locator('main .stepper .step.done').count(), 5);
    await screenshot(page, '13-restore-finished');
    await until('healthy and idle after the restore', healthy, 120_000);
    assertSameData(await dumpMembers(stack), atSnapshot, 'after the restore from the UI');
  });

  it('a restore that fails (a corrupted copy on node-3) shows Failed, the node and "rolled back"; the data is as before', async () => {
    const restartAgent = async (i: number, args: string[]): Promise<void> => {
      await stack.stopAgent(i);
      (stack.nodes[i] as { extraArgs: string[] }).extraArgs = args;
      await stack.startAgent(i);
      await until('3 healthy nodes', healthy, 120_000);
    };
    // node-3's stop hook flips bytes of its staged copy: the restore fails after Shutdown.
    const staged = join(stack.nodes[2]!.dataDir, 'restores');
    await restartAgent(2, ['--stop-hook', `for f in ${staged}/*/snapshot.db; do printf 'CORRUPTCORRUPT' | dd of="$f" bs=1 seek=4096 conv=notrunc 2>/dev/null; done`]);
    try {
      await mutate(stack.nodes.map((n) => n.clientUrl), 'ui-before-failed-restore');
      const before = await dumpAll(stack.nodes[0]!.clientUrl);
      await startRestoreFromUi();
      await page.waitForSelector('main .operation[data-phase="Failed"]', { timeout: 180_000 });
      const failure = await page.locator('main .failure').innerText();
      assert.match(failure, /Failed on node-3/);
      assert.match(failure, /Rolled back/);
      assert.equal(await page.locator('main .stepper .step[data-phase="Failed"]').count(), 1);
      assert.equal(await page.locator('main .stepper .step.failed').count(), 2, 'the phase it failed in, and Failed');
      await screenshot(page, '14-restore-failed');
      await until('healthy and idle after the rollback', healthy, 120_000);
      assertSameData(await dumpMembers(stack), before, 'after the failed restore (rolled back)');
    } finally {
      await restartAgent(2, []);
    }
  });

  it('a reload on a client route keeps the page (server SPA fallback; the token survives in the tab)', async () => {
    await page.goto(`${stack.url}/clusters/prod/nodes`);
    await page.locator('table.nodes tr[data-node="node-1"]').waitFor();
  });

  it('a narrow window (390 px) still shows the snapshots and their actions', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${stack.url}/clusters/prod`);
    const restore = page.locator('tr[data-name^="on-demand-node-1-"]').getByRole('button', { name: /^Restore/ });
    await restore.scrollIntoViewIfNeeded();
    assert.ok(await restore.isVisible());
    assert.ok(await page.getByRole('button', { name: 'Snapshot now' }).isVisible());
    await screenshot(page, '11-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('settings with S3 over HTTPS and a custom CA: Test connection names the failing step, then works; saved; the secret is never shown again', async () => {
    const secret = 'S3RVER-SECRET-NEVER-SHOWN';
    s3 = await startS3rver({ https: true });
    await s3.createBucket('backups');
    await page.goto(`${stack.url}/clusters/prod/settings`);
    await page.getByLabel('Local and S3').check();
    await page.getByLabel('Bucket', { exact: true }).fill('no-such-bucket');
    await page.getByLabel('Endpoint', { exact: true }).fill(s3.endpoint);
    await page.getByLabel('Folder', { exact: true }).fill('prod');
    await page.getByLabel('Access key', { exact: true }).fill(s3.accessKeyId);
    await page.getByLabel('Secret key', { exact: true }).fill(secret);
    await page.getByLabel(/Custom CA/).fill(s3.ca as string);
    await page.getByLabel(/Path-style addressing/).check();
    await page.getByLabel('Skip TLS verification').check();
    await page.getByRole('alert').filter({ hasText: 'Any certificate will be accepted' }).waitFor();
    await page.getByLabel('Skip TLS verification').uncheck();
    await page.getByRole('button', { name: 'Test connection' }).click();
    const result = page.getByTestId('s3-test');
    await result.waitFor({ timeout: 60_000 });
    assert.match(await result.innerText(), /Failed at “\w+”: TARGET_BUCKET_NOT_FOUND/);
    await screenshot(page, '15-settings-s3-test-failed');
    await page.getByLabel('Bucket', { exact: true }).fill('backups');
    await page.getByRole('button', { name: 'Test connection' }).click();
    await result.waitFor({ timeout: 60_000 });
    assert.match(await result.innerText(), /Connection works\./);
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    const saved = (await cluster()).policy.s3;
    assert.equal(saved?.bucket, 'backups');
    assert.equal(saved?.hasSecretAccessKey, true);
    assert.equal(saved?.forcePathStyle, true);
    await page.reload();
    const secretField = page.getByLabel('Secret key', { exact: true });
    await secretField.waitFor();
    assert.equal(await secretField.inputValue(), '', 'the secret field starts empty');
    assert.match((await secretField.getAttribute('placeholder')) ?? '', /stored/);
    assert.ok(!(await page.content()).includes(secret), 'the secret is nowhere in the page');
    await screenshot(page, '16-settings-s3-saved');
  });

  it('the app logged no error', () => {
    // Refused requests (the wrong token) are logged by the browser itself; anything else is ours.
    assert.deepEqual(errors.filter((e) => !/Failed to load resource: the server responded with a status of 401/.test(e)), [], `screenshots in ${SCREENSHOTS}`);
  });
});
