// The console's talk with tesserad: its public REST API (docs/openapi.yaml), the event stream
// and console tickets. No DOM here, so node --test runs all of it.

export const ROLES = ['viewer', 'operator', 'tenant-admin', 'platform-admin'];

// Does role reach at least min? An unknown role reaches nothing.
export function roleAtLeast(role, min) {
  const r = ROLES.indexOf(role);
  return r >= 0 && r >= ROLES.indexOf(min);
}

// What each role may do, as docs/daemon.md's route table says; the API refuses the rest anyway.
export function abilities(role) {
  return {
    create: roleAtLeast(role, 'tenant-admin'),
    delete: roleAtLeast(role, 'tenant-admin'),
    snapshot: roleAtLeast(role, 'tenant-admin'),
    power: roleAtLeast(role, 'operator'),
    console: roleAtLeast(role, 'operator'),
  };
}

// A token's id: the 16 hex digits after "tsr_" (src/daemon/token.h), which GET /api/v1/tokens
// lists; null for text that is no token.
export function tokenId(token) {
  const m = /^tsr_([0-9a-f]{16})_[0-9a-f]{64}$/.exec(token.trim());
  return m ? m[1] : null;
}

// An API error's message: the body's error.message when there is one, else the status.
export function errorMessage(status, body) {
  const msg = body && body.error && typeof body.error.message === 'string' ? body.error.message : '';
  return msg || `HTTP ${status}`;
}

// JSON text's value; null for empty or malformed text (a proxy's HTML error page, say).
function parseJSON(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    super(errorMessage(status, body));
    this.status = status;
    this.field = body && body.error ? body.error.field : undefined;
  }
}

// Splits server-sent events text (WHATWG HTML §9.2.6) into complete events and what is left
// for the next chunk. Comments and fields other than id, event and data are skipped.
export function parseSSE(text) {
  const events = [];
  const blocks = text.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    const ev = { id: null, type: 'message', data: [] };
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') ev.id = value;
      else if (field === 'event') ev.type = value;
      else if (field === 'data') ev.data.push(value);
    }
    if (ev.data.length) events.push({ id: ev.id, type: ev.type, data: ev.data.join('\n') });
  }
  return { events, rest };
}

// Does event ev change the VM list in a way the event alone cannot say (a delete, a clone, a
// gap in the stream)? Then the list is fetched again.
export function needsReload(ev) {
  return ev.type === 'events.gap' || (ev.type.startsWith('vm.') && ev.type !== 'vm.state');
}

// The VM list of tenant (the one the page shows) after event ev ({type, data} with data
// parsed): a vm.state carries the VM's document and replaces or adds it; another tenant's
// (a platform administrator's stream carries every tenant's) and any other event leave the
// list as it is.
export function applyEvent(vms, ev, tenant) {
  if (ev.type !== 'vm.state' || !ev.data || typeof ev.data.name !== 'string') return vms;
  if ((ev.data.tenant ?? '') !== tenant) return vms;
  const i = vms.findIndex((v) => v.name === ev.data.name);
  const next = vms.slice();
  if (i >= 0) next[i] = ev.data;
  else next.push(ev.data);
  return next.sort((a, b) => a.name.localeCompare(b.name));
}

// The console websocket's URL for a page at loc (window.location) and a ticket.
export function consoleURL(loc, vm, ticket) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/api/v1/vms/${encodeURIComponent(vm)}/console?ticket=${encodeURIComponent(ticket)}`;
}

// A client with one token; fetchFn is window.fetch (or a test's). tenant: the tenant a
// platform administrator acts in (?tenant=), '' for its own scope or for anyone else.
export class Client {
  constructor(token, fetchFn, tenant = '') {
    this.token = token;
    this.fetch = fetchFn;
    this.tenant = tenant;
  }

  withTenant(tenant) {
    return new Client(this.token, this.fetch, tenant);
  }

  // The URL of an API path, with ?tenant= when acting in another tenant.
  url(path) {
    if (!this.tenant) return `/api/v1${path}`;
    return `/api/v1${path}${path.includes('?') ? '&' : '?'}tenant=${encodeURIComponent(this.tenant)}`;
  }

  async call(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await this.fetch(this.url(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const doc = parseJSON(text);
    if (!r.ok) throw new ApiError(r.status, doc);
    return doc;
  }

  // Who this token speaks for: its entry in GET /tokens ({id, tenant, user, role}).
  async whoami() {
    const id = tokenId(this.token);
    if (!id) throw new ApiError(400, { error: { message: 'that is not a tesserad token (tsr_...)' } });
    const doc = await this.call('GET', '/tokens');
    const me = (doc.tokens || []).find((t) => t.id === id);
    if (!me) throw new ApiError(401, { error: { message: 'this token is not listed by the daemon' } });
    return me;
  }

  // Waits for operation op to end; throws its error when it failed.
  async wait(op) {
    for (;;) {
      const doc = await this.call('GET', `/operations/${op}/wait?timeout=60`);
      if (doc.status === 'failure') throw new ApiError(500, { error: { message: doc.error || 'the operation failed' } });
      if (doc.status !== 'running') return doc;
    }
  }

  // Follows the event stream: onOpen() once it is open, then onEvent({id, type, data}) for
  // each event, until signal aborts or the stream ends. fetch rather than EventSource: only
  // fetch can send the Authorization header.
  async follow(onEvent, signal, lastId, onOpen = () => {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const r = await this.fetch(this.url('/events'), { headers, signal });
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
    onOpen();
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const { events, rest } = parseSSE(buf + dec.decode(value, { stream: true }));
      buf = rest;
      for (const ev of events) {
        onEvent({ id: ev.id, type: ev.type, data: parseJSON(ev.data) });
      }
    }
  }
}

// Password login (POST /api/v1/login, the one route taken without a token): the session's
// token text. tenant '' is a platform user. Throws ApiError with the daemon's message.
export async function login(fetchFn, tenant, user, password) {
  const body = { user, password };
  if (tenant) body.tenant = tenant;
  const r = await fetchFn('/api/v1/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const doc = parseJSON(await r.text());
  if (!r.ok) throw new ApiError(r.status, doc);
  return doc.token;
}

// ---- Helpers of the admin and network views (web/src/admin.js, web/src/netviews.js) ----

// An API path from its segments, each one encoded: apiPath('tenants', t, 'quota').
export function apiPath(...segments) {
  return `/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`;
}

// The array under key of GET path ([] when absent): list(client, 'networks').
export async function list(client, key, path = apiPath(key)) {
  const doc = await client.call('GET', path);
  return (doc && doc[key]) || [];
}

// The quota of tenant: {tenant, limits, usage} (GET /tenants/{tenant}/quota).
export function quotaOf(client, tenant) {
  return client.call('GET', apiPath('tenants', tenant, 'quota'));
}

// The tokens of tenant's users ("" the platform's): a platform administrator's list holds
// every tenant's, a tenant's users see their own.
export async function tokensOf(client, tenant) {
  return (await list(client, 'tokens')).filter((t) => t.tenant === tenant);
}

// The daemon's metric history (docs/daemon.md, "Metric history"): a VM's (scoped as the VM)
// and the host's (platform administrators). since: seconds back (1..3600), all of the hour
// when left out.
export function historyPath(vm, since) {
  const base = vm === null ? '/host/stats/history' : `/vms/${encodeURIComponent(vm)}/stats/history`;
  return since ? `${base}?since=${Math.floor(since)}` : base;
}

export function fetchHistory(client, vm, since) {
  return client.call('GET', historyPath(vm, since));
}
