// Numbers for people and series for charts: byte units, rates, percentages, the columns of
// GET /api/v1/vms/{name}/stats/history as a chart's data, VM counts by state and allocation
// bars. No DOM here, so node --test runs all of it.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// Bytes in binary units, three significant digits at most ("1.5 MiB", "812 B"); '—' for no
// number (an unknown value is shown as unknown, never as 0).
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${n < 0 ? '-' : ''}${Number(v.toFixed(digits))} ${UNITS[u]}`;
}

export function formatRate(n) {
  const b = formatBytes(n);
  return b === '—' ? b : `${b}/s`;
}

// A fraction (0.42) as a percentage ("42%"); one decimal under 10%.
export function formatPercent(f) {
  if (typeof f !== 'number' || !Number.isFinite(f)) return '—';
  const p = f * 100;
  return `${Number(p.toFixed(p < 10 ? 1 : 0))}%`;
}

// Operations per second ("12.5/s").
export function formatOps(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return `${Number(n.toFixed(n < 10 ? 1 : 0))}/s`;
}

// The chart's data (uPlot's: [times, ...one array per field]) from the history's columns;
// a missing column becomes nulls, so every array has the times' length. scale multiplies
// (CPU fraction to percent).
export function plotData(series, fields, scale = 1) {
  const t = (series && Array.isArray(series.t)) ? series.t : [];
  const cols = fields.map((f) => {
    const col = series && Array.isArray(series[f]) ? series[f] : [];
    return t.map((_, i) => (typeof col[i] === 'number' ? col[i] * scale : null));
  });
  return [t.slice(), ...cols];
}

// The newest point's value of a field: null when there is none or it is unknown (a chart's
// latest value is the last point it plots, not an older one).
export function latest(series, field) {
  const col = series && Array.isArray(series[field]) ? series[field] : [];
  const v = col.length ? col[col.length - 1] : null;
  return typeof v === 'number' ? v : null;
}

// How many VMs are in each state: [[state, n], ...], running first, then by name.
export function countStates(vms) {
  const n = new Map();
  for (const v of vms) n.set(v.state || 'unknown', (n.get(v.state || 'unknown') || 0) + 1);
  return [...n.entries()].sort((a, b) => (a[0] === 'running' ? -1 : b[0] === 'running' ? 1 : a[0].localeCompare(b[0])));
}

// An allocation bar: used of total as a percentage for the bar's width (0..100, more than the
// total shows full and says so), and whether it is over. total null or 0: no bound.
export function allocation(used, total) {
  if (typeof used !== 'number' || !Number.isFinite(used)) used = 0;
  if (typeof total !== 'number' || !(total > 0)) return { pct: 0, over: false, bounded: false };
  return { pct: Math.min(100, Math.round((used / total) * 1000) / 10), over: used > total, bounded: true };
}
