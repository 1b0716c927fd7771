// The console's rules for administration and networks, without DOM so node --test runs them:
// what each role may change (docs/daemon.md's route table: the API refuses the rest anyway),
// quota arithmetic as the daemon admits a VM (src/daemon/api_inventory.c api_admit), and the
// text of security group rules, router entries and sizes.
import { roleAtLeast } from './api.js';

// What a role may do in the admin and network views. Reading is every role's: the lists show
// for a viewer too, without their controls.
export function adminAbilities(role) {
  const platform = role === 'platform-admin';
  const admin = roleAtLeast(role, 'tenant-admin');
  return {
    admin, // the Admin view: its tenant's users, tokens and quota
    tenants: platform, // create and delete tenants, see every tenant
    quotaEdit: platform, // PUT /tenants/{t}/quota
    users: admin, // create users, change their role, delete them
    tokens: admin, // create and revoke tokens
    netWrite: admin, // networks, security groups, routers: create, change, delete, repair
    nicGroups: admin, // PUT /vms/{name}/nics/{i}/security-groups
    externalCreate: platform, // POST /external-networks
  };
}

// The roles a tenant's user may have (POST /tenants/{t}/users), widest first.
export const TENANT_ROLES = ['tenant-admin', 'operator', 'viewer'];

const MiB = 1048576;
const GiB = 1024 * MiB;

// Bytes as people read them: "256 MiB", "1.5 GiB", "192 KiB", "512 B".
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n >= GiB) return `${+(n / GiB).toFixed(n % GiB ? 1 : 0)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} B`;
}

export const QUOTA_KEYS = [
  { key: 'vcpus', label: 'vCPUs', bytes: false },
  { key: 'memory_bytes', label: 'Memory', bytes: true },
  { key: 'disk_bytes', label: 'Disk', bytes: true },
  { key: 'vms', label: 'VMs', bytes: false },
];

function show(k, n) {
  return k.bytes ? formatBytes(n) : String(n);
}

// One bar per limit of a quota document ({limits, usage}: GET /tenants/{t}/quota): used,
// limit (null: unlimited), pct of the limit used (null when unlimited; 100 when over or when
// the limit is 0 and something is used) and its text.
export function quotaBars(quota) {
  const limits = (quota && quota.limits) || {};
  const usage = (quota && quota.usage) || {};
  return QUOTA_KEYS.map((k) => {
    const used = usage[k.key] || 0;
    const limit = typeof limits[k.key] === 'number' ? limits[k.key] : null;
    let pct = null;
    if (limit !== null) pct = limit > 0 ? Math.min(100, Math.round((used / limit) * 100)) : (used > 0 ? 100 : 0);
    const text = limit === null ? `${show(k, used)} used, no limit` : `${show(k, used)} of ${show(k, limit)}`;
    return { key: k.key, label: k.label, used, limit, pct, text, over: limit !== null && used > limit };
  });
}

// Whether a new VM asking for want ({vcpus, memory_bytes, disk_bytes, vms}) fits the quota,
// as the daemon decides: each asked-for amount plus what is used must not pass its limit.
// Answers {ok, rows: [{key, label, want, used, limit, left, fits}], reason} where reason says
// the first limit it would pass ('' when it fits).
export function quotaFit(quota, want) {
  const limits = (quota && quota.limits) || {};
  const usage = (quota && quota.usage) || {};
  const rows = QUOTA_KEYS.map((k) => {
    const w = want[k.key] || 0;
    const used = usage[k.key] || 0;
    const limit = typeof limits[k.key] === 'number' ? limits[k.key] : null;
    const left = limit === null ? null : Math.max(0, limit - used);
    const fits = limit === null || w === 0 || used + w <= limit;
    return { key: k.key, label: k.label, want: w, used, limit, left, fits,
      text: `needs ${show(k, w)}, ${limit === null ? 'no limit' : `${show(k, left)} left of ${show(k, limit)}`}` };
  });
  const bad = rows.find((r) => !r.fits);
  const k = bad && QUOTA_KEYS.find((q) => q.key === bad.key);
  const reason = bad
    ? `over the quota: ${bad.label} needs ${show(k, bad.want)}, only ${show(k, bad.left)} of ${show(k, bad.limit)} left`
    : '';
  return { ok: !bad, rows, reason };
}

