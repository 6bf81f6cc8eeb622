/**
 * Benchmark suite of what the pool does beyond raw speed, each figure beside its yardstick from
 * the same run:
 *
 * - scheduling: makespans against the ideal computed from the task durations — sleeps of 300,
 *   200 and 100 ms right after a burst of tiny tasks; tiny tasks interleaved with long ones; a
 *   long sleep with short ones queued behind it (work stealing); two nodes of different speed
 *   (one made 4× slower);
 * - monitoring: tiny-task throughput with the dashboard's live feed open and /metrics scraped
 *   every second, against the same pool without, in alternating rounds;
 * - HTTP load: one worker node (one slot) generating load against a local HTTP server with the
 *   scenario's `ctx.http`, against autocannon on the same server at the same concurrency and
 *   against the same client in a plain loop (and the same with `fetch`); and the rate of one
 *   node against two;
 * - node scale: the coordinator's CPU per task with 200 nodes against 2, and per heartbeat.
 *
 * Figures are reported as the `wsfutures` suite (and `autocannon` for the peer), so the table
 * lines them up with their targets.
 *
 * Run alone, `npx tsx scripts/bench/features.ts --step http-load` runs only the named step(s)
 * and prints its figure lines.
 */
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emitError, emitFigure, emitInfo, progress, suiteOptions } from './measure.ts';
import { ProcessPoolExecutor } from '../../coordinator/index.ts';
import { loadTest } from '../../coordinator/loadtest-api.ts';
import { busy, busyLong, noop, sleep } from './tasks.ts';
import { ScenarioHttp } from '../../shared/loadtest-http.ts';
import { Scheduler } from '../../coordinator/scheduler.ts';
import { startLightNodes } from '../../test/helpers/light-nodes.ts';

const SUITE = 'wsfutures';
const TASKS = new URL('./tasks.ts', import.meta.url);
const { smoke } = suiteOptions();
const now = () => performance.now();

const onlySteps = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--step' ? a.split(',') : []));

async function step(name: string, run: () => Promise<void>): Promise<void> {
  if (onlySteps.length > 0 && !onlySteps.includes(name)) return;
  progress('features', name);
  try {
    await run();
  } catch (err) {
    emitError(SUITE, name, err);
  }
}

/** Sleeps of 300, 200, 100 ms on 2 slots, right after a burst of tiny tasks: ideal 300 ms. */
async function afterBurst(): Promise<void> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 2, log: false });
  try {
    await pool.ready();
    const rounds = smoke ? 1 : 5;
    const makespans: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: smoke ? 2_000 : 20_000 }, (_, i) => pool.submit(noop, i)));
      const t0 = now();
      await Promise.all([300, 200, 100].map((ms) => pool.submit(sleep, ms, ms)));
      makespans.push(now() - t0);
    }
    makespans.sort((a, b) => a - b);
    const median = makespans[Math.floor(makespans.length / 2)]!;
    emitFigure({
      suite: SUITE,
      workload: 'sched-after-burst',
      label: 'wsfutures sleeps 300/200/100 ms after a burst, makespan',
      value: median,
      unit: 'ms',
      count: rounds,
      seconds: makespans.reduce((a, b) => a + b, 0) / 1000,
      note: `median of ${rounds}: ${makespans.map((m) => m.toFixed(0)).join(', ')} ms`,
    });
    emitFigure({ suite: SUITE, workload: 'sched-after-burst-ideal', label: 'ideal makespan (the longest sleep)', value: 300, unit: 'ms', count: 1, seconds: 0 });
  } finally {
    await pool.shutdown();
  }
}

/**
 * 20,000 tasks of 0.1 ms interleaved with 40 of 200 ms, on 2 slots. `kinds` 2: the long tasks
 * are another function (`busyLong`), as a short per-item function and a long one are in a real
 * workload; the scheduler knows them apart by their measured durations. `kinds` 1: the same
 * function for both, whose durations nothing can foresee (the figure without a target).
 */
