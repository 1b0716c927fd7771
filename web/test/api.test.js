// The console's logic without a browser: roles, tokens, errors, the event stream's parser, the
// VM list's updates from events, and the client against a fetch that answers as tesserad does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abilities, applyEvent, Client, consoleURL, errorMessage, needsReload, parseSSE, roleAtLeast, tokenId } from '../src/api.js';

const TOKEN = `tsr_0123456789abcdef_${'ab'.repeat(32)}`;

test('roles: a viewer may change nothing, an operator power and console, an admin all', () => {
  assert.deepEqual(abilities('viewer'), { create: false, delete: false, snapshot: false, power: false, console: false });
  assert.deepEqual(abilities('operator'), { create: false, delete: false, snapshot: false, power: true, console: true });
  assert.ok(Object.values(abilities('tenant-admin')).every(Boolean));
  assert.ok(roleAtLeast('platform-admin', 'tenant-admin'));
  assert.equal(roleAtLeast('root', 'viewer'), false);
  assert.ok(Object.values(abilities('nobody')).every((v) => v === false));
});

test('tokenId finds the id GET /tokens lists, and only in a whole token', () => {
  assert.equal(tokenId(TOKEN), '0123456789abcdef');
  assert.equal(tokenId(` ${TOKEN}\n`), '0123456789abcdef');
  assert.equal(tokenId('tsr_0123456789abcdef_short'), null);
  assert.equal(tokenId('Bearer x'), null);
});

test("errors show the API's message", () => {
  assert.equal(errorMessage(409, { error: { code: 409, message: "vm 'a' is running" } }), "vm 'a' is running");
  assert.equal(errorMessage(502, null), 'HTTP 502');
  assert.equal(errorMessage(500, { error: {} }), 'HTTP 500');
});

test('parseSSE splits events, keeps an incomplete one and skips comments', () => {
  const { events, rest } = parseSSE(': tesserad events\n\nid: 7\nevent: vm.state\ndata: {"name":"a"}\n\n: heartbeat\n\nid: 8\nevent: vm.st');
  assert.deepEqual(events, [{ id: '7', type: 'vm.state', data: '{"name":"a"}' }]);
  assert.equal(rest, 'id: 8\nevent: vm.st');
  const more = parseSSE(`${rest}ate\r\ndata: x\r\ndata: y\r\n\r\n`);
  assert.deepEqual(more.events, [{ id: '8', type: 'vm.state', data: 'x\ny' }]);
  assert.equal(more.rest, '');
});

test('applyEvent: vm.state replaces or adds, sorted; deletes and gaps ask for the list', () => {
  const vms = [{ name: 'b', tenant: 'acme', state: 'stopped' }];
  const a = applyEvent(vms, { type: 'vm.state', data: { name: 'a', tenant: 'acme', state: 'starting' } }, 'acme');
  assert.deepEqual(a.map((v) => v.name), ['a', 'b']);
  const b = applyEvent(a, { type: 'vm.state', data: { name: 'a', tenant: 'acme', state: 'running' } }, 'acme');
  assert.equal(b[0].state, 'running');
  assert.equal(vms.length, 1, 'the old list is left alone');
  assert.equal(applyEvent(b, { type: 'vm.delete', data: { target: 'a' } }, 'acme'), b);
  assert.equal(applyEvent(b, { type: 'volume.upload', data: {} }, 'acme'), b);
  assert.ok(needsReload({ type: 'vm.delete' }) && needsReload({ type: 'vm.clone' }));
  assert.ok(needsReload({ type: 'events.gap' }));
  assert.ok(!needsReload({ type: 'vm.state' }) && !needsReload({ type: 'volume.upload' }));
});

test("applyEvent: another tenant's VM never enters the list", () => {
  const vms = [{ name: 'a', tenant: 'acme', state: 'stopped' }];
  assert.equal(applyEvent(vms, { type: 'vm.state', data: { name: 'x', tenant: 'other', state: 'running' } }, 'acme'), vms);
  assert.equal(applyEvent(vms, { type: 'vm.state', data: { name: 'a', tenant: 'other', state: 'running' } }, 'acme'), vms);
  // The platform's own scope is the tenant ''.
  assert.equal(applyEvent(vms, { type: 'vm.state', data: { name: 'p', tenant: '', state: 'running' } }, 'acme'), vms);
  assert.equal(applyEvent([], { type: 'vm.state', data: { name: 'p', tenant: '', state: 'running' } }, '').length, 1);
});

