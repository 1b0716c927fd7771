// What the browser drives (drive.mjs, drive_admin.mjs, drive_metrics.mjs) share: Chromium from
// playwright-core, the console's URL and the artifacts folder from the environment (WEB_URL,
// WEB_ARTIFACTS, CHROMIUM), the check tally, waiting, screenshots and the token login.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { chromium } = createRequire(join(root, 'web', 'package.json'))('playwright-core');

export const url = process.env.WEB_URL;
export const artifacts = process.env.WEB_ARTIFACTS;
const tally = { passed: 0, failed: 0 };

// Counts one check; prints "FAIL: what" when cond is false. Returns cond.
export function check(cond, what) {
  if (cond) tally.passed += 1;
  else {
    tally.failed += 1;
    console.log(`FAIL: ${what}`);
  }
  return cond;
}

// Waits for fn() to hold; false after ms.
export async function until(fn, ms, every = 100) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, every));
  }
  return false;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

// Logs in with an API token (the login page's token form).
export async function login(page, token) {
  await page.goto(url);
  await page.click('#mode-token');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('#who', { timeout: 10000 });
}

// A headless Chromium with one page, and the script errors and CSP violations it logs.
export async function browse(viewport = { width: 1100, height: 760 }) {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  // Which request failed, for whoever reads a failure (Chromium's message names none).
  page.on('response', (r) => {
    if (r.status() >= 400) console.log(`  (${r.status()} from ${r.request().method()} ${new URL(r.url()).pathname})`);
  });
  return { browser, page, problems };
}

// The last line the Python side reads: "NAME: N passed, N failed"; the exit status.
export function finish(name) {
  console.log(`${name}: ${tally.passed} passed, ${tally.failed} failed`);
  return tally.failed ? 1 : 0;
}
