// Drives the console's admin and network views in Debian's Chromium (headless, through
// playwright-core) as people would; run by test_web_admin.py, which starts tesserad and makes
// tenant `other` (VM secret, group hidden-sg, network hidden). Settings from the environment:
// WEB_URL, WEB_PLATFORM (the platform administrator's token), WEB_ARTIFACTS, CHROMIUM,
// WEB_NETWORKS ("1" when networks can be made here). Prints "FAIL: ..." per failed check and
// one last line "drive-admin: N passed, N failed".
import { browse, check, finish, login, shot, until } from './common.mjs';

const nets = process.env.WEB_NETWORKS === '1';
const MiB = 1048576;

const count = (page, sel) => page.locator(sel).count();
const text = async (page, sel) => ((await count(page, sel)) ? page.textContent(sel) : '');
const go = (page, hash) => page.evaluate((h) => { location.hash = h; }, hash);

// Creates a token for user in the open tenant page; its secret, shown once.
async function makeToken(page, user) {
  await page.selectOption('#token-user', user);
  await page.click('#token-create');
  await page.waitForSelector('#new-token', { timeout: 10000 });
  const secret = (await page.textContent('#new-token')).trim();
  check(/^tsr_[0-9a-f]{16}_[0-9a-f]{64}$/.test(secret), `the new token's secret is shown for ${user}`);
  check(await until(async () => (await count(page, `tr[data-token="${secret.slice(4, 20)}"]`)) === 1, 10000),
    `${user}'s token is listed, by id`);
  await page.click('#new-token-box button');
  check(await count(page, '#new-token') === 0, 'the secret goes once dismissed');
  return secret;
}

// The platform administrator: tenants, a refused delete, corp's admin, quota and token.
async function asPlatform(page) {
  await login(page, process.env.WEB_PLATFORM);
  await page.click('#nav-admin');
  await page.waitForSelector('#tenants tr[data-tenant=other]');
  await page.fill('#tenant-new', 'corp');
  await page.click('#tenant-create');
  check(await until(async () => (await count(page, '#tenants tr[data-tenant=corp]')) === 1, 10000),
    'the new tenant corp is listed');
  await page.click('button[aria-label="delete tenant other"]');
  await page.click('#tenant-delete-confirm');
  check(await until(async () => /still owns/.test(await text(page, 'main .error')), 10000),
    `deleting a tenant that owns a VM shows the API's message (${await text(page, 'main .error')})`);
  check(await count(page, '#tenants tr[data-tenant=other]') === 1, 'the refused tenant stays listed');
  await shot(page, 'a01-tenants');

  await page.click('#tenants a[href="#/admin/corp"]');
  await page.waitForSelector('#user-form');
  await page.fill('#user-name', 'boss');
  await page.selectOption('#user-role', 'tenant-admin');
  await page.click('#user-create');
  check(await until(async () => (await count(page, '#users tr[data-user=boss]')) === 1, 10000), 'user boss is listed');
  await page.fill('#quota-vcpus', '2');
  await page.fill('#quota-memory_bytes', '384');
  await page.fill('#quota-disk_bytes', '');
  await page.fill('#quota-vms', '4');
  await page.click('#quota-save');
  check(await until(async () => (await text(page, '[data-quota=memory_bytes] .bar-text')) === '0 B of 384 MiB', 10000),
    `the quota's bars show the new limit (${await text(page, '[data-quota=memory_bytes] .bar-text')})`);
  check((await text(page, '[data-quota=disk_bytes] .bar-text')).includes('no limit'), 'a blank limit is no limit');
  check(await count(page, '#ext-form') === 0, 'the tenant page holds no network form');
  const boss = await makeToken(page, 'boss');
  await shot(page, 'a02-platform-tenant');
  await go(page, '#/networks');
  await page.waitForSelector('#ext-form');
  check(true, 'a platform administrator may declare external networks');
  await page.click('#logout');
  return boss;
}