async function mixed(kinds: 1 | 2): Promise<void> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 2, log: false });
  const tiny = smoke ? 2_000 : 20_000;
  const long = smoke ? 4 : 40;
  const longFn = kinds === 2 ? busyLong : busy;
  try {
    await pool.ready();
    // Both kinds measured once, so estimates are not part of the figure.
    await Promise.all([pool.submit(busy, 0, 0.1), pool.submit(longFn, 0, 200)]);
    const t0 = now();
    const all = [];
    for (let i = 0; i < tiny; i++) {
      all.push(pool.submit(busy, i, 0.1));
      if (i % Math.floor(tiny / long) === 0) all.push(pool.submit(longFn, i, 200));
    }
    await Promise.all(all);
    const ms = now() - t0;
    // The ideal from what the tasks took (their measured total, less the two measured first),
    // spread over the 2 slots.
    let total = 0;
    for (const f of pool.stats().functions) if (f.name === 'busy' || f.name === 'busyLong') total += f.duration!.mean * f.duration!.count;
    const ideal = (total - (0.1 + 200)) / 2;
    const workload = kinds === 2 ? 'sched-mixed' : 'sched-mixed-one-kind';
    emitFigure({
      suite: SUITE,
      workload,
      label: `wsfutures ${tiny} × 0.1 ms with ${long} × 200 ms${kinds === 2 ? '' : ', one function'}, makespan`,
      value: ms,
      unit: 'ms',
      count: tiny + long,
      seconds: ms / 1000,
    });
    emitFigure({ suite: SUITE, workload: `${workload}-ideal`, label: 'ideal makespan (measured task time / 2 slots)', value: ideal, unit: 'ms', count: 1, seconds: 0 });
  } finally {
    await pool.shutdown();
  }
}

/**
 * Work stealing: one sleep of 400 ms then 60 of 5 ms, on 2 slots, with the kind measured as
 * short (so each slot takes many ahead, and half of the short ones land behind the long one).
 * Ideal 400 ms (the long one; the short ones fit beside it); without stealing ~550.
 */
async function stealing(): Promise<void> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 2, log: false });
  try {
    await pool.ready();
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.submit(sleep, i, 1)));
    const rounds = smoke ? 1 : 5;
    const makespans: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = now();
      await Promise.all([pool.submit(sleep, 0, 400), ...Array.from({ length: 60 }, (_, i) => pool.submit(sleep, i, 5))]);
      makespans.push(now() - t0);
    }
    makespans.sort((a, b) => a - b);
    const median = makespans[Math.floor(makespans.length / 2)]!;
    const { stolen } = pool.stats();
    emitFigure({
      suite: SUITE,
      workload: 'sched-steal',
      label: 'wsfutures a 400 ms sleep with 60 of 5 ms behind it, makespan',
      value: median,
      unit: 'ms',
      count: rounds,
      seconds: makespans.reduce((a, b) => a + b, 0) / 1000,
      note: `median of ${rounds}: ${makespans.map((m) => m.toFixed(0)).join(', ')} ms; ${stolen} tasks stolen`,
    });
    emitFigure({ suite: SUITE, workload: 'sched-steal-ideal', label: 'ideal makespan (the long sleep)', value: 400, unit: 'ms', count: 1, seconds: 0 });
  } finally {
    await pool.shutdown();
  }
}

/** Two nodes of one slot each, one 4× slower: tasks of 10 ms (on the fast node). */
async function uneven(): Promise<void> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: false });
  const url = await pool.listening;
  const cli = fileURLToPath(new URL('../../worker-node/cli.ts', import.meta.url));
  const start = (name: string, slowdown: number) =>
    spawn(process.execPath, ['--import', 'tsx', cli, '--connect', url, '--concurrency', '1', '--name', name, '--no-reconnect', '--quiet'], {
      env: { ...process.env, WSFUTURES_TOKEN: pool.token, WSF_BENCH_SLOWDOWN: String(slowdown) },
      stdio: 'ignore',
    });
  const nodes = [start('fast', 1), start('slow', 4)];
  const count = smoke ? 40 : 250;
  try {
    await pool.ready(2, { timeout: 60_000 });
    await Promise.all([pool.submit(busy, 0, 10), pool.submit(busy, 0, 10)]);
    const t0 = now();
    await Promise.all(Array.from({ length: count }, (_, i) => pool.submit(busy, i, 10)));
    const ms = now() - t0;
    // Speeds of 1 and 1/4 task per 10 ms: together 1.25.
    emitFigure({
      suite: SUITE,
      workload: 'sched-uneven',
      label: `wsfutures ${count} × 10 ms on a node and one 4× slower, makespan`,
      value: ms,
      unit: 'ms',
      count,
      seconds: ms / 1000,
    });
    emitFigure({ suite: SUITE, workload: 'sched-uneven-ideal', label: 'ideal makespan (speeds 1 + 1/4)', value: (count * 10) / 1.25, unit: 'ms', count: 1, seconds: 0 });
  } finally {
    await pool.shutdown();
    for (const n of nodes) n.kill('SIGKILL');
  }
}

