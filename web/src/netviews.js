// The network views (docs/web.md "Networks"): virtual networks with their drift check, security
// groups and their rules, routers with attached networks, port forwards and floating IPs, the
// external networks; and a VM's NICs (with their security groups) and disk on its page. Each
// list is the tenant's (the client carries ?tenant= for a platform administrator); what the
// role may not change is not shown (policy.js), and the API refuses it anyway.
import { h } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { ErrorLine, useAction } from './ui.js';
import { apiPath, list } from './api.js';
import {
  adminAbilities, formatBytes, formatFloating, formatForward, formatRule, forwardBody, networkKind, ruleBody,
} from './policy.js';

const html = htm.bind(h);
const NAME_PATTERN = '[a-z0-9\\-]{1,63}';
const NAME_TITLE = '1 to 63 characters of a-z, 0-9 and -';

// The list under key, loaded and reloaded on demand.
function useList(client, key, path) {
  const [items, setItems] = useState([]);
  const [error, setError] = useState('');
  const reload = useCallback(() => list(client, key, path).then((l) => {
    setItems(l);
    setError('');
  }, (e) => setError(e.message)), [client, key, path]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { items, error, reload };
}

// The object at path, loaded and reloaded on demand (null until then).
function useDoc(client, path) {
  const [doc, setDoc] = useState(null);
  const [error, setError] = useState('');
  const reload = useCallback(() => client.call('GET', path).then((d) => {
    setDoc(d);
    setError('');
  }, (e) => setError(e.message)), [client, path]);
  useEffect(() => {
    reload();
  }, [reload]);
  return { doc, setDoc, error, reload };
}

function Tabs({ at }) {
  const tabs = [['#/networks', 'Networks'], ['#/secgroups', 'Security groups'], ['#/routers', 'Routers']];
  return html`<nav class="tabs" aria-label="Networking">${tabs.map(([href, label]) => html`<a href=${href}
    aria-current=${at === href ? 'page' : undefined}>${label}</a>`)}</nav>`;
}

// ---- Networks ----

function NetworkForm({ client, onDone }) {
  const [f, setF] = useState({ name: '', subnet: '', gateway: '', dhcp: true, vlan: '' });
  const { error, busy, run } = useAction();
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const body = { name: f.name, subnet: f.subnet.trim(), dhcp: f.dhcp };
      if (f.gateway.trim()) body.gateway = f.gateway.trim();
      if (String(f.vlan).trim()) body.vlan = Number(f.vlan);
      await client.call('POST', '/networks', body);
      setF({ name: '', subnet: '', gateway: '', dhcp: true, vlan: '' });
      onDone();
    });
  };
  return html`<form class="inline-row" id="network-form" onSubmit=${submit}>
    <label>Name <input id="network-name" value=${f.name} required pattern=${NAME_PATTERN} title=${NAME_TITLE} onInput=${set('name')} /></label>
    <label>Subnet <input id="network-subnet" value=${f.subnet} required placeholder="10.0.0.0/24" onInput=${set('subnet')} /></label>
    <label>Gateway <input id="network-gateway" value=${f.gateway} placeholder="its first address" onInput=${set('gateway')} /></label>
    <label>VLAN <input id="network-vlan" value=${f.vlan} inputmode="numeric" placeholder="none" onInput=${set('vlan')} /></label>
    <label class="check"><input type="checkbox" id="network-dhcp" checked=${f.dhcp} onChange=${set('dhcp')} /> DHCP</label>
    <button type="submit" id="network-create" disabled=${busy}>Create network</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

function ExternalNetworks({ client, can }) {
  const { items, error, reload } = useList(client, 'external_networks', '/external-networks');
  const [f, setF] = useState({ name: '', bridge: '', subnet: '', gateway: '', pool: '' });
  const act = useAction();
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { name: f.name, bridge: f.bridge, subnet: f.subnet, pool: f.pool };
      if (f.gateway.trim()) body.gateway = f.gateway.trim();
      await client.call('POST', '/external-networks', body);
      setF({ name: '', bridge: '', subnet: '', gateway: '', pool: '' });
      reload();
    });
  };
  return html`<section aria-labelledby="ext-title">
    <h3 id="ext-title">External networks</h3>
    <div class="scroll"><table class="list" id="external-networks">
      <thead><tr><th>Name</th><th>Subnet</th><th>Gateway</th>${can.externalCreate && html`<th>Bridge</th><th>Pool</th>`}</tr></thead>
      <tbody>${items.map((x) => html`<tr data-ext=${x.name}><td>${x.name}</td><td>${x.subnet}</td><td>${x.gateway}</td>
        ${can.externalCreate && html`<td>${x.bridge}</td><td>${x.pool}</td>`}</tr>`)}</tbody>
    </table></div>
    ${items.length === 0 && html`<p class="empty">No external networks.</p>`}
    ${can.externalCreate && html`<form class="inline-row" id="ext-form" onSubmit=${submit}>
      <label>Name <input id="ext-name" value=${f.name} required pattern=${NAME_PATTERN} title=${NAME_TITLE} onInput=${set('name')} /></label>
      <label>Host bridge <input id="ext-bridge" value=${f.bridge} required maxlength="15" onInput=${set('bridge')} /></label>
      <label>Subnet <input id="ext-subnet" value=${f.subnet} required placeholder="198.51.100.0/24" onInput=${set('subnet')} /></label>
      <label>Gateway <input id="ext-gateway" value=${f.gateway} placeholder="its first address" onInput=${set('gateway')} /></label>
      <label>Pool <input id="ext-pool" value=${f.pool} required placeholder="FIRST-LAST" onInput=${set('pool')} /></label>
      <button type="submit" id="ext-create" disabled=${act.busy}>Create external network</button>
    </form>`}
    <${ErrorLine} error=${error || act.error} />
  </section>`;
}

function NetworkList({ client, me }) {
  const can = adminAbilities(me.role);
  const { items, error, reload } = useList(client, 'networks', '/networks');
  return html`<main class="net">
    <${Tabs} at="#/networks" />
    <h2>Networks</h2>
    <div class="scroll"><table class="list" id="networks">
      <thead><tr><th>Name</th>${me.role === 'platform-admin' && html`<th>Tenant</th>`}<th>Subnet</th><th>Gateway</th><th>Kind</th><th>DHCP</th></tr></thead>
      <tbody>${items.map((n) => html`<tr data-network=${n.name}>
        <td><a href=${`#/networks/${n.name}`}>${n.name}</a></td>
        ${me.role === 'platform-admin' && html`<td>${n.tenant || '(platform)'}</td>`}
        <td>${n.subnet}</td><td>${n.gateway}</td><td>${networkKind(n)}</td><td>${n.dhcp ? 'yes' : 'no'}</td>
      </tr>`)}</tbody>
    </table></div>
    ${items.length === 0 && html`<p class="empty">No networks.</p>`}
    <${ErrorLine} error=${error} />
    ${can.netWrite && html`<${NetworkForm} client=${client} onDone=${reload} />`}
    <${ExternalNetworks} client=${client} can=${can} />
  </main>`;
}

function CheckResult({ check }) {
  if (!check) return null;
  return html`<div id="network-check" data-ok=${check.ok ? 'yes' : 'no'}>
    ${check.ok ? html`<p class="ok">No drift: the host matches the store.</p>`
      : html`<ul class="drift">${check.drift.map((d) => html`<li><strong>${d.object}</strong>: ${d.problem}</li>`)}</ul>`}
  </div>`;
}

function NetworkDetail({ client, me, name }) {
  const can = adminAbilities(me.role);
  const { doc: net, error } = useDoc(client, apiPath('networks', name));
  const [check, setCheck] = useState(null);
  const act = useAction();
  const runCheck = useCallback(() => act.run(async () => setCheck(await client.call('GET', apiPath('networks', name, 'check')))),
    [client, name, act.run]);
  useEffect(() => {
    runCheck();
  }, [runCheck]);
  const repair = () => act.run(async () => setCheck(await client.call('POST', apiPath('networks', name, 'repair'))));
  const remove = () => act.run(async () => {
    await client.call('DELETE', apiPath('networks', name));
    location.hash = '#/networks';
  });
  return html`<main class="net">
    <p><a href="#/networks">← Networks</a></p>
    <h2>Network ${name}</h2>
    <${ErrorLine} error=${error} />
    ${net && html`<dl class="config">
      <dt>Subnet</dt><dd>${net.subnet}</dd>
      <dt>Gateway</dt><dd>${net.gateway}</dd>
      <dt>DHCP</dt><dd>${net.dhcp ? 'yes' : 'no'}</dd>
      <dt>Kind</dt><dd id="network-kind">${networkKind(net)}</dd>
      ${net.vxlan && html`<dt>VXLAN peers</dt><dd>${net.vxlan.peers.join(', ') || 'none'}</dd>`}
      ${net.tenant !== undefined && me.role === 'platform-admin' && html`<dt>Tenant</dt><dd>${net.tenant || '(platform)'}</dd>`}
    </dl>`}
    <h3>Check</h3>
    <${CheckResult} check=${check} />
    <div class="buttons">
      <button id="network-check-again" disabled=${act.busy} onClick=${runCheck}>Check again</button>
      ${can.netWrite && html`<button id="network-repair" disabled=${act.busy} onClick=${repair}>Repair</button>`}
      ${can.netWrite && html`<button id="network-delete" class="danger" disabled=${act.busy} onClick=${remove}>Delete network</button>`}
    </div>
    <${ErrorLine} error=${act.error} />
  </main>`;
}

// ---- Security groups ----

function SecgroupList({ client, me }) {
  const can = adminAbilities(me.role);
  const { items, error, reload } = useList(client, 'security_groups', '/security-groups');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const act = useAction();
  const create = (e) => {
    e.preventDefault();
    act.run(async () => {
      await client.call('POST', '/security-groups', { name, description });
      setName('');
      setDescription('');
      reload();
    });
  };
  return html`<main class="net">
    <${Tabs} at="#/secgroups" />
    <h2>Security groups</h2>
    <div class="scroll"><table class="list" id="secgroups">
      <thead><tr><th>Name</th>${me.role === 'platform-admin' && html`<th>Tenant</th>`}<th>Description</th><th>Rules</th></tr></thead>
      <tbody>${items.map((g) => html`<tr data-secgroup=${g.name}>
        <td><a href=${`#/secgroups/${g.name}`}>${g.name}</a></td>
        ${me.role === 'platform-admin' && html`<td>${g.tenant || '(platform)'}</td>`}
        <td>${g.description}</td><td>${g.rules.length}</td>
      </tr>`)}</tbody>
    </table></div>
    ${items.length === 0 && html`<p class="empty">No security groups.</p>`}
    <${ErrorLine} error=${error} />
    ${can.netWrite && html`<form class="inline-row" id="secgroup-form" onSubmit=${create}>
      <label>Name <input id="secgroup-name" value=${name} required pattern=${NAME_PATTERN} title=${NAME_TITLE}
        onInput=${(e) => setName(e.target.value)} /></label>
      <label>Description <input id="secgroup-description" value=${description} maxlength="255"
        onInput=${(e) => setDescription(e.target.value)} /></label>
      <button type="submit" id="secgroup-create" disabled=${act.busy}>Create group</button>
      <${ErrorLine} error=${act.error} />
    </form>`}
  </main>`;
}

function SecgroupDetail({ client, me, name }) {
  const can = adminAbilities(me.role);
  const { doc: g, setDoc, error, reload } = useDoc(client, apiPath('security-groups', name));
  const [f, setF] = useState({ direction: 'ingress', protocol: 'tcp', ports: '', peer: '' });
  const act = useAction();
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const add = (e) => {
    e.preventDefault();
    act.run(async () => {
      const { body, error: bad } = ruleBody(f);
      if (bad) throw new Error(bad);
      await client.call('POST', apiPath('security-groups', name, 'rules'), body);
      setF({ ...f, ports: '', peer: '' });
      await reload();
    });
  };
  const del = (r) => act.run(async () => {
    await client.call('DELETE', apiPath('security-groups', name, 'rules', r.id));
    setDoc({ ...g, rules: g.rules.filter((x) => x.id !== r.id) });
  });
  const remove = () => act.run(async () => {
    await client.call('DELETE', apiPath('security-groups', name));
    location.hash = '#/secgroups';
  });
  return html`<main class="net">
    <p><a href="#/secgroups">← Security groups</a></p>
    <h2>Security group ${name}</h2>
    <${ErrorLine} error=${error} />
    ${g && html`<p>${g.description}</p>
    <h3>Rules</h3>
    <ul class="rules" id="rules">${g.rules.map((r) => html`<li data-rule=${r.id}>
      <span class="rule">${formatRule(r)}</span>
      ${can.netWrite && html`<button class="danger" disabled=${act.busy} aria-label=${`delete rule ${formatRule(r)}`}
        onClick=${() => del(r)}>Delete</button>`}</li>`)}</ul>
    ${g.rules.length === 0 && html`<p class="empty">No rules: members reach each other, nothing else comes in.</p>`}`}
    ${can.netWrite && html`<form class="inline-row" id="rule-form" onSubmit=${add}>
      <label>Direction <select id="rule-direction" value=${f.direction} onChange=${set('direction')}>
        <option value="ingress">ingress</option><option value="egress">egress</option></select></label>
      <label>Protocol <select id="rule-protocol" value=${f.protocol} onChange=${set('protocol')}>
        ${['tcp', 'udp', 'icmp', 'any'].map((p) => html`<option value=${p}>${p}</option>`)}</select></label>
      <label>Ports <input id="rule-ports" value=${f.ports} placeholder="80 or 8000-8080" onInput=${set('ports')} /></label>
      <label>Peer <input id="rule-peer" value=${f.peer} placeholder="0.0.0.0/0 or group:NAME" onInput=${set('peer')} /></label>
      <button type="submit" id="rule-add" disabled=${act.busy}>Add rule</button>
    </form>`}
    ${can.netWrite && html`<div class="buttons"><button id="secgroup-delete" class="danger" disabled=${act.busy}
      onClick=${remove}>Delete group</button></div>`}
    <${ErrorLine} error=${act.error} />
  </main>`;
}

// ---- Routers ----

function RouterForm({ client, onDone, networks, externals }) {
  const [name, setName] = useState('');
  const [ext, setExt] = useState('');
  const [nets, setNets] = useState([]);
  const act = useAction();
  const toggle = (n) => setNets(nets.includes(n) ? nets.filter((x) => x !== n) : [...nets, n]);
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { name, networks: nets };
      if (ext) body.external_network = ext;
      await client.call('POST', '/routers', body);
      setName('');
      setNets([]);
      onDone();
    });
  };
  return html`<form class="inline-row" id="router-form" onSubmit=${submit}>
    <label>Name <input id="router-name" value=${name} required pattern=${NAME_PATTERN} title=${NAME_TITLE}
      onInput=${(e) => setName(e.target.value)} /></label>
    <label>External network <select id="router-ext" value=${ext} onChange=${(e) => setExt(e.target.value)}>
      <option value="">none</option>${externals.map((x) => html`<option value=${x.name}>${x.name}</option>`)}</select></label>
    <fieldset><legend>Networks</legend>${networks.map((n) => html`<label class="check"><input type="checkbox"
      checked=${nets.includes(n.name)} onChange=${() => toggle(n.name)} /> ${n.name}</label>`)}
      ${networks.length === 0 && html`<span class="empty">none yet</span>`}</fieldset>
    <button type="submit" id="router-create" disabled=${act.busy}>Create router</button>
    <${ErrorLine} error=${act.error} />
  </form>`;
}