// corp's tenant-admin: users, tokens, quota read-only, the create dialog's quota, networks.
async function asTenantAdmin(page, boss) {
  await login(page, boss);
  check((await page.textContent('#who')).includes('corp/boss (tenant-admin)'), 'the token made in the browser logs in');
  await page.click('#nav-admin');
  await page.waitForSelector('#users tr[data-user=boss]');
  check(await count(page, '#quota-form') === 0, "a tenant-admin sees its quota but no form to change it");
  check((await text(page, '[data-quota=vcpus] .bar-text')) === '0 of 2', 'the quota bars show to the tenant-admin');
  check(await count(page, 'select[aria-label="role of boss"]') === 0 &&
    await count(page, 'button[aria-label="delete user boss"]') === 0, 'no control to change or delete oneself');
  for (const [name, role] of [['opal', 'operator'], ['vera', 'viewer'], ['temp', 'viewer']]) {
    await page.fill('#user-name', name);
    await page.selectOption('#user-role', role);
    await page.click('#user-create');
    check(await until(async () => (await count(page, `#users tr[data-user=${name}]`)) === 1, 10000), `user ${name} is added`);
  }
  await page.fill('#user-name', 'opal');
  await page.click('#user-create');
  check(await until(async () => /already exists/.test(await text(page, 'main .error')), 10000),
    "a taken user name shows the API's message");
  const opal = await makeToken(page, 'opal');
  await page.click(`tr[data-token="${opal.slice(4, 20)}"] button`);
  check(await until(async () => /revoked/.test(await text(page, `tr[data-token="${opal.slice(4, 20)}"]`)), 10000),
    'Revoke revokes the token');
  const vera = await makeToken(page, 'vera');
  await page.selectOption('select[aria-label="role of opal"]', 'viewer');
  check(await until(async () => (await page.inputValue('select[aria-label="role of opal"]')) === 'viewer', 10000),
    "opal's role changes to viewer");
  // A password for vera, set by her tenant-admin (the test logs her in with it afterwards).
  await page.selectOption('#password-user', 'vera');
  await page.fill('#password-new', 'vera-password-1');
  await page.click('#password-set');
  check(await until(async () => /password of vera is set/.test(await text(page, '#password-done')), 10000),
    "a tenant-admin sets vera's password");
  await page.click('button[aria-label="delete user temp"]');
  check(await until(async () => (await count(page, '#users tr[data-user=temp]')) === 0, 10000), 'Delete deletes user temp');
  await shot(page, 'a03-tenant-admin');

  // The create dialog weighs the VM against the quota before it is sent.
  await page.click('#nav-vms');
  await page.click('#create');
  check(await until(async () => (await page.inputValue('#vm-template')) === 'busybox', 10000), 'the dialog offers busybox');
  const memRow = '#quota-preview tr[data-quota=memory_bytes]';
  check(await until(async () => /needs 256 MiB, 384 MiB left of 384 MiB/.test(await text(page, memRow)), 10000),
    `the dialog shows what the VM uses against what is left (${await text(page, memRow)})`);
  const submit = page.locator('.dialog button[type=submit]');
  check(await submit.isEnabled(), 'a VM that fits may be created');
  await page.fill('#vm-memory', '512');
  check(await until(async () => /Memory needs 512 MiB, only 384 MiB/.test(await text(page, '#quota-reason')), 5000),
    'more memory than the quota leaves: the dialog says why');
  // The preview tells the dialog from an effect, so the button follows one render later.
  check(await until(async () => submit.isDisabled(), 5000), '... and the submit is disabled');
  await page.fill('#vm-memory', '256');
  await page.fill('#vm-name', 'small');
  await page.uncheck('.dialog label.check input');
  await submit.click();
  check(await until(async () => (await count(page, '.dialog')) === 0, 20000), 'the dialog creates the VM and closes');
  check(await until(async () => (await count(page, 'tr[data-vm=small] [data-state=stopped]')) === 1, 20000), 'small is listed, stopped');
  check(await count(page, 'tr[data-vm=secret]') === 0, "another tenant's VM never appears");
  await page.click('#create');
  check(await until(async () => /only 128 MiB of 384 MiB left/.test(await text(page, '#quota-reason')), 10000),
    `a second busybox would pass the quota: refused before submitting (${await text(page, '#quota-reason')})`);
  check(await submit.isDisabled(), 'its submit is disabled');
  await shot(page, 'a04-create-over-quota');
  await page.keyboard.press('Escape');
  check(await until(async () => (await count(page, '.dialog')) === 0, 5000), 'Escape closes the dialog');

  await page.click('tr[data-vm=small] a');
  await page.waitForSelector('#disks tr[data-disk=vm-small]');
  check(await count(page, '#nics-none') === 1, "a VM without virtual networks says it has the user-mode NIC");
  check((await text(page, '#disks tr[data-disk=vm-small]')).includes('qcow2'), "the disk's volume and format show");
  await shot(page, 'a05-vm-detail');

  // A security group with a rule; the other tenant's group never shows.
  await go(page, '#/secgroups');
  await page.waitForSelector('#secgroup-form');
  await page.fill('#secgroup-name', 'web');
  await page.fill('#secgroup-description', 'the web tier');
  await page.click('#secgroup-create');
  check(await until(async () => (await count(page, '#secgroups tr[data-secgroup=web]')) === 1, 10000), 'group web is listed');
  check(await count(page, '#secgroups tr[data-secgroup=hidden-sg]') === 0, "another tenant's group never appears");
  await page.click('#secgroups a[href="#/secgroups/web"]');
  await page.waitForSelector('#rule-form');
  await page.selectOption('#rule-protocol', 'icmp');
  await page.fill('#rule-ports', '80');
  await page.click('#rule-add');
  check(await until(async () => /only for tcp or udp/.test(await text(page, 'main .error')), 5000),
    'a rule with ports for icmp is refused with the reason');
  await page.selectOption('#rule-protocol', 'tcp');
  await page.click('#rule-add');
  check(await until(async () => (await text(page, '#rules')).includes('ingress tcp 80 from 0.0.0.0/0'), 10000),
    'the new rule is listed as one line');
  await shot(page, 'a06-secgroup');
  await go(page, '#/secgroups');
  check(await until(async () => (await text(page, '#secgroups tr[data-secgroup=web]')).includes('1'), 10000),
    'the list counts its rule');

  if (nets) {
    await go(page, '#/networks');
    await page.waitForSelector('#network-form');
    await page.fill('#network-name', 'lan');
    await page.fill('#network-subnet', '10.61.0.0/24');
    await page.click('#network-create');
    check(await until(async () => (await count(page, '#networks tr[data-network=lan]')) === 1, 30000), 'network lan is listed');
    check((await text(page, '#networks tr[data-network=lan]')).includes('10.61.0.1'), 'with its gateway');
    check(await count(page, '#networks tr[data-network=hidden]') === 0, "another tenant's network never appears");
    await shot(page, 'a07-networks');
    await page.click('#networks a[href="#/networks/lan"]');
    check(await until(async () => (await count(page, '#network-check[data-ok=yes]')) === 1, 20000),
      'its check finds no drift');
    await page.click('#network-repair');
    check(await until(async () => (await count(page, '#network-check[data-ok=yes]')) === 1 &&
      (await count(page, 'main .error')) === 0, 20000), 'Repair answers the check after it');
    await shot(page, 'a08-network-detail');

    await go(page, '#/routers');
    await page.waitForSelector('#router-form');
    await page.fill('#router-name', 'gw');
    await page.check('#router-form label.check:has-text("lan") input');
    await page.click('#router-create');
    check(await until(async () => (await text(page, '#routers tr[data-router=gw]')).includes('lan'), 30000),
      'router gw is listed with its network');
    await page.click('#routers a[href="#/routers/gw"]');
    await page.waitForSelector('#router-networks li[data-network=lan]');
    await shot(page, 'a09-router');
    await page.click('button[aria-label="detach lan"]');
    check(await until(async () => (await count(page, '#router-networks li')) === 0, 20000), 'Detach takes the network off');

    // A VM with a NIC on lan (made through the API, as a script would), its groups set on its page.
    const made = await page.evaluate(async ([token, mem]) => {
      const r = await fetch('/api/v1/vms', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'nicvm', template: 'busybox', memory_bytes: mem, nics: [{ network: 'lan' }] }),
      });
      return r.status;
    }, [boss, 128 * MiB]);
    check(made === 201, `a VM with a NIC on lan is made (${made})`);
    await go(page, '#/vm/nicvm');
    await page.waitForSelector('#nics tr[data-nic="0"]');
    check((await text(page, '#nics tr[data-nic="0"]')).includes('10.61.0.'), 'the NIC shows its network and address');
    await page.click('#nic-0-edit');
    await page.check('#nics label.check:has-text("web") input');
    await page.click('#nic-0-save');
    check(await until(async () => /web/.test(await text(page, '#nics tr[data-nic="0"] .nic-groups')), 10000),
      "the NIC's security groups are set from the VM's page");
    await shot(page, 'a10-vm-nics');
  }
  await page.click('#logout');
  return vera;
}