/** Tiny-task bursts with the dashboard open and /metrics scraped each second, and without. */
async function monitoring(): Promise<void> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 2, log: false });
  try {
    await pool.ready();
    const base = `http://127.0.0.1:${new URL(pool.url!).port}`;
    // Rounds of a second or more, so that /metrics is scraped during each watched one.
    const burst = smoke ? 2_000 : 120_000;
    const rounds = smoke ? 2 : 6;
    const run = async () => {
      const t0 = now();
      await Promise.all(Array.from({ length: burst }, (_, i) => pool.submit(noop, i)));
      return burst / ((now() - t0) / 1000);
    };
    await run(); // warm
    const plain: number[] = [];
    const watched: number[] = [];
    let scrapes = 0;
    let feedBytes = 0;
    for (let r = 0; r < rounds; r++) {
      plain.push(await run());
      const controller = new AbortController();
      const feed = fetch(`${base}/wsfutures/feed`, { signal: controller.signal }).then(async (res) => {
        const reader = res.body!.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          feedBytes += value.byteLength;
        }
      }).catch(() => {});
      const scraper = setInterval(() => void fetch(`${base}/metrics`).then((r) => r.text()).then(() => scrapes++), 1000);
      await new Promise((r) => setTimeout(r, 100)); // the feed is open
      watched.push(await run());
      clearInterval(scraper);
      controller.abort();
      await feed;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    emitFigure({
      suite: SUITE,
      workload: 'tiny-unmonitored',
      label: 'wsfutures tiny tasks, nobody watching',
      value: median(plain),
      unit: 'tasks/s',
      count: burst * rounds,
      seconds: 0,
      note: `median of ${rounds} rounds`,
    });
    emitFigure({
      suite: SUITE,
      workload: 'tiny-monitored',
      label: 'wsfutures tiny tasks, dashboard open + /metrics each second',
      value: median(watched),
      unit: 'tasks/s',
      count: burst * rounds,
      seconds: 0,
      note: `median of ${rounds} rounds, alternating with the unwatched ones; ${scrapes} scrapes, ${(feedBytes / 1024).toFixed(0)} KiB of feed`,
    });
  } finally {
    await pool.shutdown();
  }
}

/**
 * The coordinator's cost per task with 2 nodes and with 200, the same tiny tasks in bursts taking
 * turns between the two pools: its CPU per task (process.cpuUsage, the coordinator's process
 * only) and the burst's rate. The nodes are light ones in a process of their own
 * (test/helpers/light-nodes.ts: the real protocol, no task threads), one slot each; so 2 and
 * 200 slots. Then heartbeats: the coordinator's CPU per ping/pong with 200 idle nodes, pinged
 * every 100 ms to make it measurable.
 */
