// The admin views (docs/web.md "Administration"): a platform administrator's tenants, and for
// one tenant its users, tokens, quota (with usage bars) and resource pool; a tenant-admin sees
// its own tenant's. Also the quota preview of the create-VM dialog. Everything goes through the
// public REST API; what a role may not do is not shown (policy.js), and the API refuses it anyway.
import { h } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { ErrorLine, useAction } from './ui.js';
import './admin.css';
import { apiPath, list, quotaOf, tokensOf } from './api.js';
import { TENANT_ROLES, adminAbilities, formatBytes, quotaBars, quotaBody, quotaFit, quotaForm, QUOTA_KEYS } from './policy.js';

const html = htm.bind(h);

function when(t) {
  return t ? new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ') : '';
}

// Usage bars of a quota document.
export function QuotaBars({ quota }) {
  return html`<div class="bars">${quotaBars(quota).map((b) => html`<div class="bar-row" data-quota=${b.key}>
    <span class="bar-label">${b.label}</span>
    <span class="meter" role="meter" aria-label=${b.label} aria-valuemin="0" aria-valuemax="100"
      aria-valuenow=${b.pct ?? 0} aria-valuetext=${b.text}>
      <span class=${`fill${b.over ? ' over' : ''}`} style=${`width: ${b.pct ?? 0}%`}></span>
    </span>
    <span class="bar-text">${b.text}</span>
  </div>`)}</div>`;
}

function QuotaPanel({ client, tenant, can }) {
  const [quota, setQuota] = useState(null);
  const [form, setForm] = useState(null);
  const { error, busy, run } = useAction();
  const load = useCallback(() => run(async () => {
    const q = await quotaOf(client, tenant);
    setQuota(q);
    setForm(quotaForm(q));
  }), [client, tenant, run]);
  useEffect(() => {
    load();
  }, [load]);
  const save = (e) => {
    e.preventDefault();
    run(async () => {
      const { body, error: bad } = quotaBody(form);
      if (bad) throw new Error(bad);
      const q = await client.call('PUT', apiPath('tenants', tenant, 'quota'), body);
      setQuota(q);
      setForm(quotaForm(q));
    });
  };
  return html`<section aria-labelledby="quota-title">
    <h3 id="quota-title">Quota</h3>
    ${quota && html`<${QuotaBars} quota=${quota} />`}
    ${can.quotaEdit && form && html`<form class="grid-form" id="quota-form" onSubmit=${save}>
      ${QUOTA_KEYS.map((k) => html`<label>${k.label}${k.bytes ? ' (MiB)' : ''}
        <input name=${k.key} id=${`quota-${k.key}`} inputmode="numeric" value=${form[k.key]} placeholder="no limit"
          onInput=${(e) => setForm({ ...form, [k.key]: e.target.value })} /></label>`)}
      <div class="buttons"><button type="submit" id="quota-save" disabled=${busy}>Save quota</button></div>
    </form>`}
    ${!can.quotaEdit && html`<p class="note">Only a platform administrator changes a quota.</p>`}
    <${ErrorLine} error=${error} />
  </section>`;
}

function ResourcesPanel({ client, tenant }) {
  const [res, setRes] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    client.call('GET', apiPath('tenants', tenant, 'resources')).then(setRes, (e) => setError(e.message));
  }, [client, tenant]);
  const cpu = (res && res.cpu) || {};
  const mem = (res && res.memory) || {};
  return html`<section aria-labelledby="res-title">
    <h3 id="res-title">Resource pool</h3>
    ${res && html`<dl class="config" id="tenant-resources">
      <dt>CPU shares</dt><dd>${cpu.shares ?? ''}</dd>
      <dt>CPU limit</dt><dd>${cpu.limit === null || cpu.limit === undefined ? 'none' : `${cpu.limit} cores`}</dd>
      <dt>Memory limit</dt><dd>${mem.limit_bytes === null || mem.limit_bytes === undefined ? 'none' : formatBytes(mem.limit_bytes)}</dd>
    </dl>`}
    <${ErrorLine} error=${error} />
  </section>`;
}