// A viewer: the lists, and no control of admin or networks anywhere.
async function asViewer(page, vera) {
  await login(page, vera);
  check(await count(page, '#nav-admin') === 0, 'a viewer has no Admin link');
  check(await count(page, '#create') === 0, 'a viewer has no New VM button');
  await go(page, '#/admin');
  await page.waitForSelector('main p');
  check(await count(page, '#users') === 0 && await count(page, '#tenants') === 0, 'the admin page refuses a viewer');
  await go(page, '#/secgroups');
  await page.waitForSelector('#secgroups tr[data-secgroup=web]');
  check(await count(page, '#secgroup-form') === 0, 'a viewer has no form to create a group');
  await page.click('#secgroups a[href="#/secgroups/web"]');
  await page.waitForSelector('#rules li');
  check(await count(page, 'main button') === 0 && await count(page, '#rule-form') === 0,
    'a viewer sees the rules without a button');
  await shot(page, 'a11-viewer-secgroup');
  await go(page, '#/networks');
  await page.waitForSelector('#networks');
  check(await count(page, '#network-form') === 0 && await count(page, '#ext-form') === 0, 'a viewer has no network forms');
  await go(page, '#/routers');
  await page.waitForSelector('#routers');
  check(await count(page, '#router-form') === 0, 'a viewer has no router form');
  if (nets) {
    await go(page, '#/networks/lan');
    await page.waitForSelector('#network-check');
    check(await count(page, '#network-repair') === 0 && await count(page, '#network-delete') === 0,
      'a viewer sees the check but no Repair or Delete');
    await go(page, '#/vm/nicvm');
    await page.waitForSelector('#nics tr[data-nic="0"]');
    check(await count(page, '#nic-0-edit') === 0, "a viewer cannot change a NIC's groups");
  }
  await shot(page, 'a12-viewer-networks');
  await page.click('#logout');
}

async function main() {
  const { browser, page, problems } = await browse({ width: 1100, height: 800 });
  try {
    const boss = await asPlatform(page);
    const vera = await asTenantAdmin(page, boss);
    // A narrow window: the tenant page still reads (no sideways scroll of the page itself).
    await page.setViewportSize({ width: 420, height: 800 });
    await asViewer(page, vera);
    await login(page, boss);
    await page.click('#nav-admin');
    await page.waitForSelector('#users');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 420, `the admin page fits a 420 px window (${wide} px wide)`);
    await shot(page, 'a13-narrow-admin');
  } catch (e) {
    check(false, `the browser run stopped: ${e.message}`);
    await shot(page, '99-failure').catch(() => {});
  } finally {
    await browser.close();
  }
  // The refused tenant delete (409) and the taken user name (409) are logged by Chromium as
  // failed resources: expected.
  const unexpected = problems.filter((p) => !/status of 409/.test(p));
  check(unexpected.length === 0, `no script errors or CSP violations in the page: ${unexpected.join(' | ')}`);
  process.exit(finish('drive-admin'));
}

main();