async function nodeScale(): Promise<void> {
  const script = fileURLToPath(new URL('../../test/helpers/light-nodes.ts', import.meta.url));
  const started: { kill(sig: NodeJS.Signals): unknown }[] = [];
  const cluster = async (nodes: number, heartbeatIntervalMs?: number) => {
    const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: false, heartbeatIntervalMs });
    const url = await pool.listening;
    if (smoke) {
      // In this process: the smoke run checks that this runs, not what it costs, and starting
      // a process for the nodes took seconds of its budget on a loaded machine.
      const light = await startLightNodes(url, pool.token, nodes);
      started.push({ kill: () => void light.close() });
    } else {
      started.push(
        spawn(process.execPath, ['--import', 'tsx', script, '--connect', url, '--nodes', String(nodes)], {
          env: { ...process.env, WSFUTURES_TOKEN: pool.token },
          stdio: ['pipe', 'ignore', 'inherit'],
        }),
      );
    }
    await pool.ready(nodes, { timeout: 60_000 });
    return { pool, nodes };
  };
  // The smoke run only checks that this still runs, in a second or two: 10 nodes, not 200.
  const many = smoke ? 10 : 200;
  const pools = [await cluster(2), await cluster(many)];
  try {
    const burst = smoke ? 1_000 : 20_000;
    const rounds = smoke ? 1 : 6;
    const cpu: number[][] = [[], []];
    const rate: number[][] = [[], []];
    for (const { pool } of pools) await Promise.all(Array.from({ length: burst }, (_, i) => pool.submit(noop, i))); // warm
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < pools.length; k++) {
        const { pool } = pools[(k + r) % 2]!;
        const which = (k + r) % 2;
        const c0 = process.cpuUsage();
        const t0 = now();
        await Promise.all(Array.from({ length: burst }, (_, i) => pool.submit(noop, i)));
        const ms = now() - t0;
        const c = process.cpuUsage(c0);
        cpu[which]!.push((c.user + c.system) / burst);
        rate[which]!.push(burst / (ms / 1000));
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
    for (const [k, { nodes }] of pools.entries()) {
      emitFigure({
        suite: SUITE,
        workload: `scale-${nodes}-nodes-cpu`,
        label: `wsfutures coordinator CPU per tiny task, ${nodes} nodes × 1 slot`,
        value: median(cpu[k]!),
        unit: 'µs',
        count: burst * rounds,
        seconds: 0,
        note: `median of ${rounds} bursts of ${burst}, taking turns with the other node count; range ${range(cpu[k]!, 1)}`,
      });
      emitFigure({
        suite: SUITE,
        workload: `scale-${nodes}-nodes-rate`,
        label: `wsfutures tiny tasks, ${nodes} light nodes × 1 slot`,
        value: median(rate[k]!),
        unit: 'tasks/s',
        count: burst * rounds,
        seconds: 0,
        note: `range ${range(rate[k]!, 0)}`,
      });
    }
  } finally {
    for (const { pool } of pools) await pool.shutdown();
  }
  // Heartbeats: 200 idle nodes pinged every 100 ms (25× the default rate).
  const { pool } = await cluster(many, 100);
  try {
    await new Promise((r) => setTimeout(r, smoke ? 100 : 500));
    const seconds = smoke ? 0.5 : 5;
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const c = process.cpuUsage(c0);
    const beats = many * ((seconds * 1000) / 100);
    const perBeat = (c.user + c.system) / beats;
    // At the default 2.5 s interval: 80 pings a second for 200 nodes.
    emitFigure({
      suite: SUITE,
      workload: 'scale-heartbeat-cpu',
      label: `wsfutures coordinator CPU per heartbeat (ping sent, pong handled), ${many} idle nodes`,
      value: perBeat,
      unit: 'µs',
      count: beats,
      seconds,
      note: `at the default 2.5 s interval, 200 nodes would cost ${((perBeat * 80) / 1e4).toFixed(3)}% of a core`,
    });
  } finally {
    await pool.shutdown();
    for (const c of started) c.kill('SIGKILL');
  }
}

/**
 * The scheduler alone (pure, so without the noise of sockets), per task: a long queue drained by
 * 2 or 200 one-slot workers, each outcome batch (4 tasks, as lanes report under load) followed
 * by an assignment pass, as in the pool. Best of several runs, taking turns.
 */
