// The admin and network views' rules without a browser: role gating, quota arithmetic as the
// daemon admits a VM, rule, forward and size text, and the helpers' requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  adminAbilities, formatBytes, formatFloating, formatForward, formatRule, forwardBody, networkKind,
  quotaBars, quotaBody, quotaFit, quotaForm, ruleBody,
} from '../src/policy.js';
import { apiPath, Client, list, tokensOf } from '../src/api.js';

const MiB = 1048576;

test('roles: only a platform admin manages tenants and quotas; viewers and operators change nothing', () => {
  for (const r of ['viewer', 'operator', 'nobody']) {
    assert.ok(Object.values(adminAbilities(r)).every((v) => v === false), r);
  }
  const ta = adminAbilities('tenant-admin');
  assert.equal(ta.users && ta.tokens && ta.netWrite && ta.nicGroups && ta.admin, true);
  assert.equal(ta.tenants || ta.quotaEdit || ta.externalCreate, false);
  assert.ok(Object.values(adminAbilities('platform-admin')).every(Boolean));
});

const quota = {
  tenant: 'acme',
  limits: { vcpus: 4, memory_bytes: 512 * MiB, disk_bytes: null, vms: 3 },
  usage: { vcpus: 3, memory_bytes: 256 * MiB, disk_bytes: 64 * MiB, vms: 2 },
};

test('quotaFit: fits up to the limit, refuses one past it, and says which', () => {
  const fit = quotaFit(quota, { vcpus: 1, memory_bytes: 256 * MiB, disk_bytes: 1 << 30, vms: 1 });
  assert.equal(fit.ok, true);
  assert.equal(fit.reason, '');
  assert.deepEqual(fit.rows.map((r) => r.left), [1, 256 * MiB, null, 1]);
  assert.equal(fit.rows[1].text, 'needs 256 MiB, 256 MiB left of 512 MiB');
  assert.equal(fit.rows[2].text, 'needs 1 GiB, no limit');
  const over = quotaFit(quota, { vcpus: 1, memory_bytes: 257 * MiB, disk_bytes: 0, vms: 1 });
  assert.equal(over.ok, false);
  assert.equal(over.reason, 'over the quota: Memory needs 257 MiB, only 256 MiB of 512 MiB left');
  assert.equal(quotaFit(quota, { vcpus: 2, memory_bytes: 0, vms: 1 }).rows[0].fits, false);
  // Already over a lowered limit: anything asked for is refused, nothing asked is not.
  const lowered = { limits: { vcpus: 2 }, usage: { vcpus: 3 } };
  assert.equal(quotaFit(lowered, { vcpus: 1 }).ok, false);
  assert.equal(quotaFit(lowered, { vcpus: 0 }).ok, true);
  // No quota document: everything fits.
  assert.equal(quotaFit(null, { vcpus: 99 }).ok, true);
});

test('quotaBars: percent of each limit, none for unlimited, capped at 100', () => {
  const bars = quotaBars(quota);
  assert.deepEqual(bars.map((b) => b.pct), [75, 50, null, 67]);
  assert.equal(bars[2].text, '64 MiB used, no limit');
  assert.equal(bars[1].text, '256 MiB of 512 MiB');
  const over = quotaBars({ limits: { vcpus: 0, vms: 1 }, usage: { vcpus: 2, vms: 5 } });
  assert.equal(over[0].pct, 100);
  assert.equal(over[3].pct, 100);
  assert.equal(over[3].over, true);
});

test('quota form: MiB and blanks to the PUT body and back; junk names its field', () => {
  const form = quotaForm(quota);
  assert.deepEqual(form, { vcpus: '4', memory_bytes: '512', disk_bytes: '', vms: '3' });
  assert.deepEqual(quotaBody(form).body, { vcpus: 4, memory_bytes: 512 * MiB, disk_bytes: null, vms: 3 });
  assert.match(quotaBody({ ...form, vms: '-1' }).error, /^VMs:/);
  assert.match(quotaBody({ ...form, memory_bytes: '1e3' }).error, /^Memory:/);
});

test('rules: one line each way, bodies checked as the API would', () => {
  assert.equal(formatRule({ id: 1, direction: 'ingress', protocol: 'tcp', ports: '80', peer: '10.0.0.0/8' }),
    'ingress tcp 80 from 10.0.0.0/8');
  assert.equal(formatRule({ direction: 'egress', protocol: 'any' }), 'egress any to 0.0.0.0/0');
  assert.equal(formatRule({ direction: 'ingress', protocol: 'icmp', peer: 'group:web' }), 'ingress icmp from group:web');
  assert.deepEqual(ruleBody({ direction: 'ingress', protocol: 'tcp', ports: ' 8000-8080 ', peer: '' }).body,
    { direction: 'ingress', protocol: 'tcp', ports: '8000-8080' });
  assert.match(ruleBody({ direction: 'ingress', protocol: 'icmp', ports: '80' }).error, /only for tcp or udp/);
  assert.match(ruleBody({ direction: 'ingress', protocol: 'tcp', ports: '90-80' }).error, /^ports:/);
  assert.match(ruleBody({ direction: 'ingress', protocol: 'tcp', ports: '70000' }).error, /^ports:/);
});

test('router entries: forwards to a VM or an address, floating IPs, network kinds, sizes', () => {
  assert.deepEqual(forwardBody({ protocol: 'tcp', external_port: '8080', target: 'web', port: '80' }).body,
    { protocol: 'tcp', external_port: 8080, vm: 'web', port: 80 });
  assert.deepEqual(forwardBody({ protocol: 'udp', external_port: '53', target: '10.0.0.5', port: '' }).body,
    { protocol: 'udp', external_port: 53, ip: '10.0.0.5' });
  assert.ok(forwardBody({ external_port: '0', target: 'web' }).error);
  assert.ok(forwardBody({ external_port: '80', target: '' }).error);
  assert.equal(formatForward({ protocol: 'tcp', external_port: 8080, ip: '10.0.0.5', port: 80, vm: 'web' }),
    'tcp 8080 → 10.0.0.5:80 (web)');
  assert.equal(formatFloating({ external_ip: '198.51.100.10', ip: '10.0.0.5' }), '198.51.100.10 ↔ 10.0.0.5');
  assert.equal(networkKind({ vxlan: { vni: 42, peers: [] } }), 'VXLAN 42');
  assert.equal(networkKind({ vlan: 100 }), 'VLAN 100');
  assert.equal(networkKind({}), 'local');
  assert.equal(formatBytes(256 * MiB), '256 MiB');
  assert.equal(formatBytes(1.5 * 1024 * MiB), '1.5 GiB');
  assert.equal(formatBytes(196608), '192 KiB');
  assert.equal(formatBytes(512), '512 B');
});

test('helpers: encoded paths, lists with ?tenant=, tokens of one tenant', async () => {
  assert.equal(apiPath('tenants', 'a/b', 'quota'), '/tenants/a%2Fb/quota');
  const seen = [];
  const fetchFn = async (url) => {
    seen.push(url);
    const body = url.startsWith('/api/v1/tokens')
      ? { tokens: [{ id: '1', tenant: 'acme' }, { id: '2', tenant: 'other' }] }
      : { networks: [{ name: 'lan' }] };
    return { ok: true, status: 200, text: async () => JSON.stringify(body) };
  };
  const c = new Client('t', fetchFn, 'acme');
  assert.deepEqual(await list(c, 'networks'), [{ name: 'lan' }]);
  assert.equal(seen[0], '/api/v1/networks?tenant=acme');
  assert.deepEqual((await tokensOf(new Client('t', fetchFn), 'acme')).map((t) => t.id), ['1']);
});
