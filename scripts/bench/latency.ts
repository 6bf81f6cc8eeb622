/**
 * The latency suite: sequential round trips (submit → result, one at a time) in several fresh
 * processes, quiet and with a CPU hog beside them. Reported as the `wsfutures` suite.
 *
 * Why fresh processes: a busy-poll rule that decides once can settle in a fast or a slow mode by
 * luck, and one process shows only one draw. Each of `PROCESSES` children opens two pools (each
 * a fresh coordinator with its local worker node): the default, and `busyPollMicros: 0`. Both
 * get the same warm-up as the wsfutures suite's latency figure (a burst warm-up, then 5,000
 * sequential trips), then take turns in rounds of sequential trips:
 * - quiet: p50/p99 of each process; the spread of the default's p50s (max/min), and the worst
 *   process's default p50 over its own `busyPollMicros: 0` p50 (below 1: polling paid off in
 *   every process, which is what "the fast mode" means here);
 * - hog: the same rounds while another process spins on every core; p50/p99 of all processes'
 *   trips together, the default against `busyPollMicros: 0`.
 *
 * Run as `latency.ts [--smoke]` (the parent) or `latency.ts --child [--smoke]` (one process).
 * WSF_BENCH_MODULE names another build to load, as in the wsfutures suite.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { burstWarmup, emitError, emitFigure, now, percentile, progress, sequentialWarmup, suiteOptions } from './measure.ts';
import { noop } from './tasks.ts';

const SUITE = 'wsfutures';
const TASKS = new URL('./tasks.ts', import.meta.url);
const WORKERS = 2;
const { smoke } = suiteOptions();
const PROCESSES = smoke ? 1 : 10;
/** Rounds per pool and trips per round; the pools take turns round by round. */
const QUIET = smoke ? { rounds: 2, trips: 20 } : { rounds: 4, trips: 500 };
const HOGGED = smoke ? { rounds: 2, trips: 10 } : { rounds: 4, trips: 200 };
/** A round under the hog stops starting trips after this long (trips can take milliseconds there). */
const ROUND_MS = smoke ? 1_000 : 2_000;

interface PoolContract {
  ready(slots: number): Promise<void>;
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): PromiseLike<Awaited<R>>;
  shutdown(): Promise<void>;
}
type PoolClass = new (options: { tasks: URL; maxWorkers: number; busyPollMicros?: number; log?: boolean }) => PoolContract;

/** What one child measured: round-trip times in µs, per pool, quiet and hogged. */
interface ChildResult {
  quiet: { polling: number[]; off: number[] };
  hog: { polling: number[]; off: number[] };
}

const RESULT_PREFIX = 'LATENCY-RESULT ';

async function loadPool(): Promise<PoolClass> {
  const specifier = process.env.WSF_BENCH_MODULE;
  const url = specifier ? (/^[a-z]+:/.test(specifier) ? specifier : pathToFileURL(specifier).href) : new URL('../../coordinator/index.ts', import.meta.url).href;
  return ((await import(url)) as { ProcessPoolExecutor: PoolClass }).ProcessPoolExecutor;
}

/** Another process that keeps every core busy: one spinning thread per core. */
function startHog(): () => void {
  const code = `const { Worker } = require('node:worker_threads'); for (let i = 1; i < ${availableParallelism()}; i++) new Worker('for (;;);', { eval: true }); for (;;);`;
  const hog = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  return () => hog.kill('SIGKILL');
}