function schedulerScale(): void {
  const run = (workers: number, tasks: number) => {
    const s = new Scheduler<null>({ maxRetries: 2 });
    s.depthPerSlot = 256;
    s.prefetchMs = 10;
    s.setEstimate(0, 0.01);
    for (let w = 0; w < workers; w++) s.addLane(`w${w}`, 1);
    const held: number[][] = Array.from({ length: workers }, () => []);
    const t0 = now();
    for (let id = 0; id < tasks; id++) {
      s.submit(id, null);
      void s.slotCount; // the pool asks for it on every submit
    }
    let done = 0;
    let w = 0;
    while (done < tasks) {
      for (const a of s.assign()) held[Number(a.laneId.slice(1))]!.push(...a.tasks.map((t) => t.id));
      while (held[w]!.length === 0) w = (w + 1) % workers;
      for (const id of held[w]!.splice(0, 4)) {
        s.complete(id, `w${w}`);
        done++;
      }
      w = (w + 1) % workers;
    }
    return ((now() - t0) * 1000) / tasks;
  };
  const tasks = smoke ? 5_000 : 200_000;
  const best: Record<number, number[]> = { 2: [], 200: [] };
  for (let r = 0; r < (smoke ? 1 : 7); r++) for (const n of [2, 200]) best[n]!.push(run(n, tasks));
  for (const n of [2, 200]) {
    const xs = best[n]!.sort((a, b) => a - b);
    emitFigure({
      suite: SUITE,
      workload: `scale-scheduler-${n}`,
      label: `wsfutures scheduler per task, ${n} one-slot workers, outcomes 4 at a time`,
      value: xs[0]!,
      unit: 'µs',
      count: tasks * xs.length,
      seconds: 0,
      note: `best of ${xs.length}, taking turns; range ${xs[0]!.toFixed(2)}–${xs[xs.length - 1]!.toFixed(2)}`,
    });
  }
}