test('Client.url adds ?tenant= for a platform administrator acting in a tenant', () => {
  const c = new Client(TOKEN, null);
  assert.equal(c.url('/vms'), '/api/v1/vms');
  const t = c.withTenant('acme');
  assert.equal(t.token, TOKEN);
  assert.equal(t.url('/vms'), '/api/v1/vms?tenant=acme');
  assert.equal(t.url('/operations/00ff/wait?timeout=60'), '/api/v1/operations/00ff/wait?timeout=60&tenant=acme');
  assert.equal(t.url('/events'), '/api/v1/events?tenant=acme');
});

test('consoleURL follows the page: ws for http, wss for https, names escaped', () => {
  assert.equal(consoleURL({ protocol: 'http:', host: '127.0.0.1:8080' }, 'web', 'ab12'),
    'ws://127.0.0.1:8080/api/v1/vms/web/console?ticket=ab12');
  assert.equal(consoleURL({ protocol: 'https:', host: 'h:8443' }, 'a b', 't&x'),
    'wss://h:8443/api/v1/vms/a%20b/console?ticket=t%26x');
});

// A fetch that answers from a table, recording each request.
function fakeFetch(table, seen) {
  return async (url, opts = {}) => {
    seen.push({ url, ...opts });
    const [status, body] = table[`${opts.method || 'GET'} ${url}`] || [404, { error: { code: 404, message: 'no such route' } }];
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return { ok: status < 300, status, text: async () => text, json: async () => JSON.parse(text) };
  };
}

test('Client: bearer token, JSON bodies, whoami from GET /tokens, errors carry the message', async () => {
  const seen = [];
  const c = new Client(TOKEN, fakeFetch({
    'GET /api/v1/tokens': [200, { tokens: [{ id: 'ffffffffffffffff', role: 'platform-admin' }, { id: '0123456789abcdef', tenant: 'acme', user: 'ann', role: 'tenant-admin' }] }],
    'POST /api/v1/vms': [409, { error: { code: 409, message: "quota: vms limit 1, used 1", field: 'vms' } }],
  }, seen));
  const me = await c.whoami();
  assert.equal(me.role, 'tenant-admin');
  assert.equal(seen[0].headers.Authorization, `Bearer ${TOKEN}`);
  await assert.rejects(c.call('POST', '/vms', { name: 'x', template: 'busybox' }),
    (err) => err.status === 409 && err.message === 'quota: vms limit 1, used 1' && err.field === 'vms');
  assert.equal(seen[1].body, '{"name":"x","template":"busybox"}');
  assert.equal(seen[1].headers['Content-Type'], 'application/json');
  await assert.rejects(new Client('nonsense', fakeFetch({}, [])).whoami(), /not a tesserad token/);
});

test('Client.wait throws the failed operation\'s error', async () => {
  const c = new Client(TOKEN, fakeFetch({
    'GET /api/v1/operations/00000000000000aa/wait?timeout=60': [200, { status: 'failure', error: 'the VMM exited with 1' }],
    'GET /api/v1/operations/00000000000000bb/wait?timeout=60': [200, { status: 'success', error: null }],
  }, []));
  await assert.rejects(c.wait('00000000000000aa'), /the VMM exited with 1/);
  assert.equal((await c.wait('00000000000000bb')).status, 'success');
});

test('Client.follow: onOpen first, then the events, even split across chunks; a refusal throws', async () => {
  const chunks = [': tesserad events\n\nid: 4\nevent: vm.st', 'ate\ndata: {"name":"a","state":"running"}\n\n'];
  const enc = new TextEncoder();
  const seen = [];
  const order = [];
  const fetchFn = async (url, opts) => {
    seen.push({ url, ...opts });
    let i = 0;
    const reader = { read: async () => (i < chunks.length ? { value: enc.encode(chunks[i++]), done: false } : { done: true }) };
    return { ok: true, status: 200, body: { getReader: () => reader } };
  };
  const c = new Client(TOKEN, fetchFn, 'acme');
  await c.follow((ev) => order.push(ev), undefined, '3', () => order.push('open'));
  assert.deepEqual(order, ['open', { id: '4', type: 'vm.state', data: { name: 'a', state: 'running' } }]);
  assert.equal(seen[0].url, '/api/v1/events?tenant=acme');
  assert.equal(seen[0].headers['Last-Event-ID'], '3');
  const refused = new Client(TOKEN, fakeFetch({}, []));
  await assert.rejects(refused.follow(() => {}, undefined, null, () => assert.fail('opened')), /no such route/);
});