function RouterList({ client, me }) {
  const can = adminAbilities(me.role);
  const { items, error, reload } = useList(client, 'routers', '/routers');
  const nets = useList(client, 'networks', '/networks');
  const exts = useList(client, 'external_networks', '/external-networks');
  return html`<main class="net">
    <${Tabs} at="#/routers" />
    <h2>Routers</h2>
    <div class="scroll"><table class="list" id="routers">
      <thead><tr><th>Name</th>${me.role === 'platform-admin' && html`<th>Tenant</th>`}<th>External</th><th>Address</th><th>Networks</th></tr></thead>
      <tbody>${items.map((r) => html`<tr data-router=${r.name}>
        <td><a href=${`#/routers/${r.name}`}>${r.name}</a></td>
        ${me.role === 'platform-admin' && html`<td>${r.tenant || '(platform)'}</td>`}
        <td>${r.external_network || 'none'}</td><td>${r.external_ip || ''}</td><td>${r.networks.join(', ')}</td>
      </tr>`)}</tbody>
    </table></div>
    ${items.length === 0 && html`<p class="empty">No routers.</p>`}
    <${ErrorLine} error=${error} />
    ${can.netWrite && html`<${RouterForm} client=${client} onDone=${reload} networks=${nets.items} externals=${exts.items} />`}
  </main>`;
}

