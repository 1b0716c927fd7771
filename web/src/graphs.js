// Graphs of the daemon's metric history (docs/web.md "Graphs"): a VM's CPU, memory and
// balloon, disk and network over the last hour, and the host's CPU, redrawn from
// GET .../stats/history every 2 s. Charts are uPlot's (canvas), loaded with the first graph so
// the VM list comes up without it. Each chart's figure carries the newest value it plots in
// data-latest (and says it in its caption), for people and for the browser test.
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import 'uplot/dist/uPlot.min.css';
import { fetchHistory } from './api.js';
import { formatBytes, formatOps, formatPercent, formatRate, latest, plotData } from './metrics.js';

const html = htm.bind(h);
export const POLL_MS = 2000;
const COLORS = ['#2f6fdf', '#d9822b', '#3a9c4a', '#b3261e'];

// Polls the history of vm (null: the host's) every POLL_MS while mounted: {doc, error}.
export function useHistory(client, vm) {
  const [state, setState] = useState({ doc: null, error: '' });
  useEffect(() => {
    let timer = null;
    let gone = false;
    const poll = () => {
      fetchHistory(client, vm).then((doc) => {
        if (!gone) setState({ doc, error: '' });
      }, (err) => {
        if (!gone) setState((s) => ({ doc: s.doc, error: err.message }));
      }).finally(() => {
        if (!gone) timer = setTimeout(poll, POLL_MS);
      });
    };
    poll();
    return () => {
      gone = true;
      clearTimeout(timer);
    };
  }, [client, vm]);
  return state;
}

// One uPlot chart. lines: [{label}], data: plotData()'s, fmt: a value for people; max: the y
// axis' top when fixed (CPU: 100%); floor: the least top it has (a VM's memory size), or the
// data's highest point when that is higher (a VMM's resident set passes its guest's RAM).
function Chart({ id, title, lines, data, fmt, max, floor = 0, caption }) {
  const box = useRef(null);
  const plot = useRef(null);
  const current = useRef(data); // what the chart is made with when uPlot has loaded
  current.current = data;
  const least = useRef(floor); // read by the y range at each redraw: the VM's size comes later
  least.current = floor;
  useEffect(() => {
    let gone = false;
    let observer = null;
    import('uplot').then(({ default: UPlot }) => {
      if (gone || !box.current) return;
      const width = Math.max(200, box.current.clientWidth);
      plot.current = new UPlot({
        width,
        height: 150,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true },
          y: max ? { range: [0, max] } : { range: (_u, _min, hi) => [0, Math.max(least.current, hi * 1.1) || 1] },
        },
        axes: [{}, { size: 84, values: (_u, vals) => vals.map(fmt) }],
        series: [{}, ...lines.map((l, i) => ({
          label: l.label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: false,
          value: (_u, v) => fmt(v),
        }))],
      }, current.current, box.current);
      observer = new ResizeObserver(() => {
        if (plot.current && box.current) plot.current.setSize({ width: Math.max(200, box.current.clientWidth), height: 150 });
      });
      observer.observe(box.current);
    });
    return () => {
      gone = true;
      if (observer) observer.disconnect();
      if (plot.current) plot.current.destroy();
      plot.current = null;
    };
  }, []); // one chart per mount; new data goes in below
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  const ends = data.slice(1).map((col) => (col.length && col[col.length - 1] !== null ? String(col[col.length - 1]) : ''));
  return html`<figure class="chart" id=${id} data-latest=${ends.length ? ends[0] : ''} data-latest-all=${ends.join(',')}
    data-points=${data[0].length}>
    <figcaption><strong>${title}</strong> <span class="now">${caption}</span></figcaption>
    <div class="plot" ref=${box}></div>
  </figure>`;
}

// A VM's graphs, mounted on its page.
export function VmGraphs({ client, name }) {
  const { doc, error } = useHistory(client, name);
  const s = doc ? doc.series : null;
  const cpu = plotData(s, ['cpu', 'cpu_wait'], 100);
  const mem = plotData(s, ['memory_bytes', 'balloon_bytes']);
  const disk = plotData(s, ['disk_read_bytes_per_s', 'disk_write_bytes_per_s']);
  const iops = plotData(s, ['disk_reads_per_s', 'disk_writes_per_s']);
  const net = plotData(s, ['net_rx_bytes_per_s', 'net_tx_bytes_per_s']);
  const pct = (v) => (v === null || v === undefined ? '—' : formatPercent(v / 100));
  return html`<section class="graphs" aria-label="Graphs of the last hour">
    <h3>Last hour</h3>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${doc && doc.series.t.length === 0 && html`<p class="empty">No samples yet: the history starts when the VM runs.</p>`}
    <div class="chart-grid">
      <${Chart} id="graph-cpu" title="CPU" lines=${[{ label: 'used' }, { label: 'waited for' }]} data=${cpu} fmt=${pct}
        max=${100} caption=${`${formatPercent(latest(s, 'cpu'))} of ${doc ? doc.cpus : '?'} vCPU used, ${
          formatPercent(latest(s, 'cpu_wait'))} waited for`} />
      <${Chart} id="graph-memory" title="Memory" lines=${[{ label: 'resident' }, { label: 'balloon' }]} data=${mem}
        fmt=${formatBytes} floor=${doc && doc.memory_bytes ? doc.memory_bytes : 0}
        caption=${`${formatBytes(latest(s, 'memory_bytes'))} resident, ${formatBytes(latest(s, 'balloon_bytes'))} in the balloon`} />
      <${Chart} id="graph-disk" title="Disk" lines=${[{ label: 'read' }, { label: 'write' }]} data=${disk} fmt=${formatRate}
        caption=${`${formatRate(latest(s, 'disk_read_bytes_per_s'))} read, ${formatRate(latest(s, 'disk_write_bytes_per_s'))} written`} />
      <${Chart} id="graph-iops" title="Disk requests" lines=${[{ label: 'reads' }, { label: 'writes' }]} data=${iops} fmt=${formatOps}
        caption=${`${formatOps(latest(s, 'disk_reads_per_s'))} reads, ${formatOps(latest(s, 'disk_writes_per_s'))} writes`} />
      <${Chart} id="graph-net" title="Network" lines=${[{ label: 'rx' }, { label: 'tx' }]} data=${net} fmt=${formatRate}
        caption=${`${formatRate(latest(s, 'net_rx_bytes_per_s'))} in, ${formatRate(latest(s, 'net_tx_bytes_per_s'))} out`} />
    </div>
  </section>`;
}

// The host's CPU, for the dashboard (platform administrators).
export function HostCpuGraph({ client }) {
  const { doc, error } = useHistory(client, null);
  const s = doc ? doc.series : null;
  const pct = (v) => (v === null || v === undefined ? '—' : formatPercent(v / 100));
  return html`<div class="host-graph">
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <${Chart} id="graph-host-cpu" title="Host CPU" lines=${[{ label: 'CPU' }]} data=${plotData(s, ['cpu'], 100)}
      fmt=${pct} max=${100} caption=${`${formatPercent(latest(s, 'cpu'))} of ${doc ? doc.cpus : '?'} CPUs`} />
  </div>`;
}
