// Drives the web console's dashboard, graphs and console fit in Debian's Chromium (headless,
// through playwright-core); run by test_web_metrics.py, which starts tesserad with tenant acme
// and its running, booted VM 'spin'. Settings from the environment: WEB_URL, WEB_ADMIN
// (acme's tenant-admin), WEB_PLATFORM (tokens), WEB_ARTIFACTS, CHROMIUM. Prints "FAIL: ..."
// per failed check and one last line "drive-metrics: N passed, N failed".
import { browse, check, finish, login, shot, until } from './common.mjs';

// What a chart plots now: its first line's newest value (null when it has none), every
// line's, and how many points.
async function chart(page, id) {
  return page.evaluate((sel) => {
    const f = document.querySelector(sel);
    if (!f) return { latest: null, all: [], points: 0 };
    const num = (t) => (t === '' ? null : Number(t));
    return { latest: num(f.dataset.latest), all: f.dataset.latestAll.split(',').map(num), points: Number(f.dataset.points) };
  }, `#${id}`);
}

// The CPU graph's load: what the guest used and what it waited for (a busy host gives a
// spinning guest only part of a core; docs/daemon.md "Metric history").
const load = (c) => (c.all[0] === null ? null : c.all[0] + (c.all[1] || 0));

async function text(page, sel) {
  return (await page.locator(sel).count()) ? (await page.textContent(sel)).trim() : '';
}

// The platform administrator's dashboard: the tenants, the host's CPU graph drawn from the
// history, and the chosen tenant's VMs by state.
async function platform(page) {
  await login(page, process.env.WEB_PLATFORM);
  check(await until(async () => /2 tenants/.test(await text(page, '#dash-tenants')), 10000),
    `the dashboard counts the tenants (${await text(page, '#dash-tenants')})`);
  check(await until(async () => (await chart(page, 'graph-host-cpu')).points >= 2, 10000),
    'the host CPU graph plots the history');
  const host = await chart(page, 'graph-host-cpu');
  check(host.latest !== null && host.latest >= 0 && host.latest <= 100, `host CPU is a percentage (${host.latest})`);
  check(await page.locator('#graph-host-cpu canvas').count() >= 1, 'the host graph is drawn (a canvas)');
  await page.selectOption('#tenant', 'acme');
  check(await until(async () => (await text(page, '[data-state-count=running]')) === '1', 10000),
    'acme: one VM running on the dashboard');
  check(await until(async () => (await page.locator('#alloc-vcpus meter').count()) === 1, 10000),
    'an allocation bar for vCPUs');
  await shot(page, 'm01-dashboard-platform');
  await page.click('#logout');
}

async function tenant(page) {
  await login(page, process.env.WEB_ADMIN);
  check(await until(async () => (await text(page, '#dash-vm-total')) === '1' &&
    (await text(page, '[data-state-count=running]')) === '1', 10000), 'the dashboard shows 1 VM, running');
  check(await page.locator('#dash-tenants').count() === 0 && await page.locator('#graph-host-cpu').count() === 0,
    "a tenant's admin sees neither the tenants nor the host's graph");
  check(await until(async () => (await page.locator('#quota-vms').count()) === 1, 10000), "the tenant's quota bars");
  check(await until(async () => (await page.locator('#dash-events li').count()) >= 1, 10000), 'recent changes are listed');
  await shot(page, 'm02-dashboard-tenant');
  await page.click('a[href="#/vms"]');
  check(await until(async () => (await page.locator('tr[data-vm=spin]').count()) === 1 &&
    (await page.locator('#dash-vms').count()) === 0, 5000), 'the VM list alone at #/vms');

  // The VM's page: its graphs fill from the history; the guest idles.
  await page.click('tr[data-vm=spin] a');
  check(await until(async () => (await chart(page, 'graph-cpu')).points >= 3, 10000), "the VM's CPU graph plots the history");
  for (const id of ['graph-memory', 'graph-disk', 'graph-iops', 'graph-net']) {
    check((await chart(page, id)).points >= 3, `${id} plots too`);
  }
  const mem = await chart(page, 'graph-memory');
  check(mem.latest > 1048576, `the memory graph plots the VMM's resident memory (${mem.latest})`);
  const idle = await chart(page, 'graph-cpu');
  check(load(idle) !== null && load(idle) < 30, `an idle guest's CPU is low (${idle.all}%)`);
  await shot(page, 'm03-vm-graphs-idle');

  // The console fills its box, and follows the window.
  await page.click('#open-console');
  check(await until(async () => (await text(page, '#console-status')) === 'connected', 15000), 'the console connects');
  const cols = async () => Number(await page.getAttribute('.term', 'data-cols'));
  const wide = await cols();
  check(wide > 80, `the terminal fills a 1200 px window (${wide} columns)`);
  await shot(page, 'm04-console-wide');
  await page.setViewportSize({ width: 640, height: 700 });
  check(await until(async () => (await cols()) < wide * 0.7, 5000),
    `a narrower window gives fewer columns (${wide} -> ${await cols()})`);
  console.log(`the console: ${wide} columns at 1200 px, ${await cols()} at 640 px`);
  await shot(page, 'm05-console-narrow');
  await page.setViewportSize({ width: 1200, height: 800 });
  // Back to the width it had, give or take the page's scroll bar.
  check(await until(async () => Math.abs((await cols()) - wide) <= 3, 5000), `and back (${wide} -> ${await cols()})`);

  // A CPU-bound loop typed in the console; back on the VM's page the CPU graph shows it.
  await page.click('.term');
  await page.keyboard.type('echo go\r');
  await until(async () => /go\s*\n?.*#/.test(await page.locator('.xterm-rows').textContent()), 5000);
  await page.keyboard.type('while :; do :; done\r');
  const t0 = Date.now();
  await page.click('a[href="#/vm/spin"]');
  // What the graph plotted meanwhile, for whoever finds it slow: when each new value came.
  const trace = [];
  const busy = await until(async () => {
    const c = await chart(page, 'graph-cpu');
    const key = c.all.join(',');
    if (!trace.length || trace[trace.length - 1].key !== key) trace.push({ ms: Date.now() - t0, key, c });
    return load(c) > 50;
  }, 10000);
  const ms = Date.now() - t0;
  const pct = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(0)}%`);
  console.log(`the CPU graph showed the load ${ms} ms after the loop was typed: ${
    trace.map((e) => `${e.ms} ms used ${pct(e.c.all[0])} waited ${pct(e.c.all[1])}`).join(', ')}`);
  check(busy && ms <= 5000, `the CPU graph shows the load within 5 s (${busy ? ms : 'never in 10000'} ms)`);
  check(/%/.test(await text(page, '#graph-cpu .now')), 'its caption says the number too');
  await shot(page, 'm06-vm-graphs-busy');
  await page.click('#logout');
}

async function main() {
  const { browser, page, problems } = await browse({ width: 1200, height: 800 });
  try {
    await platform(page);
    await tenant(page);
  } catch (e) {
    check(false, `the browser run stopped: ${e.message}`);
    await shot(page, 'm99-failure').catch(() => {});
  } finally {
    await browser.close();
  }
  check(problems.length === 0, `no script errors or CSP violations in the page: ${problems.join(' | ')}`);
  process.exit(finish('drive-metrics'));
}

main();