// A quota form's text (numbers; memory and disk in MiB; blank: unlimited) as the body of
// PUT /tenants/{t}/quota, or {error} naming the field.
export function quotaBody(form) {
  const body = {};
  for (const k of QUOTA_KEYS) {
    const v = String(form[k.key] ?? '').trim();
    if (v === '') {
      body[k.key] = null;
      continue;
    }
    if (!/^\d+$/.test(v)) return { error: `${k.label}: a whole number, or blank for no limit` };
    body[k.key] = k.bytes ? Number(v) * MiB : Number(v);
  }
  return { body };
}

// The quota form's text of a quota's limits (memory and disk in MiB).
export function quotaForm(quota) {
  const limits = (quota && quota.limits) || {};
  const form = {};
  for (const k of QUOTA_KEYS) {
    const v = limits[k.key];
    form[k.key] = typeof v === 'number' ? String(k.bytes ? Math.floor(v / MiB) : v) : '';
  }
  return form;
}

// A security group rule as one line: "ingress tcp 80 from 10.0.0.0/8".
export function formatRule(r) {
  const proto = r.protocol || 'any';
  const ports = r.ports ? ` ${r.ports}` : '';
  const peer = r.peer || '0.0.0.0/0';
  return `${r.direction} ${proto}${ports} ${r.direction === 'egress' ? 'to' : 'from'} ${peer}`;
}

// A rule form ({direction, protocol, ports, peer}) as the body of POST .../rules, or {error}.
// Ports only for tcp and udp (the API's rule); blank fields are left out.
export function ruleBody(form) {
  const body = { direction: form.direction === 'egress' ? 'egress' : 'ingress' };
  const proto = form.protocol || 'any';
  body.protocol = proto;
  const ports = String(form.ports || '').trim();
  if (ports) {
    if (proto !== 'tcp' && proto !== 'udp') return { error: 'ports: only for tcp or udp' };
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(ports);
    if (!m || +m[1] < 1 || +m[1] > 65535 || (m[2] && (+m[2] < +m[1] || +m[2] > 65535))) {
      return { error: 'ports: a port such as 80, or a range such as 8000-8080' };
    }
    body.ports = ports;
  }
  const peer = String(form.peer || '').trim();
  if (peer) body.peer = peer;
  return { body };
}

// A router's port forward as a line: "tcp 8080 → 10.0.0.5:80 (web)".
export function formatForward(f) {
  return `${f.protocol} ${f.external_port} → ${f.ip}:${f.port}${f.vm ? ` (${f.vm})` : ''}`;
}

// A router's floating IP as a line: "198.51.100.10 ↔ 10.0.0.5 (web)".
export function formatFloating(f) {
  return `${f.external_ip} ↔ ${f.ip}${f.vm ? ` (${f.vm})` : ''}`;
}

// A port forward form ({protocol, external_port, target, port}) as POST .../port-forwards's
// body: target is a VM's name or an address (it has a dot). {error} when a port is not one.
export function forwardBody(form) {
  const ext = Number(form.external_port);
  if (!Number.isInteger(ext) || ext < 1 || ext > 65535) return { error: 'external port: 1 to 65535' };
  const body = { protocol: form.protocol === 'udp' ? 'udp' : 'tcp', external_port: ext };
  const target = String(form.target || '').trim();
  if (!target) return { error: 'a VM name or an address' };
  if (target.includes('.')) body.ip = target;
  else body.vm = target;
  if (String(form.port || '').trim()) {
    const p = Number(form.port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) return { error: 'port: 1 to 65535' };
    body.port = p;
  }
  return { body };
}

// A network's kind in a word: "VXLAN 42", "VLAN 100" or "local".
export function networkKind(n) {
  if (n.vxlan) return `VXLAN ${n.vxlan.vni}`;
  if (n.vlan) return `VLAN ${n.vlan}`;
  return 'local';
}
