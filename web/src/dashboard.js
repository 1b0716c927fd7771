// The dashboard above the VM list (docs/web.md "Dashboard"): the host and its capacity, the
// tenants (platform administrators), the VMs by state (from the live list), allocation bars
// against the host's capacity, the pools and the tenant's quota, the recent audit records,
// and the host's CPU over the last hour for platform administrators.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { HostCpuGraph } from './graphs.js';
import { allocation, countStates, formatBytes } from './metrics.js';

const html = htm.bind(h);
const REFRESH_MS = 15000;
const SETTLE_MS = 500;
const EVENTS_SHOWN = 8;

// One bar: a <meter> (native, read by screen readers) with the numbers beside it.
function Bar({ id, label, used, total, fmt = String }) {
  const a = allocation(used, total);
  return html`<div class="alloc" id=${id} data-used=${used} data-total=${total ?? ''}>
    <span class="alloc-label">${label}</span>
    ${a.bounded
      ? html`<meter min="0" max=${total} value=${Math.min(used, total)} high=${total * 0.9} aria-label=${label}></meter>`
      : html`<span class="empty">no limit</span>`}
    <span class=${a.over ? 'alloc-num error' : 'alloc-num'}>${fmt(used)}${a.bounded ? ` of ${fmt(total)}` : ''}${a.over ? ' (over)' : ''}</span>
  </div>`;
}

function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

// base: the caller's own client (host, pools, tenants); client: the one acting in scope (the
// tenant shown: its audit and quota). vms: the live list of that tenant.
export function Dashboard({ base, client, me, scope, vms }) {
  const platform = me.role === 'platform-admin';
  const [host, setHost] = useState(null);
  const [pools, setPools] = useState([]);
  const [tenants, setTenants] = useState(null);
  const [quota, setQuota] = useState(null);
  const [audit, setAudit] = useState([]);
  const [error, setError] = useState('');
  // Allocation changes when a VM starts or stops: the list's states are the cue to look again.
  const cue = vms.map((v) => `${v.name}:${v.state}`).join(',');
  useEffect(() => {
    let gone = false;
    const load = () => {
      const fail = (err) => !gone && setError(err.message);
      base.call('GET', '/host').then((d) => !gone && setHost(d), fail);
      base.call('GET', '/pools').then((d) => !gone && setPools(d.pools || []), fail);
      if (platform) base.call('GET', '/tenants').then((d) => !gone && setTenants((d.tenants || []).length), fail);
      if (scope) client.call('GET', `/tenants/${scope}/quota`).then((d) => !gone && setQuota(d), fail);
      else setQuota(null);
      client.call('GET', '/audit').then((d) => !gone && setAudit((d.audit || []).slice(0, EVENTS_SHOWN)), fail);
    };
    // Half a second after the last change of the list, and after the list itself: the list
    // is what the page is for, and its first load must not queue behind these (the daemon
    // answers one request at a time); a burst of state changes costs one load.
    const first = setTimeout(load, SETTLE_MS);
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      gone = true;
      clearTimeout(first);
      clearInterval(timer);
    };
  }, [base, client, platform, scope, cue]);
  const states = countStates(vms);
  const disk = pools.reduce((acc, p) => ({ used: acc.used + p.used_bytes, cap: acc.cap + p.capacity_bytes }),
    { used: 0, cap: 0 });
  return html`<section class="dash" aria-label="Overview">
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="cards">
      <div class="card" id="dash-vms">
        <h3>VMs <a href="#/vms" class="more">the list</a></h3>
        <p class="big" id="dash-vm-total">${vms.length}</p>
        <ul class="states">${states.map(([st, n]) => html`<li>
          <span class=${`state state-${st}`}>${st}</span> <span data-state-count=${st}>${n}</span></li>`)}
        </ul>
      </div>
      <div class="card" id="dash-host">
        <h3>Host</h3>
        ${host && html`<p>${host.cpus} CPUs, ${formatBytes(host.memory_bytes)}; overcommit ${host.cpu_overcommit}× CPU,
          ${host.memory_overcommit}× memory; cgroups ${host.cgroups || 'none'}</p>`}
        ${tenants !== null && html`<p id="dash-tenants">${tenants} tenant${tenants === 1 ? '' : 's'}</p>`}
      </div>
      <div class="card" id="dash-alloc">
        <h3>Allocation</h3>
        ${host && html`
          <${Bar} id="alloc-vcpus" label="vCPUs (running VMs)" used=${host.allocated.vcpus} total=${host.capacity.vcpus} />
          <${Bar} id="alloc-memory" label="Memory (running VMs)" used=${host.allocated.memory_bytes}
            total=${host.capacity.memory_bytes} fmt=${formatBytes} />`}
        <${Bar} id="alloc-disk" label="Disk (pools)" used=${disk.used} total=${disk.cap} fmt=${formatBytes} />
        ${quota && html`<h4>Quota of ${quota.tenant}</h4>
          <${Bar} id="quota-vms" label="VMs" used=${quota.usage.vms} total=${quota.limits.vms} />
          <${Bar} id="quota-vcpus" label="vCPUs" used=${quota.usage.vcpus} total=${quota.limits.vcpus} />
          <${Bar} id="quota-memory" label="Memory" used=${quota.usage.memory_bytes} total=${quota.limits.memory_bytes} fmt=${formatBytes} />
          <${Bar} id="quota-disk" label="Disk" used=${quota.usage.disk_bytes} total=${quota.limits.disk_bytes} fmt=${formatBytes} />`}
      </div>
      <div class="card" id="dash-events">
        <h3>Recent changes</h3>
        <ol class="events">${audit.map((a) => html`<li class=${a.status >= 400 ? 'error' : ''}>
          <time>${timeOf(a.time)}</time> ${a.actor || '?'} ${a.action} ${a.target}${a.status >= 400 ? ` (${a.status})` : ''}</li>`)}
        </ol>
        ${audit.length === 0 && html`<p class="empty">Nothing yet.</p>`}
      </div>
      ${platform && html`<div class="card wide"><${HostCpuGraph} client=${base} /></div>`}
    </div>
  </section>`;
}
