// The numbers the graphs and the dashboard show: units, rates, the history's columns as chart
// data (unknown stays unknown), counts by state, allocation bars.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocation, countStates, formatBytes, formatOps, formatPercent, formatRate, latest, plotData } from '../src/metrics.js';

test('bytes in binary units, unknown as a dash', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(812), '812 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(64 * 1048576), '64 MiB');
  assert.equal(formatBytes(123.4 * 1048576), '123 MiB');
  assert.equal(formatBytes(10.25 * 1073741824), '10.3 GiB');
  assert.equal(formatBytes(2 ** 60), '1024 PiB');
  assert.equal(formatBytes(null), '—');
  assert.equal(formatBytes(NaN), '—');
  assert.equal(formatRate(2048), '2 KiB/s');
  assert.equal(formatRate(undefined), '—');
});

test('percentages and operation rates', () => {
  assert.equal(formatPercent(0.42), '42%');
  assert.equal(formatPercent(0.0123), '1.2%');
  assert.equal(formatPercent(1.07), '107%');
  assert.equal(formatPercent(null), '—');
  assert.equal(formatOps(3.14159), '3.1/s');
  assert.equal(formatOps(250), '250/s');
});

test("the history's columns become chart data of one length, nulls kept", () => {
  const series = { t: [10, 12, 14], cpu: [0.5, null, 1], memory_bytes: [1, 2] };
  assert.deepEqual(plotData(series, ['cpu'], 100), [[10, 12, 14], [50, null, 100]]);
  assert.deepEqual(plotData(series, ['memory_bytes', 'absent']), [[10, 12, 14], [1, 2, null], [null, null, null]]);
  assert.deepEqual(plotData(null, ['cpu']), [[], []]);
  assert.equal(latest(series, 'cpu'), 1);
  assert.equal(latest({ t: [1, 2], cpu: [0.9, null] }, 'cpu'), null, 'the newest point, unknown: not an older one');
  assert.equal(latest({ t: [] }, 'cpu'), null);
});

test('VMs by state, running first', () => {
  const vms = [{ state: 'stopped' }, { state: 'running' }, { state: 'error' }, { state: 'running' }, {}];
  assert.deepEqual(countStates(vms), [['running', 2], ['error', 1], ['stopped', 1], ['unknown', 1]]);
  assert.deepEqual(countStates([]), []);
});

test('allocation bars: a share of the bound, full and marked when over, none without a bound', () => {
  assert.deepEqual(allocation(2, 8), { pct: 25, over: false, bounded: true });
  assert.deepEqual(allocation(12, 8), { pct: 100, over: true, bounded: true });
  assert.deepEqual(allocation(1, 3), { pct: 33.3, over: false, bounded: true });
  assert.deepEqual(allocation(5, null), { pct: 0, over: false, bounded: false });
  assert.deepEqual(allocation(undefined, 4), { pct: 0, over: false, bounded: true });
});