function UsersPanel({ client, tenant, me, can, users, reload }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const { error, busy, run } = useAction();
  const self = (u) => me.tenant === tenant && me.user === u.name;
  const create = (e) => {
    e.preventDefault();
    run(async () => {
      await client.call('POST', apiPath('tenants', tenant, 'users'), { name, role });
      setName('');
      reload();
    });
  };
  const setUserRole = (u, r) => run(async () => {
    await client.call('PUT', apiPath('tenants', tenant, 'users', u.name), { role: r });
  }).then(reload);
  const remove = (u) => run(async () => {
    await client.call('DELETE', apiPath('tenants', tenant, 'users', u.name));
  }).then(reload);
  return html`<section aria-labelledby="users-title">
    <h3 id="users-title">Users</h3>
    <div class="scroll"><table class="list" id="users">
      <thead><tr><th>Name</th><th>Role</th><th>Created</th>${can.users && html`<th><span class="sr">Actions</span></th>`}</tr></thead>
      <tbody>${users.map((u) => html`<tr data-user=${u.name}>
        <td>${u.name}${self(u) ? ' (you)' : ''}</td>
        <td>${can.users && !self(u)
          ? html`<select aria-label=${`role of ${u.name}`} value=${u.role} disabled=${busy}
              onChange=${(e) => setUserRole(u, e.target.value)}>
              ${TENANT_ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select>`
          : u.role}</td>
        <td>${when(u.created)}</td>
        ${can.users && html`<td>${!self(u) && html`<button class="danger" disabled=${busy}
          aria-label=${`delete user ${u.name}`} onClick=${() => remove(u)}>Delete</button>`}</td>`}
      </tr>`)}</tbody>
    </table></div>
    ${can.users && html`<form class="inline-row" id="user-form" onSubmit=${create}>
      <label>Name <input id="user-name" value=${name} required pattern="[a-z0-9\\-]{1,63}"
        title="1 to 63 characters of a-z, 0-9 and -" onInput=${(e) => setName(e.target.value)} /></label>
      <label>Role <select id="user-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        ${TENANT_ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <button type="submit" id="user-create" disabled=${busy}>Add user</button>
    </form>`}
    ${can.users && users.length > 0 && html`<${PasswordForm} client=${client.withTenant(tenant)}
      users=${users.map((u) => u.name)} />`}
    <${ErrorLine} error=${error} />
  </section>`;
}

// Sets a password (PUT /password): a user's of the client's tenant when users lists them, the
// caller's own otherwise. The password is never shown back, and the field clears when set.
export function PasswordForm({ client, users }) {
  const [user, setUser] = useState(users ? users[0] : '');
  const [password, setPassword] = useState('');
  const [done, setDone] = useState('');
  const { error, busy, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    setDone('');
    run(async () => {
      await client.call('PUT', '/password', users ? { user, password } : { password });
      setPassword('');
      setDone(users ? `The password of ${user} is set.` : 'Your password is set.');
    });
  };
  return html`<form class="inline-row" id="password-form" onSubmit=${submit}>
    ${users && html`<label>User <select id="password-user" value=${user}
      onChange=${(e) => setUser(e.target.value)}>
      ${users.map((u) => html`<option value=${u}>${u}</option>`)}</select></label>`}
    <label>${users ? 'New password' : 'Your new password'} <input id="password-new" type="password"
      autocomplete="new-password" minlength="8" maxlength="256" required value=${password}
      onInput=${(e) => setPassword(e.target.value)} /></label>
    <button type="submit" id="password-set" disabled=${busy}>Set password</button>
    ${done && html`<span class="busy" role="status" id="password-done">${done}</span>`}
    <${ErrorLine} error=${error} />
  </form>`;
}