async function child(): Promise<void> {
  const ProcessPoolExecutor = await loadPool();
  const open = async (busyPollMicros?: number): Promise<PoolContract> => {
    const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: WORKERS, log: false, ...(busyPollMicros === undefined ? {} : { busyPollMicros }) });
    await pool.ready(WORKERS);
    for (let done = 0; done < burstWarmup(smoke); done += 1_000) await Promise.all(Array.from({ length: 1_000 }, (_, i) => pool.submit(noop, done + i)));
    for (let i = 0; i < sequentialWarmup(smoke); i++) await pool.submit(noop, i);
    return pool;
  };
  const [polling, off] = await Promise.all([open(), open(0)]);
  const rounds = async ({ rounds, trips }: { rounds: number; trips: number }): Promise<{ polling: number[]; off: number[] }> => {
    const out = { polling: [] as number[], off: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      // Each goes first in every other round: whichever follows the other's round finds the
      // machine in the state that round left it in.
      const turns = [[polling, out.polling], [off, out.off]] as const;
      for (const [pool, samples] of r % 2 === 0 ? turns : [turns[1], turns[0]]) {
        const until = now() + ROUND_MS;
        for (let i = 0; i < trips && (i === 0 || now() < until); i++) {
          const t = now();
          await pool.submit(noop, i);
          samples.push((now() - t) * 1000);
        }
      }
    }
    return out;
  };
  try {
    const quiet = await rounds(QUIET);
    const stopHog = startHog();
    let hog: ChildResult['hog'];
    try {
      // Give the hog's threads a moment to start spinning.
      await new Promise((resolve) => setTimeout(resolve, 200));
      hog = await rounds(HOGGED);
    } finally {
      stopHog();
    }
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ quiet, hog } satisfies ChildResult)}\n`);
  } finally {
    await Promise.all([polling.shutdown(), off.shutdown()]);
  }
}

function runChild(): Promise<ChildResult> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', ...(smoke ? ['--smoke'] : [])];
  const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    c.on('error', reject);
    c.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line) resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult);
      else reject(new Error(`a latency process exited with ${code} without a result`));
    });
  });
}

const p = (xs: number[], q: number): number => percentile(Float64Array.from(xs), q);
const list = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');

async function parent(): Promise<void> {
  const started = now();
  const results: ChildResult[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    progress('latency', `fresh process ${i + 1} of ${PROCESSES}`);
    try {
      results.push(await runChild());
    } catch (err) {
      emitError(SUITE, `fresh-sequential process ${i + 1}`, err);
    }
  }
  if (results.length === 0) return;
  const seconds = (now() - started) / 1000;
  const n = results.length;
  const p50s = results.map((r) => p(r.quiet.polling, 50));
  const p99s = results.map((r) => p(r.quiet.polling, 99));
  const offP50s = results.map((r) => p(r.quiet.off, 50));
  const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
  const trips = results.reduce((s, r) => s + r.quiet.polling.length, 0);
  const each = `${n} fresh processes`;
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p50',
    label: `wsfutures sequential p50, median of ${n} processes`,
    value: median(p50s),
    unit: 'µs',
    count: trips,
    seconds,
    note: `${each}, p50 of each: ${list(p50s)} µs`,
  });
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p99',
    label: `wsfutures sequential p99, median of ${n} processes`,
    value: median(p99s),
    unit: 'µs',
    count: trips,
    seconds,
    note: `${each}, p99 of each: ${list(p99s)} µs`,
  });
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p50-no-busy-poll',
    label: `wsfutures sequential p50, busyPollMicros 0, median`,
    value: median(offP50s),
    unit: 'µs',
    count: trips,
    seconds,
    note: `${each}, p50 of each: ${list(offP50s)} µs`,
  });
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p50-spread',
    label: 'wsfutures sequential p50 spread (max/min)',
    value: Math.max(...p50s) / Math.min(...p50s),
    unit: 'x',
    count: n,
    seconds,
  });
  const own = results.map((_, i) => p50s[i]! / offP50s[i]!);
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p50-worst-vs-off',
    label: 'wsfutures worst process p50 / its busyPollMicros 0 p50',
    value: Math.max(...own),
    unit: 'x',
    count: n,
    seconds,
    note: `each: ${own.map((x) => x.toFixed(2)).join(', ')}`,
  });
  // The spread above mixes two things: which mode each process settled in, and how fast the
  // machine was while it ran (this VM drifts by a third within a minute, both modes alike).
  // Against each process's own polling-off pool, only the first is left.
  emitFigure({
    suite: SUITE,
    workload: 'fresh-sequential-p50-spread-vs-off',
    label: 'wsfutures spread of (p50 / its busyPollMicros 0 p50) (max/min)',
    value: Math.max(...own) / Math.min(...own),
    unit: 'x',
    count: n,
    seconds,
    note: `the polling-off p50s themselves spread ${(Math.max(...offP50s) / Math.min(...offP50s)).toFixed(2)}x`,
  });
  const hogPolling = results.flatMap((r) => r.hog.polling);
  const hogOff = results.flatMap((r) => r.hog.off);
  const hogNote = `${each}, a process spinning on all ${availableParallelism()} cores beside them; p50 of each: ${
    list(results.map((r) => p(r.hog.polling, 50)))
  } µs (busyPollMicros 0: ${list(results.map((r) => p(r.hog.off, 50)))} µs)`;
  emitFigure({
    suite: SUITE,
    workload: 'hog-sequential-p50',
    label: 'wsfutures sequential p50 beside a CPU hog',
    value: p(hogPolling, 50),
    unit: 'µs',
    count: hogPolling.length,
    seconds,
    note: hogNote,
  });
  emitFigure({
    suite: SUITE,
    workload: 'hog-sequential-p99',
    label: 'wsfutures sequential p99 beside a CPU hog',
    value: p(hogPolling, 99),
    unit: 'µs',
    count: hogPolling.length,
    seconds,
  });
  emitFigure({
    suite: SUITE,
    workload: 'hog-sequential-p50-no-busy-poll',
    label: 'wsfutures sequential p50 beside a CPU hog, busyPollMicros 0',
    value: p(hogOff, 50),
    unit: 'µs',
    count: hogOff.length,
    seconds,
  });
  emitFigure({
    suite: SUITE,
    workload: 'hog-sequential-p99-no-busy-poll',
    label: 'wsfutures sequential p99 beside a CPU hog, busyPollMicros 0',
    value: p(hogOff, 99),
    unit: 'µs',
    count: hogOff.length,
    seconds,
  });
}

if (process.argv.includes('--child')) await child();
else await parent();
