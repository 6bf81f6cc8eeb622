/**
 * The load test's end reports: a table for the terminal, and a self-contained HTML file (uPlot
 * and the data inlined: it opens from disk, offline) with latency over time, rate over time,
 * the latency distribution, the steps and the thresholds.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LoadTestResult } from './loadtest.ts';

const ms = (v: number) => (v < 1 ? `${(v * 1000).toFixed(0)} µs` : v < 1000 ? `${v.toFixed(v < 10 ? 2 : 1)} ms` : `${(v / 1000).toFixed(2)} s`);

/** The end-of-test summary for a terminal. */
export function textReport(r: LoadTestResult): string {
  const lines: string[] = [];
  lines.push(
    `${r.model} model: ${r.iterations.toLocaleString('en-US')} iterations in ${(r.durationMs / 1000).toFixed(1)} s, ${r.rate.toFixed(1)}/s; errors ${r.errors} (${
      r.iterations ? ((100 * r.errors) / r.iterations).toFixed(2) : '0.00'
    }%)${r.dropped ? `; ${r.dropped} arrivals dropped (slots full)` : ''}`,
  );
  const header = ['step', 'count', 'errors', 'mean', 'p50', 'p90', 'p95', 'p99', 'max'];
  const rows = Object.entries(r.steps).map(([name, s]) => [name, String(s.count), String(s.errors), ms(s.mean), ms(s.p50), ms(s.p90), ms(s.p95), ms(s.p99), ms(s.max)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(fmt(header), ...rows.map(fmt));
  for (const [name, s] of Object.entries(r.steps)) {
    for (const [kind, n] of Object.entries(s.errorKinds)) lines.push(`  ${name}: ${n} × ${kind}`);
  }
  for (const t of r.thresholds) lines.push(`${t.ok ? 'ok  ' : 'FAIL'} ${t.threshold} (measured ${Number.isNaN(t.actual) ? 'nothing' : t.actual.toFixed(2)})`);
  return lines.join('\n');
}

function asset(file: string): string {
  return readFileSync(fileURLToPath(new URL(file, import.meta.resolve('uplot/dist/uPlot.iife.min.js'))), 'utf8');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function htmlReport(r: LoadTestResult, title: string): string {
  // JSON in a script element: `<` escaped so no string in it can close the element.
  const data = JSON.stringify(r).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>${asset('uPlot.min.css')}
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2430; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .2em .8em; border-bottom: 1px solid #e3e6ea; } th:first-child, td:first-child { text-align: left; }
.ok { color: #2e7d32; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5em; }
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p id="summary"></p>
<h2>Thresholds</h2><table id="thresholds"><tr><th>threshold</th><th>measured</th><th>result</th></tr></table>
<h2>Steps</h2><table id="steps"><tr><th>step</th><th>count</th><th>errors</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr></table>
<div class="plots">
<div><h2>Latency over time (ms)</h2><div id="plot-latency" class="plot"></div></div>
<div><h2>Rate over time (iterations/s)</h2><div id="plot-rate" class="plot"></div></div>
<div><h2>Latency distribution (ms by percentile)</h2><div id="plot-distribution" class="plot"></div></div>
</div>
<h2>Errors</h2><table id="errors"><tr><th>step</th><th>kind</th><th>count</th></tr></table>
<script>${asset('uPlot.iife.min.js')}</script>
<script id="data" type="application/json">${data}</script>
<script>
'use strict';
const r = JSON.parse(document.getElementById('data').textContent);
const fmt = (v) => v < 1 ? (v * 1000).toFixed(0) + ' µs' : v < 1000 ? v.toFixed(v < 10 ? 2 : 1) + ' ms' : (v / 1000).toFixed(2) + ' s';
function addRow(table, cells, cls) { const tr = document.createElement('tr'); cells.forEach((c, i) => { const td = document.createElement('td'); td.textContent = String(c); if (cls && i === cells.length - 1) td.className = cls; tr.append(td); }); document.getElementById(table).append(tr); }
document.getElementById('summary').textContent = r.model + ' model · ' + r.iterations.toLocaleString('en-US') + ' iterations in ' + (r.durationMs / 1000).toFixed(1) + ' s · ' + r.rate.toFixed(1) + '/s · ' + r.errors + ' errors' + (r.dropped ? ' · ' + r.dropped + ' dropped' : '') + ' · ' + (r.ok ? 'all thresholds met' : 'THRESHOLDS FAILED') + ' · started ' + new Date(r.startedAt).toISOString();
for (const t of r.thresholds) addRow('thresholds', [t.threshold, Number.isNaN(t.actual) ? '–' : t.actual.toFixed(2), t.ok ? 'ok' : 'FAIL'], t.ok ? 'ok' : 'fail');
for (const [name, s] of Object.entries(r.steps)) { addRow('steps', [name, s.count, s.errors, fmt(s.mean), fmt(s.p50), fmt(s.p90), fmt(s.p95), fmt(s.p99), fmt(s.max)]); for (const [k, n] of Object.entries(s.errorKinds)) addRow('errors', [name, k, n]); }
const t = r.timeline.map((p) => p.t);
const opts = (series, xLabel) => ({ width: 560, height: 260, scales: { x: { time: false } }, axes: [{ label: xLabel }, {}], series: [{ label: xLabel }, ...series] });
new uPlot(opts([{ label: 'p50', stroke: '#1f77b4' }, { label: 'p90', stroke: '#ff7f0e' }, { label: 'p99', stroke: '#c62828' }], 'seconds'), [t, r.timeline.map((p) => p.p50), r.timeline.map((p) => p.p90), r.timeline.map((p) => p.p99)], document.getElementById('plot-latency'));
new uPlot(opts([{ label: 'achieved', stroke: '#2ca02c', fill: '#2ca02c22' }, { label: 'target', stroke: '#7f7f7f', dash: [5, 5] }, { label: 'errors', stroke: '#c62828' }], 'seconds'), [t, r.timeline.map((p) => p.rate), r.timeline.map((p) => r.model === 'open' ? p.target : null), r.timeline.map((p) => p.errors)], document.getElementById('plot-rate'));
new uPlot(opts([{ label: 'latency', stroke: '#9467bd' }], 'percentile'), [r.distribution.map((d) => d.percentile), r.distribution.map((d) => d.ms)], document.getElementById('plot-distribution'));
document.body.dataset.plots = String(document.querySelectorAll('.uplot').length);
</script></body></html>
`;
}
