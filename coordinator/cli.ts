#!/usr/bin/env node
/**
 * `wsfutures`: the coordinator-side command. One subcommand today:
 *
 *   wsfutures loadtest scenario.ts --rate 100 --duration 30s [options]
 *
 * (Worker nodes have their own command, `wsfutures-worker`.)
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { type LoadStage, loadTest, type LoadTestOptions, writeLoadTestReports } from './loadtest.ts';
import { textReport } from './loadtest-report.ts';
import { clusterLoadTest, type ClusterLoadTestOptions, type SelfTestTask } from './cluster-loadtest.ts';
import { parseDuration } from './loadtest-thresholds.ts';
import { VERSION } from '../shared/version.ts';

const USAGE = `Usage: wsfutures loadtest SCENARIO [options]
       wsfutures loadtest --self [options]

Generates load with every slot of every worker node: SCENARIO is a module whose default export
is one iteration, e.g.
  export default async function (ctx) { const res = await fetch(ctx.params.target); if (!res.ok) throw new Error(\`HTTP \${res.status}\`); }

Load (one of):
  --rate N             open model: N iterations per second, whatever the latency (default 10)
  --vus N              closed model: N virtual users, each running iterations back to back
  --stages LIST        ramps, e.g. 10s:100,1m:100,10s:0 (duration:target, from 0)
  --duration D         how long a constant load lasts, e.g. 30s, 2m (default 10s)
  --iterations N       stop after N iterations in all
Options:
  --param NAME=VALUE   handed to every iteration as ctx.params.NAME (repeatable)
  --threshold EXPR     e.g. 'p99<200ms', 'errors<1%', 'rate>=900', 'login.p95<300ms' (repeatable);
                       a broken one makes the exit code 1
  --json FILE          write the result as JSON
  --html FILE          write a self-contained HTML report with plots
  --workers N          task slots on this machine (default: cores; 0: remote nodes only)
  --listen HOST:PORT   where worker nodes connect (default 127.0.0.1, a free port);
                       beyond loopback it needs a token (WSFUTURES_TOKEN or --token)
  --token TOKEN        the token remote nodes present (prefer WSFUTURES_TOKEN)
  --min-slots N        wait for this many slots before starting
  --quiet              no live progress line
  -v, --version        print the version
  -h, --help           show this help

Load test of the cluster itself (--self): tasks on worker nodes this command starts, and on
any that join (--listen); every result is checked, and every task must settle.
  --task KIND          tiny (default), sleep:MS, cpu:MS, payload:BYTES
  --rate N / --concurrency N   tasks submitted per second, or kept in flight (default 1000)
  --duration D / --tasks N     how long, or how many tasks
  --nodes N            local worker nodes to start (default 2), --slots N each (default: cores/nodes)
  --chaos kill=EVERY   SIGKILL a random local node every EVERY (e.g. 500ms) and start another
  --chaos stop=EVERY:FOR       freeze (SIGSTOP) a random local node every EVERY, for FOR
  Exit code 1 if a task was lost (never settled) or its result was wrong.

Exit codes: 0 every threshold met; 1 a threshold failed; 2 bad usage or the test could not run.`;

function fail(message: string): never {
  console.error(`wsfutures: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) fail(`${name} must be a non-negative number: got ${JSON.stringify(value)}`);
  return n;
}

const [command, ...rest] = process.argv.slice(2);
if (command === '-v' || command === '--version') {
  console.log(`wsfutures ${VERSION}`);
  process.exit(0);
}
if (command === undefined || command === '-h' || command === '--help') {
  console.log(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
if (command !== 'loadtest') fail(`unknown command ${JSON.stringify(command)}`);

let parsed;
try {
  parsed = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      rate: { type: 'string' },
      vus: { type: 'string' },
      stages: { type: 'string' },
      duration: { type: 'string' },
      iterations: { type: 'string' },
      param: { type: 'string', multiple: true },
      threshold: { type: 'string', multiple: true },
      json: { type: 'string' },
      html: { type: 'string' },
      workers: { type: 'string' },
      listen: { type: 'string' },
      token: { type: 'string' },
      'min-slots': { type: 'string' },
      quiet: { type: 'boolean' },
      self: { type: 'boolean' },
      task: { type: 'string' },
      concurrency: { type: 'string' },
      tasks: { type: 'string' },
      nodes: { type: 'string' },
      slots: { type: 'string' },
      chaos: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
} catch (err) {
  fail((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const params: Record<string, string> = {};
for (const p of values.param ?? []) {
  const i = p.indexOf('=');
  if (i <= 0) fail(`--param must be NAME=VALUE: got ${JSON.stringify(p)}`);
  params[p.slice(0, i)] = p.slice(i + 1);
}
let stages: LoadStage[] | undefined;
if (values.stages !== undefined) {
  stages = values.stages.split(',').map((s) => {
    const [duration, target] = s.split(':');
    if (!duration || target === undefined || !Number.isFinite(Number(target))) fail(`--stages must look like 10s:100,1m:100,10s:0: got ${JSON.stringify(values.stages)}`);
    return { duration: duration.trim(), target: Number(target) };
  });
}
let listen: { host: string; port: number } | undefined;
if (values.listen !== undefined) {
  const m = /^(.*):(\d+)$/.exec(values.listen);
  if (!m) fail(`--listen must be HOST:PORT: got ${JSON.stringify(values.listen)}`);
  listen = { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}
if (values.self) {
  if (positionals.length > 0) fail(`--self takes no scenario: got ${positionals.join(' ')}`);
  await runSelfTest();
}
if (positionals.length !== 1) fail(`loadtest takes one scenario module: got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
const workers = int(values.workers, '--workers');
const options: LoadTestOptions = {
  scenario: resolve(positionals[0]!),
  rate: int(values.rate, '--rate'),
  vus: int(values.vus, '--vus'),
  stages,
  duration: values.duration,
  iterations: int(values.iterations, '--iterations'),
  params,
  thresholds: values.threshold,
  minSlots: int(values['min-slots'], '--min-slots'),
  pool: { maxWorkers: workers, listen, token: values.token ?? process.env.WSFUTURES_TOKEN },
};
if (options.rate === undefined && options.vus === undefined && !stages && options.iterations === undefined) options.rate = 10;

// The live line: on a terminal only; nothing extra when the output is piped.
const live = !values.quiet && process.stderr.isTTY;
let bar: SingleBar | undefined;
if (live) {
  bar = new SingleBar({
    stream: process.stderr,
    format: ' {bar} {elapsed}s | {rate}/s (target {target}) | p50 {p50} p99 {p99} | {iterations} iterations, {errors} errors | {slots} slots',
    barsize: 20,
    hideCursor: true,
    clearOnComplete: true,
  });
}
const ms = (v: number) => (v < 1000 ? `${v.toFixed(v < 10 ? 1 : 0)}ms` : `${(v / 1000).toFixed(2)}s`);
options.onProgress = (p) => {
  if (!bar) return;
  const payload = {
    rate: p.rate.toFixed(0),
    target: p.target.toFixed(0),
    p50: ms(p.p50),
    p99: ms(p.p99),
    iterations: p.iterations,
    errors: p.errors,
    slots: p.slots,
    elapsed: (p.elapsedMs / 1000).toFixed(0),
  };
  const done = Number.isFinite(p.lengthMs) ? Math.min(1000, Math.round((1000 * p.elapsedMs) / p.lengthMs)) : 0;
  if (!bar.isActive) bar.start(1000, done, payload);
  bar.update(done, payload);
};

try {
  const result = await loadTest(options);
  bar?.stop();
  console.log(textReport(result));
  writeLoadTestReports(result, { json: values.json, html: values.html }, `wsfutures load test: ${positionals[0]}`);
  if (values.json) console.log(`JSON report: ${values.json}`);
  if (values.html) console.log(`HTML report: ${values.html}`);
  process.exit(result.ok ? 0 : 1);
} catch (err) {
  bar?.stop();
  console.error(`wsfutures loadtest: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(2);
}

/** `--self`: the load test of the cluster itself; exits. */
async function runSelfTest(): Promise<never> {
  const v = values;
  let task: SelfTestTask = { kind: 'tiny' };
  if (v.task !== undefined) {
    const [kind, arg] = v.task.split(':');
    const n = Number(arg);
    if (kind === 'tiny' && arg === undefined) task = { kind: 'tiny' };
    else if ((kind === 'sleep' || kind === 'cpu') && Number.isFinite(n) && n >= 0) task = { kind, ms: n };
    else if (kind === 'payload' && Number.isInteger(n) && n >= 0) task = { kind, bytes: n };
    else fail(`--task must be tiny, sleep:MS, cpu:MS or payload:BYTES: got ${JSON.stringify(v.task)}`);
  }
  const opts: ClusterLoadTestOptions = {
    task,
    rate: int(v.rate, '--rate'),
    concurrency: int(v.concurrency, '--concurrency'),
    tasks: int(v.tasks, '--tasks'),
    nodes: int(v.nodes, '--nodes'),
    slotsPerNode: int(v.slots, '--slots'),
    minSlots: int(v['min-slots'], '--min-slots'),
    pool: { listen, token: v.token ?? process.env.WSFUTURES_TOKEN },
  };
  if (v.duration !== undefined) {
    try {
      opts.durationMs = parseDuration(v.duration, '--duration');
    } catch (err) {
      fail((err as Error).message);
    }
  }
  for (const c of v.chaos ?? []) {
    const kill = /^kill=(.+)$/.exec(c);
    const stop = /^stop=([^:]+):(.+)$/.exec(c);
    try {
      if (kill) opts.killEveryMs = parseDuration(kill[1], '--chaos kill=EVERY');
      else if (stop) opts.stop = { everyMs: parseDuration(stop[1], '--chaos stop=EVERY:FOR'), forMs: parseDuration(stop[2], '--chaos stop=EVERY:FOR') };
      else fail(`--chaos must be kill=EVERY or stop=EVERY:FOR (e.g. kill=500ms, stop=5s:2s): got ${JSON.stringify(c)}`);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  const tty = !v.quiet && process.stderr.isTTY;
  opts.onProgress = (p) => {
    if (tty) {
      process.stderr.write(
        `\r ${(p.elapsedMs / 1000).toFixed(0)}s | ${p.rate.toLocaleString('en-US')} tasks/s | ${p.settled.toLocaleString('en-US')} of ${
          p.submitted.toLocaleString('en-US')
        } settled | ${p.slots} slots | ${p.kills} kills, ${p.stops} stops   `,
      );
    }
  };
  try {
    const r = await clusterLoadTest(opts);
    if (tty) process.stderr.write('\n');
    const failed = Object.entries(r.failed).map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
    console.log(
      `${r.submitted.toLocaleString('en-US')} tasks (${task.kind}) in ${(r.durationMs / 1000).toFixed(1)} s: ${r.throughput.toFixed(0)} tasks/s; latency p50 ${
        r.latency.p50.toFixed(2)
      } ms, p90 ${r.latency.p90.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, max ${r.latency.max.toFixed(0)} ms`,
    );
    console.log(
      `completed ${r.completed}, failed: ${failed}; lost ${r.lost}, wrong ${r.wrong}; sent again after a lost node (may have run twice): ${r.reruns}; chaos: ${r.kills} kills, ${r.stops} stops`,
    );
    console.log(r.ok ? 'ok: every task settled, every result right' : 'FAIL: tasks were lost or wrong');
    process.exit(r.ok ? 0 : 1);
  } catch (err) {
    console.error(`wsfutures loadtest --self: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  }
}