function RouterDetail({ client, me, name }) {
  const can = adminAbilities(me.role);
  const { doc: r, setDoc, error } = useDoc(client, apiPath('routers', name));
  const nets = useList(client, 'networks', '/networks');
  const [attach, setAttach] = useState('');
  const [fwd, setFwd] = useState({ protocol: 'tcp', external_port: '', target: '', port: '' });
  const [fip, setFip] = useState({ target: '', external_ip: '' });
  const act = useAction();
  const sub = (method, path, body) => act.run(async () => setDoc(await client.call(method, path, body)));
  const free = r ? nets.items.filter((n) => !r.networks.includes(n.name)) : [];
  const addForward = (e) => {
    e.preventDefault();
    const { body, error: bad } = forwardBody(fwd);
    act.run(async () => {
      if (bad) throw new Error(bad);
      setDoc(await client.call('POST', apiPath('routers', name, 'port-forwards'), body));
      setFwd({ ...fwd, external_port: '', target: '', port: '' });
    });
  };
  const addFloating = (e) => {
    e.preventDefault();
    const target = fip.target.trim();
    const body = target.includes('.') ? { ip: target } : { vm: target };
    if (fip.external_ip.trim()) body.external_ip = fip.external_ip.trim();
    act.run(async () => {
      setDoc(await client.call('POST', apiPath('routers', name, 'floating-ips'), body));
      setFip({ target: '', external_ip: '' });
    });
  };
  const remove = () => act.run(async () => {
    await client.call('DELETE', apiPath('routers', name));
    location.hash = '#/routers';
  });
  return html`<main class="net">
    <p><a href="#/routers">← Routers</a></p>
    <h2>Router ${name}</h2>
    <${ErrorLine} error=${error} />
    ${r && html`<dl class="config">
      <dt>External network</dt><dd>${r.external_network || 'none'}</dd>
      <dt>External address</dt><dd>${r.external_ip || ''}</dd>
      <dt>Source NAT</dt><dd>${r.snat ? 'yes' : 'no'}</dd>
    </dl>
    <h3>Networks</h3>
    <ul class="rules" id="router-networks">${r.networks.map((n) => html`<li data-network=${n}>
      <a href=${`#/networks/${n}`}>${n}</a>
      ${can.netWrite && html`<button class="danger" disabled=${act.busy} aria-label=${`detach ${n}`}
        onClick=${() => sub('DELETE', apiPath('routers', name, 'networks', n))}>Detach</button>`}</li>`)}</ul>
    ${can.netWrite && free.length > 0 && html`<form class="inline-row" onSubmit=${(e) => {
      e.preventDefault();
      sub('POST', apiPath('routers', name, 'networks'), { network: attach || free[0].name });
    }}>
      <label>Network <select id="router-attach" value=${attach || free[0].name} onChange=${(e) => setAttach(e.target.value)}>
        ${free.map((n) => html`<option value=${n.name}>${n.name}</option>`)}</select></label>
      <button type="submit" disabled=${act.busy}>Attach</button></form>`}
    <h3>Port forwards</h3>
    <ul class="rules" id="port-forwards">${r.port_forwards.map((f) => html`<li>${formatForward(f)}
      ${can.netWrite && html`<button class="danger" disabled=${act.busy} aria-label=${`delete forward ${formatForward(f)}`}
        onClick=${() => sub('DELETE', apiPath('routers', name, 'port-forwards', f.protocol, f.external_port))}>Delete</button>`}</li>`)}</ul>
    ${r.port_forwards.length === 0 && html`<p class="empty">None.</p>`}
    ${can.netWrite && r.external_network && html`<form class="inline-row" id="forward-form" onSubmit=${addForward}>
      <label>Protocol <select value=${fwd.protocol} onChange=${(e) => setFwd({ ...fwd, protocol: e.target.value })}>
        <option value="tcp">tcp</option><option value="udp">udp</option></select></label>
      <label>External port <input value=${fwd.external_port} inputmode="numeric" required
        onInput=${(e) => setFwd({ ...fwd, external_port: e.target.value })} /></label>
      <label>VM or address <input value=${fwd.target} required onInput=${(e) => setFwd({ ...fwd, target: e.target.value })} /></label>
      <label>Port <input value=${fwd.port} inputmode="numeric" placeholder="the same"
        onInput=${(e) => setFwd({ ...fwd, port: e.target.value })} /></label>
      <button type="submit" disabled=${act.busy}>Add forward</button></form>`}
    <h3>Floating IPs</h3>
    <ul class="rules" id="floating-ips">${r.floating_ips.map((f) => html`<li>${formatFloating(f)}
      ${can.netWrite && html`<button class="danger" disabled=${act.busy} aria-label=${`release ${f.external_ip}`}
        onClick=${() => sub('DELETE', apiPath('routers', name, 'floating-ips', f.external_ip))}>Release</button>`}</li>`)}</ul>
    ${r.floating_ips.length === 0 && html`<p class="empty">None.</p>`}
    ${can.netWrite && r.external_network && html`<form class="inline-row" id="floating-form" onSubmit=${addFloating}>
      <label>VM or address <input value=${fip.target} required onInput=${(e) => setFip({ ...fip, target: e.target.value })} /></label>
      <label>External address <input value=${fip.external_ip} placeholder="from the pool"
        onInput=${(e) => setFip({ ...fip, external_ip: e.target.value })} /></label>
      <button type="submit" disabled=${act.busy}>Add floating IP</button></form>`}
    ${can.netWrite && html`<div class="buttons"><button id="router-delete" class="danger" disabled=${act.busy}
      onClick=${remove}>Delete router</button></div>`}`}
    <${ErrorLine} error=${act.error} />
  </main>`;
}

// #/networks[/NAME], #/secgroups[/NAME], #/routers[/NAME]. client: the one acting in the
// page's tenant.
export function NetView({ client, me, hash }) {
  const m = /^#\/(networks|secgroups|routers)(?:\/([a-z0-9-]{1,63}))?$/.exec(hash);
  if (!m) return html`<main><p>No such page. <a href="#/networks">Networks</a></p></main>`;
  const [, kind, name] = m;
  const views = {
    networks: [NetworkList, NetworkDetail],
    secgroups: [SecgroupList, SecgroupDetail],
    routers: [RouterList, RouterDetail],
  };
  const View = views[kind][name ? 1 : 0];
  return html`<${View} key=${hash} client=${client} me=${me} name=${name} />`;
}

// ---- A VM's NICs and disk (its page) ----

function NicGroups({ client, vmName, index, nic, groups, canEdit, onVm }) {
  const [editing, setEditing] = useState(false);
  const [chosen, setChosen] = useState(nic.security_groups || []);
  const act = useAction();
  const toggle = (g) => setChosen(chosen.includes(g) ? chosen.filter((x) => x !== g) : [...chosen, g]);
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      onVm(await client.call('PUT', apiPath('vms', vmName, 'nics', index, 'security-groups'), { security_groups: chosen }));
      setEditing(false);
    });
  };
  const current = (nic.security_groups || []).join(', ') || 'none (unfiltered)';
  if (!editing) {
    return html`<span class="nic-groups">${current}
      ${canEdit && html` <button id=${`nic-${index}-edit`} onClick=${() => {
        setChosen(nic.security_groups || []);
        setEditing(true);
      }}>Change</button>`}</span>`;
  }
  return html`<form class="inline-row" onSubmit=${save}>
    <fieldset><legend>Security groups of NIC ${index} (at most 4)</legend>
      ${groups.map((g) => html`<label class="check"><input type="checkbox" checked=${chosen.includes(g.name)}
        onChange=${() => toggle(g.name)} /> ${g.name}</label>`)}
      ${groups.length === 0 && html`<span class="empty">no groups</span>`}</fieldset>
    <button type="submit" id=${`nic-${index}-save`} disabled=${act.busy}>Save</button>
    <button type="button" onClick=${() => setEditing(false)}>Cancel</button>
    <${ErrorLine} error=${act.error} />
  </form>`;
}

// The NICs and disk of VM name, from GET /vms/{name} (again when its state changes) and its
// disk's volume.
export function VmHardware({ client, me, name, state }) {
  const can = adminAbilities(me.role);
  const [vm, setVm] = useState(null);
  const [vol, setVol] = useState(null);
  const [groups, setGroups] = useState([]);
  const [error, setError] = useState('');
  useEffect(() => {
    client.call('GET', apiPath('vms', name)).then((v) => {
      setVm(v);
      setError('');
      if (v.volume) client.call('GET', apiPath('volumes', v.volume)).then(setVol, () => setVol(null));
    }, (e) => setError(e.message));
  }, [client, name, state]);
  useEffect(() => {
    if (can.nicGroups) list(client, 'security_groups', '/security-groups').then(setGroups, () => setGroups([]));
  }, [client, can.nicGroups]);
  if (!vm) return html`<${ErrorLine} error=${error} />`;
  const nics = vm.nics || [];
  return html`<section aria-labelledby="nics-title">
    <h3 id="nics-title">NICs</h3>
    ${nics.length === 0 ? html`<p class="empty" id="nics-none">The user-mode NIC (no virtual network).</p>`
      : html`<div class="scroll"><table class="list" id="nics">
        <thead><tr><th>#</th><th>Network</th><th>Address</th><th>MAC</th><th>Tap</th><th>Security groups</th></tr></thead>
        <tbody>${nics.map((n, i) => html`<tr data-nic=${i}>
          <td>${i}</td><td><a href=${`#/networks/${n.network}`}>${n.network}</a></td><td>${n.ip || ''}</td>
          <td><code>${n.mac}</code></td><td>${n.tap}</td>
          <td><${NicGroups} client=${client} vmName=${name} index=${i} nic=${n} groups=${groups}
            canEdit=${can.nicGroups} onVm=${setVm} /></td>
        </tr>`)}</tbody></table></div>`}
    <h3>Disk</h3>
    <div class="scroll"><table class="list" id="disks">
      <thead><tr><th>Volume</th><th>Size</th><th>Allocated</th><th>Format</th><th>Clone</th><th>Backing</th></tr></thead>
      <tbody><tr data-disk=${vm.volume}>
        <td>${vm.volume}</td><td>${formatBytes(vm.disk_bytes)}</td>
        <td>${vol ? formatBytes(vol.allocated_bytes) : ''}</td><td>${vol ? vol.format : ''}</td>
        <td>${vm.clone}</td><td>${vol && vol.backing ? `${vol.backing.tenant ? `${vol.backing.tenant}/` : ''}${vol.backing.name}` : ''}</td>
      </tr></tbody>
    </table></div>
    <${ErrorLine} error=${error} />
  </section>`;
}
