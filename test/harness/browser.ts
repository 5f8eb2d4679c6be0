/**
 * Debian's chromium driven by playwright-core (no browser download): headless, trusting the
 * stack's self-signed server certificate, with screenshots under test-output/screenshots.
 */
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.ETCDSNAP_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  try {
    await access(CHROMIUM);
  } catch {
    throw new Error(`No chromium at ${CHROMIUM}: run scripts/setup.sh --browser (apt-get install chromium), or set ETCDSNAP_CHROMIUM.`);
  }
  // --no-sandbox: tests run as root in CI, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A fresh context (empty sessionStorage) at 1280×800 that accepts the test server's certificate. */
export async function newPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  return { context, page };
}

/** Saves a full-page PNG as test-output/screenshots/<prefix>-<name>.png and returns its path. */
export async function screenshot(page: Page, name: string, prefix = 'ui'): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${prefix}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Page errors and failed console messages, so a test can assert the app logged none. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}