function TokensPanel({ client, tenant, me, can, users }) {
  const [tokens, setTokens] = useState([]);
  const [user, setUser] = useState('');
  const [role, setRole] = useState('');
  const [description, setDescription] = useState('');
  const [secret, setSecret] = useState(null);
  const { error, busy, run } = useAction();
  const load = useCallback(() => run(async () => setTokens(await tokensOf(client, tenant))), [client, tenant, run]);
  useEffect(() => {
    load();
  }, [load]);
  const target = user || (users[0] && users[0].name) || '';
  const create = (e) => {
    e.preventDefault();
    run(async () => {
      const body = { tenant, user: target, description };
      if (role) body.role = role;
      const t = await client.call('POST', '/tokens', body);
      setSecret(t);
      setDescription('');
      setTokens(await tokensOf(client, tenant));
    });
  };
  const revoke = (t) => run(async () => {
    await client.call('DELETE', apiPath('tokens', t.id));
    setTokens(await tokensOf(client, tenant));
  });
  return html`<section aria-labelledby="tokens-title">
    <h3 id="tokens-title">API tokens</h3>
    ${secret && html`<div class="secret" role="status" id="new-token-box">
      <p>The token for ${secret.user} (${secret.role}). Copy it now: it is not shown again.</p>
      <code id="new-token">${secret.token}</code>
      <div class="buttons"><button onClick=${() => setSecret(null)}>Done</button></div>
    </div>`}
    <div class="scroll"><table class="list" id="tokens">
      <thead><tr><th>Id</th><th>User</th><th>Role</th><th>Description</th><th>Created</th><th>State</th>
        ${can.tokens && html`<th><span class="sr">Actions</span></th>`}</tr></thead>
      <tbody>${tokens.map((t) => html`<tr data-token=${t.id}>
        <td><code>${t.id}</code></td><td>${t.user}</td><td>${t.role}</td><td>${t.description}</td>
        <td>${when(t.created)}</td><td>${t.revoked ? 'revoked' : 'active'}</td>
        ${can.tokens && html`<td>${!t.revoked && html`<button class="danger" disabled=${busy}
          aria-label=${`revoke token ${t.id}`} onClick=${() => revoke(t)}>Revoke</button>`}</td>`}
      </tr>`)}</tbody>
    </table></div>
    ${can.tokens && html`<form class="inline-row" id="token-form" onSubmit=${create}>
      <label>User <select id="token-user" value=${target} onChange=${(e) => setUser(e.target.value)}>
        ${users.map((u) => html`<option value=${u.name}>${u.name}</option>`)}</select></label>
      <label>Role <select id="token-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        <option value="">the user's</option>
        ${TENANT_ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <label>Description <input id="token-description" value=${description} maxlength="255"
        onInput=${(e) => setDescription(e.target.value)} /></label>
      <button type="submit" id="token-create" disabled=${busy || !target}>Create token</button>
    </form>`}
    ${me.tenant !== tenant && me.role !== 'platform-admin' && html`<p class="note">Tokens of another tenant are not shown.</p>`}
    <${ErrorLine} error=${error} />
  </section>`;
}

// One tenant's page: users, tokens, quota, resource pool.
function TenantPage({ client, me, tenant }) {
  const can = adminAbilities(me.role);
  const [users, setUsers] = useState([]);
  const [error, setError] = useState('');
  const reload = useCallback(() => {
    list(client, 'users', apiPath('tenants', tenant, 'users')).then(setUsers, (e) => setError(e.message));
  }, [client, tenant]);
  useEffect(reload, [reload]);
  return html`<main class="admin">
    ${can.tenants && html`<p><a href="#/admin">← Tenants</a></p>`}
    <h2>Tenant <span id="tenant-name">${tenant}</span></h2>
    <${ErrorLine} error=${error} />
    <${QuotaPanel} client=${client} tenant=${tenant} can=${can} />
    <${UsersPanel} client=${client} tenant=${tenant} me=${me} can=${can} users=${users} reload=${reload} />
    <${TokensPanel} client=${client} tenant=${tenant} me=${me} can=${can} users=${users} />
    <${ResourcesPanel} client=${client} tenant=${tenant} />
  </main>`;
}

// A platform administrator's tenants: create, delete (the API's message when it refuses).
function TenantsPage({ client }) {
  const [tenants, setTenants] = useState([]);
  const [name, setName] = useState('');
  const [confirm, setConfirm] = useState('');
  const { error, busy, run } = useAction();
  const load = useCallback(() => run(async () => setTenants(await list(client, 'tenants'))), [client, run]);
  useEffect(() => {
    load();
  }, [load]);
  const create = (e) => {
    e.preventDefault();
    run(async () => {
      await client.call('POST', '/tenants', { name });
      setName('');
      setTenants(await list(client, 'tenants'));
    });
  };
  const remove = (t) => run(async () => {
    setConfirm('');
    await client.call('DELETE', apiPath('tenants', t));
    setTenants(await list(client, 'tenants'));
  });
  return html`<main class="admin">
    <h2>Tenants</h2>
    <div class="scroll"><table class="list" id="tenants">
      <thead><tr><th>Name</th><th>Created</th><th><span class="sr">Actions</span></th></tr></thead>
      <tbody>${tenants.map((t) => html`<tr data-tenant=${t.name}>
        <td><a href=${`#/admin/${t.name}`}>${t.name}</a></td><td>${when(t.created)}</td>
        <td>${confirm === t.name
          ? html`<span class="confirm">Delete ${t.name} with its users and tokens?
              <button class="danger" id="tenant-delete-confirm" onClick=${() => remove(t.name)}>Delete</button>
              <button onClick=${() => setConfirm('')}>Cancel</button></span>`
          : html`<button class="danger" disabled=${busy} aria-label=${`delete tenant ${t.name}`}
              onClick=${() => setConfirm(t.name)}>Delete</button>`}</td>
      </tr>`)}</tbody>
    </table></div>
    <form class="inline-row" id="tenant-form" onSubmit=${create}>
      <label>New tenant <input id="tenant-new" value=${name} required pattern="[a-z0-9\\-]{1,63}"
        title="1 to 63 characters of a-z, 0-9 and -" onInput=${(e) => setName(e.target.value)} /></label>
      <button type="submit" id="tenant-create" disabled=${busy}>Create tenant</button>
    </form>
    <${ErrorLine} error=${error} />
  </main>`;
}

// #/admin (tenants for a platform administrator, the own tenant for a tenant-admin) and
// #/admin/TENANT. client: the session's, without ?tenant=.
export function AdminView({ client, me, hash }) {
  const can = adminAbilities(me.role);
  if (!can.admin) return html`<main><p>Administration needs the role tenant-admin or higher.</p></main>`;
  const m = /^#\/admin\/([a-z0-9-]{1,63})$/.exec(hash);
  if (can.tenants && !m) return html`<${TenantsPage} client=${client} />`;
  const tenant = can.tenants ? m[1] : me.tenant;
  return html`<${TenantPage} key=${tenant} client=${client} me=${me} tenant=${tenant} />`;
}

// The create dialog's quota: what the new VM would use against what is left. Calls onFit with
// quotaFit's answer ({ok, reason}); the platform's own scope ('' tenant) has no quota.
export function QuotaPreview({ client, tenant, want, onFit }) {
  const [quota, setQuota] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!tenant) return;
    quotaOf(client, tenant).then(setQuota, (e) => setError(e.message));
  }, [client, tenant]);
  const fit = quota ? quotaFit(quota, want) : null;
  const ok = fit ? fit.ok : true;
  const reason = fit ? fit.reason : '';
  useEffect(() => onFit({ ok, reason }), [ok, reason, onFit]);
  if (!tenant) return null;
  return html`<div class="quota-preview" id="quota-preview" aria-live="polite">
    <h3>Quota of ${tenant}</h3>
    ${fit && html`<table class="list compact"><tbody>${fit.rows.map((r) => html`<tr data-quota=${r.key}
      class=${r.fits ? '' : 'over'}><th scope="row">${r.label}</th><td>${r.text}</td></tr>`)}</tbody></table>`}
    ${reason && html`<p class="error" id="quota-reason">${reason}</p>`}
    <${ErrorLine} error=${error} />
  </div>`;
}