/** A target HTTP server in a process of its own, answering at once. */
async function startTarget(): Promise<{ url: string; stop: () => void }> {
  const code =
    `const s = require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('ok'); }); s.keepAliveTimeout = 60000; s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill('SIGKILL') };
}

/** The median of some figures, and all of them for the note. */
function medianOf(values: number[]): { median: number; all: string } {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, all: values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ') };
}

/**
 * One slot against autocannon: the target is a node:http server in a process of its own; the
 * autocannon client runs in one process (one thread), the wsfutures load in one worker node's
 * one task slot (one thread; the coordinator, in another process, only merges a report a
 * second). The two cores are shared by the target, the client and whatever else the machine
 * runs, so the rounds take turns (autocannon, the bare clients, wsfutures) and medians are kept.
 *
 * The figure of autocannon and of a load test is the median of its per-second rates (what
 * autocannon reports as requests.p50; the load test's timeline), so that the first second or
 * two — a thread compiling its client, a node starting up — weigh alike on both; the whole
 * run's average is in the note.
 */
async function httpLoad(): Promise<void> {
  const target = await startTarget();
  const concurrency = 50;
  const seconds = smoke ? 1 : 8;
  const rounds = smoke ? 1 : 3;
  const http = fileURLToPath(new URL('./http-scenario.ts', import.meta.url));
  const fetchScenario = fileURLToPath(new URL('./http-scenario-fetch.ts', import.meta.url));
  const { Pool } = await import('undici');
  // @ts-expect-error autocannon ships no types; only its documented result fields are read.
  const { default: autocannon } = (await import('autocannon')) as { default: (o: object) => Promise<{ requests: { total: number; p50: number } }> };
  /** A load test's median per-second rate (the last second, cut short by the end, left out); its average in a run too short for that. */
  const steady = (r: { rate: number; timeline: { rate: number }[] }) => {
    const perSecond = r.timeline.slice(0, -1).map((t) => t.rate);
    return perSecond.length >= 3 ? medianOf(perSecond).median : r.rate;
  };
  /** A client in a plain loop, `concurrency` at a time, in this process: requests per second. */
  const bare = async (one: () => Promise<void>) => {
    let n = 0;
    const end = now() + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (now() < end) {
        await one();
        n++;
      }
    }));
    return n / seconds;
  };
  const rates = { autocannon: [] as number[], client: [] as number[], undici: [] as number[], fetch: [] as number[], slot: [] as number[], slotFetch: [] as number[] };
  const averages = { autocannon: [] as number[], slot: [] as number[], slotFetch: [] as number[] };
  let note = '';
  try {
    for (let r = 0; r < rounds; r++) {
      const ac = await autocannon({ url: target.url, connections: concurrency, duration: seconds });
      rates.autocannon.push(ac.requests.p50);
      averages.autocannon.push(ac.requests.total / seconds);
      // The scenario's clients without wsfutures around them: ctx.http's own, undici's Pool, fetch.
      const client = new ScenarioHttp();
      rates.client.push(await bare(async () => void (await client.get(target.url)).body));
      client.close();
      const pool = new Pool(target.url);
      rates.undici.push(await bare(async () => void (await (await pool.request({ path: '/', method: 'GET' })).body.arrayBuffer())));
      await pool.close();
      rates.fetch.push(await bare(async () => void (await (await fetch(target.url)).arrayBuffer())));
      const one = await loadTest({ scenario: http, vus: concurrency, duration: seconds * 1000, params: { target: target.url }, pool: { maxWorkers: 1, log: false } });
      rates.slot.push(steady(one));
      averages.slot.push(one.rate);
      note = `${one.errors} errors; p50 ${one.steps.iteration?.p50.toFixed(2)} ms`;
      // (Not in the smoke run, which has only seconds for the whole suite.)
      if (smoke) continue;
      const viaFetch = await loadTest({ scenario: fetchScenario, vus: concurrency, duration: seconds * 1000, params: { target: target.url }, pool: { maxWorkers: 1, log: false } });
      rates.slotFetch.push(steady(viaFetch));
      averages.slotFetch.push(viaFetch.rate);
    }
    const figure = (suite: string, workload: string, label: string, values: number[], extra = '') => {
      const { median, all } = medianOf(values);
      emitFigure({
        suite,
        workload,
        label,
        value: median,
        unit: 'req/s',
        count: Math.round(median * seconds),
        seconds,
        note: `median of ${values.length} rounds of ${seconds} s: ${all}${extra}`,
      });
    };
    const whole = (values: number[]) => `; whole runs: ${medianOf(values).all} req/s`;
    figure('autocannon', 'http-load-1core', `autocannon, ${concurrency} connections, one process`, rates.autocannon, whole(averages.autocannon));
    figure('baseline', 'http-bare-client', `ctx.http's client in a plain loop, ${concurrency} at a time`, rates.client);
    figure('baseline', 'http-bare-undici', `undici Pool.request in a plain loop, ${concurrency} at a time`, rates.undici);
    figure('baseline', 'http-bare-fetch', `fetch in a plain loop, ${concurrency} at a time`, rates.fetch);
    figure(SUITE, 'http-load-1core', `wsfutures loadtest, 1 node × 1 slot, ${concurrency} VUs, ctx.http`, rates.slot, `${whole(averages.slot)}; last: ${note}`);
    if (!smoke) figure(SUITE, 'http-load-1core-fetch', `wsfutures loadtest, 1 node × 1 slot, ${concurrency} VUs, fetch`, rates.slotFetch, whole(averages.slotFetch));
    // Against a target that takes 20 ms, the rate is set by the VUs: it doubles with the nodes.
    const slow = await startSlowTarget();
    try {
      for (const nodes of [1, 2]) {
        const r = await loadTest({ scenario: http, vus: 20 * nodes, duration: seconds * 1000, params: { target: slow.url }, pool: { maxWorkers: nodes, log: false } });
        emitFigure({
          suite: SUITE,
          workload: `http-load-${nodes}-slots`,
          label: `wsfutures loadtest, ${nodes} slot(s), 20 VUs each, 20 ms target`,
          value: r.rate,
          unit: 'req/s',
          count: r.iterations,
          seconds: r.durationMs / 1000,
        });
      }
    } finally {
      slow.stop();
    }
  } finally {
    target.stop();
  }
}

async function startSlowTarget(): Promise<{ url: string; stop: () => void }> {
  const server = createServer((_q, r) => setTimeout(() => r.end('ok'), 20));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, stop: () => server.close() };
}

emitInfo({ features: 'scheduling, monitoring, http load, node scale' });
await step('sched-after-burst', afterBurst);
await step('sched-mixed', () => mixed(2));
await step('sched-mixed-one-kind', () => mixed(1));
await step('sched-steal', stealing);
await step('sched-uneven', uneven);
await step('monitoring', monitoring);
await step('http-load', httpLoad);
await step('node-scale', nodeScale);
await step('scheduler-scale', async () => schedulerScale());
process.exit(0);
