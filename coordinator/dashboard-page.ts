/**
 * The dashboard page and the login page, served by the coordinator (coordinator/http-routes.ts).
 * Plain HTML with its script inline: nothing to build, nothing fetched but the pool's own feed
 * and uPlot (a small charting library, served from the package's dependencies). Every string
 * from the cluster (node names, errors) goes into the page as text, never as markup.
 */

export const LOGIN_HTML = (message: string): string =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsfutures — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; background: #f6f7f9; color: #1d2430; display: grid; place-items: center; min-height: 90vh; }
form { background: #fff; padding: 2em; border-radius: 8px; box-shadow: 0 1px 4px #0002; display: grid; gap: .8em; min-width: 20em; }
input, button { font: inherit; padding: .5em; }
.error { color: #b3261e; }
</style></head><body>
<form method="post" action="/wsfutures/login">
  <h1 style="margin:0;font-size:1.3em">wsfutures dashboard</h1>
  <label for="token">The pool's token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Log in</button>
  ${message ? `<p class="error">${message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</p>` : ''}
</form></body></html>`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsfutures</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/wsfutures/assets/uplot.min.css">
<script src="/wsfutures/assets/uplot.min.js"></script>
<style>
:root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --muted: #6b7380; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2430; }
header { background: #1d2430; color: #fff; padding: .6em 1.2em; display: flex; gap: 1.6em; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.1em; margin: 0 1em 0 0; }
header .figure b { font-size: 1.25em; font-variant-numeric: tabular-nums; }
header .figure span { color: #aeb6c2; margin-left: .3em; }
main { padding: 1em 1.2em; display: grid; gap: 1em; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0002; padding: .8em 1em; overflow: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 1em; margin: 0 0 .6em; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .25em .6em .25em 0; border-bottom: 1px solid #eceef1; white-space: nowrap; }
th { color: var(--muted); font-weight: 500; }
.state { padding: .05em .5em; border-radius: 1em; font-size: .85em; color: #fff; }
.state.ready { background: var(--ok); } .state.joining { background: #1565c0; } .state.draining { background: var(--warn); } .state.lost { background: var(--bad); }
tr[data-state=lost] { color: var(--muted); }
.slot { display: inline-block; width: .9em; height: .9em; margin-right: 2px; border-radius: 2px; background: #d7dbe0; vertical-align: middle; }
.slot.busy { background: #1565c0; }
#stream { width: 100%; display: block; }
.legend span { margin-right: 1em; white-space: nowrap; }
.legend i { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .3em; vertical-align: middle; }
#errors { list-style: none; padding: 0; margin: 0; }
#errors li { border-bottom: 1px solid #eceef1; padding: .3em 0; }
#errors summary { cursor: pointer; }
#errors .name { color: var(--bad); font-weight: 600; }
#errors pre { background: #f6f7f9; padding: .5em; overflow: auto; max-height: 20em; font-size: 12px; }
.muted { color: var(--muted); }
#status.off { color: #ffab91; }
#loadtest .figures { display: flex; gap: 1.6em; flex-wrap: wrap; margin-bottom: .6em; }
#loadtest .figures b { font-size: 1.25em; font-variant-numeric: tabular-nums; }
#loadtest .figures span { color: var(--muted); margin-left: .3em; }
</style></head>
<body>
<header>
  <h1>wsfutures</h1>
  <div class="figure"><b id="state">…</b></div>
  <div class="figure"><b id="slots">0</b><span>slots</span></div>
  <div class="figure"><b id="running">0</b><span>running</span></div>
  <div class="figure"><b id="queued">0</b><span>queued</span></div>
  <div class="figure"><b id="completed">0</b><span>completed</span></div>
  <div class="figure"><b id="failed">0</b><span>failed</span></div>
  <div class="figure"><b id="retried">0</b><span>retried</span></div>
  <div class="figure"><b id="throughput">0</b><span>tasks/s</span></div>
  <div class="figure"><span id="status">connecting…</span></div>
</header>
<main>
  <section class="wide" id="loadtest" hidden><h2>Load test <span class="muted" id="lt-model"></span></h2>
    <div class="figures">
      <div><b id="lt-rate">0</b><span>iterations/s</span></div>
      <div><b id="lt-target">0</b><span id="lt-target-unit">asked</span></div>
      <div><b id="lt-p50">–</b><span>p50</span></div>
      <div><b id="lt-p90">–</b><span>p90</span></div>
      <div><b id="lt-p99">–</b><span>p99</span></div>
      <div><b id="lt-iterations">0</b><span>iterations</span></div>
      <div><b id="lt-errors">0</b><span>errors</span></div>
      <div><b id="lt-dropped">0</b><span>dropped</span></div>
      <div><b id="lt-elapsed">0 s</b><span id="lt-length"></span></div>
    </div>
    <div id="chart-loadtest"></div>
    <table><thead><tr><th>step</th><th>per second</th><th>p50</th><th>p90</th><th>p99</th><th>errors</th><th>errors by kind</th></tr></thead>
    <tbody id="lt-steps"></tbody></table></section>
  <section class="wide"><h2>Worker nodes</h2>
    <table><thead><tr><th>node</th><th>state</th><th>slots</th><th>running</th><th>completed</th><th>failed</th><th>retried</th><th>host</th><th>address</th><th>runtime</th><th>heartbeat</th><th>since</th></tr></thead>
    <tbody id="nodes"></tbody></table></section>
  <section class="wide"><h2>Task stream <span class="muted">(last 20 s, a row per task slot)</span></h2>
    <canvas id="stream" height="60"></canvas><div class="legend" id="legend"></div><div class="muted" id="dropped"></div></section>
  <section><h2>Throughput (tasks/s)</h2><div id="chart-throughput"></div></section>
  <section><h2>Queue and running</h2><div id="chart-queue"></div></section>
  <section><h2>Task functions</h2>
    <table><thead><tr><th>function</th><th>completed</th><th>failed</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>queue wait p50</th></tr></thead>
    <tbody id="functions"></tbody></table></section>
  <section><h2>Last errors</h2><ul id="errors"><li class="muted">none</li></ul></section>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms) => ms === undefined ? '–' : ms < 1 ? (ms * 1000).toFixed(0) + ' µs' : ms < 1000 ? ms.toFixed(ms < 10 ? 2 : 0) + ' ms' : (ms / 1000).toFixed(1) + ' s';
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function row(cells) { const tr = document.createElement('tr'); for (const c of cells) tr.append(c instanceof Node ? wrap(c) : el('td', c)); return tr; }
function wrap(node) { const td = document.createElement('td'); td.append(node); return td; }
// Functions get colours in the order they first appear; red is kept for failures.
const PALETTE = ['#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#bcbd22', '#7f7f7f', '#aec7e8', '#98df8a', '#ffbb78', '#c5b0d5', '#9edae5'];
const colors = new Map();
function colorOf(fn) {
  if (!colors.has(fn)) colors.set(fn, PALETTE[colors.size % PALETTE.length]);
  return colors.get(fn);
}

// History for the charts: one point per update, the last 10 minutes.
const MAX_POINTS = 1200;
const hist = { t: [], tput: [], queued: [], running: [] };
let lastCompleted, lastAt;
function chart(id, series) {
  const target = $(id);
  return new uPlot({ width: Math.max(300, target.clientWidth - 10), height: 180, series: [{}, ...series], axes: [{}, { size: 60 }], legend: { show: true } }, [[]], target);
}
const tputChart = chart('chart-throughput', [{ label: 'tasks/s', stroke: '#1565c0', fill: '#1565c022' }]);
const queueChart = chart('chart-queue', [{ label: 'queued', stroke: '#ef6c00' }, { label: 'running', stroke: '#2e7d32' }]);
// The load test's rate against the asked load, one point per second of the test; the chart is
// made when a load test first shows (a hidden section has no width to draw in).
let ltChart, ltSecond = -1;
const ltHist = { t: [], rate: [], target: [], p99: [] };

function renderLoadTest(lt) {
  const section = $('loadtest');
  section.hidden = !lt;
  if (!lt) return;
  const open = lt.model === 'open';
  $('lt-model').textContent = open ? '(open model: iterations per second)' : '(closed model: virtual users)';
  $('lt-rate').textContent = fmtInt(lt.rate);
  $('lt-target').textContent = fmtInt(lt.target);
  $('lt-target-unit').textContent = open ? 'iterations/s asked' : 'virtual users asked';
  const whole = lt.steps.find((st) => st.name === 'iteration');
  $('lt-p50').textContent = whole && whole.count ? fmtMs(whole.p50) : '–';
  $('lt-p90').textContent = whole && whole.count ? fmtMs(whole.p90) : '–';
  $('lt-p99').textContent = whole && whole.count ? fmtMs(whole.p99) : '–';
  $('lt-iterations').textContent = fmtInt(lt.iterations);
  $('lt-errors').textContent = fmtInt(lt.errors);
  $('lt-dropped').textContent = fmtInt(lt.dropped);
  $('lt-elapsed').textContent = (lt.elapsedMs / 1000).toFixed(0) + ' s';
  $('lt-length').textContent = Number.isFinite(lt.lengthMs) && lt.lengthMs ? 'of ' + (lt.lengthMs / 1000).toFixed(0) + ' s' : '';
  section.dataset.rate = String(lt.rate); section.dataset.target = String(lt.target); section.dataset.second = String(lt.second);
  // The whole iteration first, then the steps in the order they were first measured.
  const steps = [...lt.steps].sort((a, b) => (a.name === 'iteration' ? -1 : b.name === 'iteration' ? 1 : 0));
  $('lt-steps').replaceChildren(...steps.map((st) => {
    const kinds = Object.entries(st.errorKinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => k + ': ' + fmtInt(n)).join(', ');
    const tr = row([st.name === 'iteration' ? 'whole iteration' : st.name, fmtInt(st.count), st.count ? fmtMs(st.p50) : '–', st.count ? fmtMs(st.p90) : '–', st.count ? fmtMs(st.p99) : '–', fmtInt(st.errors), kinds || '–']);
    tr.dataset.step = st.name; tr.dataset.p50 = String(st.p50); tr.dataset.errors = String(st.errors);
    return tr;
  }));
  if (!ltChart) {
    const target = $('chart-loadtest');
    ltChart = new uPlot({
      width: Math.max(300, target.clientWidth - 10), height: 200,
      scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      series: [{ label: 'second' }, { label: 'iterations/s', stroke: '#1565c0', fill: '#1565c022' }, { label: open ? 'asked' : 'virtual users asked', stroke: '#6b7380', dash: [6, 4] }, { label: 'p99 (ms)', stroke: '#c62828', scale: 'ms' }],
      axes: [{}, { size: 60 }, { scale: 'ms', side: 1, size: 60 }],
    }, [[]], target);
  }
  if (lt.second > ltSecond) {
    ltSecond = lt.second;
    ltHist.t.push(lt.second); ltHist.rate.push(lt.rate); ltHist.target.push(lt.target); ltHist.p99.push(whole && whole.count ? whole.p99 : null);
    ltChart.setData([ltHist.t, ltHist.rate, ltHist.target, ltHist.p99]);
  }
}

// Task stream: spans of the last 20 s, a row per node and lane.
const WINDOW_MS = 20000;
let spans = [];
function drawStream() {
  const canvas = $('stream');
  const now = Date.now();
  spans = spans.filter((s) => s.end > now - WINDOW_MS);
  const lanes = [...new Set(spans.map((s) => s.node + ' #' + s.lane))].sort();
  const rowH = 14, left = 150;
  canvas.height = Math.max(40, lanes.length * rowH + 20);
  const width = canvas.width = canvas.clientWidth;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, canvas.height);
  ctx.font = '11px system-ui'; ctx.fillStyle = '#6b7380';
  const x = (t) => left + ((t - (now - WINDOW_MS)) / WINDOW_MS) * (width - left - 4);
  lanes.forEach((lane, i) => ctx.fillText(lane.slice(0, 24), 2, i * rowH + 11));
  const index = new Map(lanes.map((l, i) => [l, i]));
  for (const s of spans) {
    const i = index.get(s.node + ' #' + s.lane);
    const x0 = x(Math.max(s.start, now - WINDOW_MS)), x1 = Math.max(x0 + 1, x(s.end));
    ctx.fillStyle = s.ok ? colorOf(s.fn) : '#c62828';
    ctx.fillRect(x0, i * rowH + 2, x1 - x0, rowH - 4);
    if (!s.ok) { ctx.strokeStyle = '#000'; ctx.strokeRect(x0, i * rowH + 2, Math.max(2, x1 - x0), rowH - 4); }
  }
  ctx.fillStyle = '#6b7380';
  ctx.fillText('-20 s', left, canvas.height - 4); ctx.fillText('now', width - 26, canvas.height - 4);
}

function render(msg) {
  const s = msg.stats;
  $('state').textContent = s.state;
  $('slots').textContent = fmtInt(s.slots);
  $('running').textContent = fmtInt(s.running);
  $('queued').textContent = fmtInt(s.queued);
  $('completed').textContent = fmtInt(s.completed);
  $('failed').textContent = fmtInt(s.failed);
  $('retried').textContent = fmtInt(s.retried);
  // Throughput between two updates, from the counts (finer than the pool's per-second figure).
  const done = s.completed + s.failed;
  const tput = lastAt === undefined ? s.throughput.last1s : (done - lastCompleted) / Math.max(0.001, (s.at - lastAt) / 1000);
  lastCompleted = done; lastAt = s.at;
  $('throughput').textContent = fmtInt(tput);

  const nodes = $('nodes');
  nodes.replaceChildren(...s.nodes.map((n) => {
    const slots = document.createElement('span');
    for (let i = 0; i < n.slots; i++) slots.append(el('span', undefined, 'slot' + (i < n.running && n.state !== 'lost' ? ' busy' : '')));
    const tr = row([n.name + (n.local ? ' (local)' : ''), el('span', n.state, 'state ' + n.state), slots, fmtInt(n.running), fmtInt(n.completed), fmtInt(n.failed), fmtInt(n.retried), n.hostname, n.address, n.runtime, fmtMs(n.heartbeatRttMs), new Date(n.connectedAt).toLocaleTimeString()]);
    tr.dataset.node = n.name; tr.dataset.state = n.state; tr.dataset.completed = String(n.completed);
    return tr;
  }));

  $('functions').replaceChildren(...s.functions.map((f) => {
    const d = f.duration || {};
    const tr = row([f.name, fmtInt(f.completed), fmtInt(f.failed), fmtMs(d.p50), fmtMs(d.p90), fmtMs(d.p99), fmtMs(d.max), fmtMs(f.queueWait && f.queueWait.p50)]);
    tr.dataset.function = f.name;
    return tr;
  }));

  const errors = $('errors');
  if (msg.errors.length > 0) errors.replaceChildren(...msg.errors.map((e) => {
    const li = document.createElement('li');
    const d = document.createElement('details');
    const sum = document.createElement('summary');
    sum.append(el('span', e.name, 'name'), ': ' + e.message + ' ', el('span', '(' + e.fn + ' on ' + e.node + ', ' + new Date(e.at).toLocaleTimeString() + ')', 'muted'));
    d.append(sum, el('pre', e.stack || e.message));
    li.append(d);
    return li;
  }));

  spans.push(...msg.spans);
  $('dropped').textContent = msg.droppedSpans > 0 ? msg.droppedSpans + ' more tasks ended in the last update than the stream shows' : '';
  const legend = $('legend');
  legend.replaceChildren(...s.functions.map((f) => { const sp = document.createElement('span'); const i = el('i'); i.style.background = colorOf(f.name); sp.append(i, f.name); return sp; }), (() => { const sp = document.createElement('span'); const i = el('i'); i.style.background = '#c62828'; sp.append(i, 'failed'); return sp; })());

  hist.t.push(s.at / 1000); hist.tput.push(tput); hist.queued.push(s.queued); hist.running.push(s.running);
  if (hist.t.length > MAX_POINTS) for (const k in hist) hist[k].shift();
  tputChart.setData([hist.t, hist.tput]);
  queueChart.setData([hist.t, hist.queued, hist.running]);
  renderLoadTest(msg.loadTest);
  document.body.dataset.updates = String((Number(document.body.dataset.updates) || 0) + 1);
}

const feed = new EventSource('/wsfutures/feed');
feed.onopen = () => { $('status').textContent = 'live'; $('status').className = ''; };
feed.onerror = () => { $('status').textContent = 'disconnected: retrying'; $('status').className = 'off'; };
feed.onmessage = (e) => render(JSON.parse(e.data));
setInterval(drawStream, 250);
</script>
</body></html>`;
