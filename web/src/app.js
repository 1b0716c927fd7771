// Tessera's web console (docs/web.md): login, the VM list kept live by the event stream, a VM's
// page with its actions and snapshots, and its serial console in xterm.js.
import { h, render } from 'preact';
import { useEffect, useMemo, useRef, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
// xterm.js is most of the bundle: its code is loaded when a console opens (its own chunk),
// so the list comes up without it; its small stylesheet stays in app.css.
import '@xterm/xterm/css/xterm.css';
import './app.css';
import { Client, abilities, applyEvent, consoleURL, login, needsReload } from './api.js';
import { AdminView, PasswordForm, QuotaPreview } from './admin.js';
import { NetView, VmHardware } from './netviews.js';
import { adminAbilities } from './policy.js';
import { VmGraphs } from './graphs.js';
import { Dashboard } from './dashboard.js';

const html = htm.bind(h);
const TOKEN_KEY = 'tessera.token';

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

// A VM's template is {name, tenant} ("" for a shared one).
function templateName(vm) {
  const t = vm.template;
  if (!t) return '';
  return typeof t === 'string' ? t : `${t.tenant ? `${t.tenant}/` : ''}${t.name}`;
}

function ErrorLine({ error }) {
  return error ? html`<p class="error" role="alert">${error}</p>` : null;
}

// Log in with a user's password (a session token that expires) or with an API token.
function Login({ onLogin }) {
  const [mode, setMode] = useState('password');
  const [token, setToken] = useState('');
  const [tenant, setTenant] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      const text = mode === 'password'
        ? await login(fetch.bind(window), tenant.trim(), user.trim(), password)
        : token.trim();
      const client = new Client(text, fetch.bind(window));
      const me = await client.whoami();
      sessionStorage.setItem(TOKEN_KEY, text);
      setPassword('');
      onLogin(client, me);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <h1>Tessera</h1>
    <div class="buttons" role="tablist">
      <button type="button" role="tab" id="mode-password" aria-selected=${mode === 'password'}
        class=${mode === 'password' ? 'on' : ''} onClick=${() => setMode('password')}>Password</button>
      <button type="button" role="tab" id="mode-token" aria-selected=${mode === 'token'}
        class=${mode === 'token' ? 'on' : ''} onClick=${() => setMode('token')}>API token</button>
    </div>
    <form onSubmit=${submit}>
      ${mode === 'password' ? html`
        <label for="login-tenant">Tenant <span class="busy">(empty for a platform user)</span></label>
        <input id="login-tenant" name="tenant" autocomplete="organization" value=${tenant}
          onInput=${(e) => setTenant(e.target.value)} />
        <label for="login-user">User</label>
        <input id="login-user" name="user" autocomplete="username" value=${user}
          onInput=${(e) => setUser(e.target.value)} required />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password"
          value=${password} onInput=${(e) => setPassword(e.target.value)} required />` : html`
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" value=${token}
          onInput=${(e) => setToken(e.target.value)} placeholder="tsr_..." required />`}
      <button type="submit" disabled=${busy}>Log in</button>
    </form>
    <${ErrorLine} error=${error} />
  </main>`;
}

function CreateDialog({ client, scope, onClose }) {
  const [templates, setTemplates] = useState([]);
  const [name, setName] = useState('');
  const [template, setTemplate] = useState('');
  const [start, setStart] = useState(true);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  // CPUs and memory (MiB) start at the template's; the quota preview weighs what they ask.
  const [cpus, setCpus] = useState('');
  const [memMiB, setMemMiB] = useState('');
  const [fit, setFit] = useState({ ok: true, reason: '' });
  // Focus starts in the dialog (autofocus does not act on an element added after load), so
  // Escape and Tab work from the keyboard at once.
  const first = useRef(null);
  useEffect(() => {
    if (first.current) first.current.focus();
  }, []);
  const pick = (t) => {
    setTemplate(t ? t.name : '');
    setCpus(t ? String(t.cpus) : '');
    setMemMiB(t ? String(Math.round(t.memory_bytes / 1048576)) : '');
  };
  useEffect(() => {
    client.call('GET', '/templates').then((doc) => {
      const list = doc.templates || [];
      setTemplates(list);
      pick(list.find((t) => t.name === 'busybox') || list[0]);
    }, (err) => setError(err.message));
  }, [client]);
  const tmpl = templates.find((t) => t.name === template);
  const want = useMemo(() => ({ vcpus: Number(cpus) || 0, memory_bytes: (Number(memMiB) || 0) * 1048576,
    disk_bytes: tmpl ? tmpl.disk_bytes : 0, vms: 1 }), [cpus, memMiB, tmpl]);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { name, template, start };
      if (tmpl && Number(cpus) !== tmpl.cpus) body.cpus = Number(cpus);
      if (tmpl && want.memory_bytes !== tmpl.memory_bytes) body.memory_bytes = want.memory_bytes;
      await client.call('POST', '/vms', body);
      onClose();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  // Escape closes it, as a dialog should for keyboard users.
  const onKey = (e) => {
    if (e.key === 'Escape') onClose();
  };
  return html`<div class="dialog" role="dialog" aria-modal="true" aria-labelledby="create-title"
    onKeyDown=${onKey}>
    <form onSubmit=${submit}>
      <h2 id="create-title">New VM</h2>
      <label for="vm-name">Name</label>
      <input id="vm-name" ref=${first} autofocus value=${name} onInput=${(e) => setName(e.target.value)} required
        pattern="[a-z0-9\\-]{1,59}" title="1 to 59 characters of a-z, 0-9 and -" />
      <label for="vm-template">Template</label>
      <select id="vm-template" value=${template} onChange=${(e) => pick(templates.find((t) => t.name === e.target.value))}>
        ${templates.map((t) => html`<option value=${t.name}>${t.name}</option>`)}
      </select>
      <label for="vm-cpus">CPUs</label>
      <input id="vm-cpus" type="number" min="1" max="8" value=${cpus} onInput=${(e) => setCpus(e.target.value)} required />
      <label for="vm-memory">Memory (MiB)</label>
      <input id="vm-memory" type="number" min="16" max="65536" value=${memMiB} onInput=${(e) => setMemMiB(e.target.value)} required />
      <label class="check"><input type="checkbox" checked=${start}
        onChange=${(e) => setStart(e.target.checked)} /> Start it now</label>
      <${QuotaPreview} client=${client} tenant=${scope} want=${want} onFit=${setFit} />
      <${ErrorLine} error=${error} />
      <div class="buttons">
        <button type="submit" disabled=${busy || !fit.ok} title=${fit.reason}>Create</button>
        <button type="button" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  </div>`;
}

function VmList({ client, me, scope, vms, error }) {
  const can = abilities(me.role);
  const [creating, setCreating] = useState(false);
  return html`<main>
    <div class="bar">
      <h2>Virtual machines</h2>
      ${can.create && html`<button id="create" onClick=${() => setCreating(true)}>New VM</button>`}
    </div>
    <${ErrorLine} error=${error} />
    <div class="scroll"><table class="vms">
      <thead><tr><th>Name</th><th>State</th><th>CPUs</th><th>Memory</th><th>Template</th></tr></thead>
      <tbody>
        ${vms.map((v) => html`<tr data-vm=${v.name}>
          <td><a href=${`#/vm/${v.name}`}>${v.name}</a></td>
          <td><span class=${`state state-${v.state}`} data-state=${v.state}>${v.state}</span></td>
          <td>${v.cpus}</td>
          <td>${v.memory_bytes ? `${Math.round(v.memory_bytes / 1048576)} MiB` : ''}</td>
          <td>${templateName(v)}</td>
        </tr>`)}
      </tbody>
    </table></div>
    ${vms.length === 0 && html`<p class="empty">No VMs.</p>`}
    ${creating && html`<${CreateDialog} client=${client} scope=${scope} onClose=${() => setCreating(false)} />`}
  </main>`;
}

function VmDetail({ client, me, vm, name }) {
  const can = abilities(me.role);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState('');
  const [snaps, setSnaps] = useState([]);
  const [snapName, setSnapName] = useState('');
  const exists = vm !== undefined;
  const loadSnaps = useCallback(() => {
    // A VM just deleted (or not yet in the list) has no snapshots to ask for.
    if (!exists) return;
    client.call('GET', `/vms/${name}/snapshots`).then((d) => setSnaps(d.snapshots || []),
      () => setSnaps([]));
  }, [client, name, exists]);
  useEffect(loadSnaps, [loadSnaps, vm && vm.state]);
  if (!vm) return html`<main><p>No VM '${name}'. <a href="#/">Back to the list</a></p></main>`;
  const act = async (what, fn) => {
    setBusy(what);
    setError('');
    try {
      await fn();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy('');
    }
  };
  const action = (a) => act(a, async () => {
    const op = await client.call('POST', `/vms/${name}/actions/${a}`);
    await client.wait(op.id);
  });
  const remove = () => act('delete', async () => {
    await client.call('DELETE', `/vms/${name}`);
    location.hash = '#/';
  });
  const snapshot = (e) => {
    e.preventDefault();
    act('snapshot', async () => {
      await client.call('POST', `/vms/${name}/snapshots`, { name: snapName });
      setSnapName('');
      loadSnaps();
    });
  };
  const stopped = vm.state === 'stopped' || vm.state === 'error';
  const live = vm.state === 'running' || vm.state === 'paused';
  return html`<main>
    <p><a href="#/">← VMs</a></p>
    <div class="bar">
      <h2>${vm.name} <span class=${`state state-${vm.state}`} id="vm-state" data-state=${vm.state}>${vm.state}</span></h2>
      ${busy && html`<span class="busy" aria-live="polite">${busy}…</span>`}
    </div>
    <div class="buttons">
      ${can.power && stopped && html`<button id="start" disabled=${!!busy} onClick=${() => action('start')}>Start</button>`}
      ${can.power && live && html`<button id="stop" disabled=${!!busy} onClick=${() => action('stop')}>Stop</button>`}
      ${can.console && live && html`<a class="button" id="open-console" href=${`#/vm/${name}/console`}>Console</a>`}
      ${can.delete && stopped && html`<button id="delete" class="danger" disabled=${!!busy} onClick=${remove}>Delete</button>`}
    </div>
    <${ErrorLine} error=${error || (vm.state === 'error' ? vm.error : '')} />
    <dl class="config">
      <dt>Template</dt><dd>${templateName(vm)}</dd>
      <dt>CPUs</dt><dd>${vm.cpus}</dd>
      <dt>Memory</dt><dd>${vm.memory_bytes ? `${Math.round(vm.memory_bytes / 1048576)} MiB` : ''}</dd>
      <dt>Disk</dt><dd>${vm.disk_bytes ? `${Math.round(vm.disk_bytes / 1048576)} MiB` : ''}</dd>
      <dt>Desired</dt><dd>${vm.desired}</dd>
    </dl>
    <${VmGraphs} client=${client} name=${name} />
    <h3>Snapshots</h3>
    <ul class="snaps">${snaps.map((s) => html`<li data-snap=${s.name}>${s.name}</li>`)}</ul>
    ${snaps.length === 0 && html`<p class="empty">No snapshots.</p>`}
    ${can.snapshot && html`<form class="inline" onSubmit=${snapshot}>
      <label for="snap-name">Snapshot name</label>
      <input id="snap-name" value=${snapName} onInput=${(e) => setSnapName(e.target.value)} required />
      <button id="snapshot" type="submit" disabled=${!!busy || !stopped}
        title=${stopped ? '' : 'a VM is snapshotted while stopped'}>Take snapshot</button>
    </form>`}
    <${VmHardware} client=${client} me=${me} name=${name} state=${vm.state} />
  </main>`;
}

function Console({ client, name }) {
  const box = useRef(null);
  const [status, setStatus] = useState('connecting');
  useEffect(() => {
    let term = null;
    let input = null;
    let ws = null;
    let closed = false;
    const enc = new TextEncoder();
    let observer = null;
    const ticket = client.call('POST', `/vms/${name}/console-ticket`);
    Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit'), ticket]).then(([{ Terminal }, { FitAddon }, t]) => {
      if (closed) return;
      term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14 });
      // The terminal fills its box and follows it (docs/web.md "Console": a UART has no window
      // size to tell the guest, so this is the browser's side alone).
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(box.current);
      const refit = () => {
        if (closed || !box.current) return; // a last resize after the page left
        fit.fit();
        box.current.dataset.cols = term.cols;
        box.current.dataset.rows = term.rows;
      };
      refit();
      observer = new ResizeObserver(refit);
      observer.observe(box.current);
      input = term.onData((d) => {
        if (ws && ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
      });
      ws = new WebSocket(consoleURL(location, name, t.ticket));
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        setStatus('connected');
        term.focus();
      };
      ws.onmessage = (m) => term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data));
      ws.onclose = (e) => setStatus(`closed${e.reason ? `: ${e.reason}` : ''}`);
    }, (err) => setStatus(`refused: ${err.message}`));
    return () => {
      closed = true;
      if (observer) observer.disconnect();
      if (input) input.dispose();
      if (ws) ws.close();
      if (term) term.dispose();
    };
  }, [client, name]);
  return html`<main>
    <p><a href=${`#/vm/${name}`}>← ${name}</a></p>
    <h2>Console of ${name} <span class="busy" id="console-status">${status}</span></h2>
    <div class="term" ref=${box}></div>
  </main>`;
}

// A platform administrator picks the tenant it acts in ('' : the platform's own scope).
function TenantSwitch({ base, tenant, onChange }) {
  const [tenants, setTenants] = useState([]);
  useEffect(() => {
    base.call('GET', '/tenants').then((d) => setTenants((d.tenants || []).map((t) => t.name)),
      () => setTenants([]));
  }, [base]);
  return html`<label class="tenant">Tenant
    <select id="tenant" value=${tenant} onChange=${(e) => onChange(e.target.value)}>
      <option value="">(platform)</option>
      ${tenants.map((t) => html`<option value=${t}>${t}</option>`)}
    </select></label>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [tenant, setTenant] = useState('');
  const [vms, setVms] = useState([]);
  const [error, setError] = useState('');
  const [streamError, setStreamError] = useState('');
  const [live, setLive] = useState(false);
  const hash = useHash();
  const platform = session !== null && session.me.role === 'platform-admin';
  // The tenant the page shows, and a client acting in it.
  const scope = session === null ? '' : platform ? tenant : session.me.tenant;
  const client = useMemo(() => (session === null ? null : platform ? session.client.withTenant(tenant) : session.client),
    [session, platform, tenant]);

  useEffect(() => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return;
    const client = new Client(token, fetch.bind(window));
    client.whoami().then((me) => setSession({ client, me }),
      () => sessionStorage.removeItem(TOKEN_KEY));
  }, []);

  // The event stream first, then the list (so no change falls between the two), then every
  // change from the stream. Events that come while the list is being fetched wait and are
  // applied on top of it in order: each vm.state carries its VM's whole document, so the last
  // one wins. A change the stream cannot say in full (a delete, a gap) fetches the list again.
  // A dropped stream reconnects after 2 s, resuming after the last event seen.
  useEffect(() => {
    if (!client) return undefined;
    setVms([]);
    const abort = new AbortController();
    let lastId = null;
    let ready = false;
    let pending = [];
    const apply = (ev) => {
      if (needsReload(ev)) load();
      else setVms((cur) => applyEvent(cur, ev, scope));
    };
    const load = () => {
      ready = false;
      return client.call('GET', '/vms').then((d) => {
        setVms((d.vms || []).slice().sort((a, b) => a.name.localeCompare(b.name)));
        setError('');
      }, (err) => setError(err.message)).finally(() => {
        ready = true;
        const waiting = pending;
        pending = [];
        waiting.forEach(apply);
      });
    };
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          await client.follow((ev) => {
            if (ev.id) lastId = ev.id;
            if (ready) apply(ev);
            else pending.push(ev);
          }, abort.signal, lastId, () => {
            setLive(true);
            setStreamError('');
            load();
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          setStreamError(`event stream: ${err.message}`);
          if (!ready) load(); // the list as it is, at least
        }
        setLive(false);
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    run();
    return () => abort.abort();
  }, [client, scope]);

  if (!session) return html`<${Login} onLogin=${(c, me) => setSession({ client: c, me })} />`;
  const { me } = session;
  const logout = () => {
    // A password login's session ends at the daemon too; an API token stays valid (it is
    // the user's to revoke).
    if (me.description === 'password login') session.client.call('POST', '/logout').catch(() => {});
    sessionStorage.removeItem(TOKEN_KEY);
    setSession(null);
    setTenant('');
    setVms([]);
  };
  const m = /^#\/vm\/([a-z0-9-]+)(\/console)?$/.exec(hash);
  let view;
  if (m && m[2]) view = html`<${Console} client=${client} name=${m[1]} />`;
  else if (m) view = html`<${VmDetail} client=${client} me=${me} name=${m[1]} vm=${vms.find((v) => v.name === m[1])} />`;
  else if (hash === '#/account') {
    view = html`<main><h2>Your account</h2>
      <p>${me.tenant ? `${me.tenant}/` : ''}${me.user}, ${me.role}.</p>
      <${PasswordForm} client=${session.client} /></main>`;
  } else if (hash.startsWith('#/admin')) view = html`<${AdminView} client=${session.client} me=${me} hash=${hash} />`;
  else if (/^#\/(networks|secgroups|routers)/.test(hash)) view = html`<${NetView} client=${client} me=${me} hash=${hash} />`;
  else if (hash === '#/vms') view = html`<${VmList} client=${client} me=${me} scope=${scope} vms=${vms} error=${error || streamError} />`;
  else {
    view = html`<${Dashboard} base=${session.client} client=${client} me=${me} scope=${scope} vms=${vms} />
      <${VmList} client=${client} me=${me} scope=${scope} vms=${vms} error=${error || streamError} />`;
  }
  return html`<div>
    <header>
      <a class="brand" href="#/">Tessera</a>
      <nav class="main-nav" aria-label="Views">
        <a href="#/" id="nav-dashboard">Dashboard</a>
        <a href="#/vms" id="nav-vms">VMs</a>
        <a href="#/networks" id="nav-networks">Networks</a>
        ${adminAbilities(me.role).admin && html`<a href="#/admin" id="nav-admin">Admin</a>`}
      </nav>
      <span class=${live ? 'live' : 'live off'} title="event stream">${live ? 'live' : 'offline'}</span>
      ${platform && html`<${TenantSwitch} base=${session.client} tenant=${tenant} onChange=${setTenant} />`}
      <a class="who" id="who" href="#/account" title="your account: set your password">${me.tenant ? `${me.tenant}/` : ''}${me.user} (${me.role})</a>
      <button id="logout" onClick=${logout}>Log out</button>
    </header>
    ${view}
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
