/**
 * Sequential round trips of several builds of wsfutures, side by side in one process: each build
 * opens a pool (2 local slots, default options) and gets the same warm-up as the latency figures
 * of the wsfutures suite (a burst warm-up, then 5,000 sequential trips); then the pools take
 * turns in rounds of sequential trips, in alternating order, so that every build sees the same
 * machine. This VM's speed drifts by a third within minutes, so builds measured in separate runs
 * minutes apart do not compare; builds measured round by round do.
 *
 * Usage:
 *   npx tsx scripts/bench/compare-builds.ts [NAME=DIR ...] [--rounds N] [--trips N]
 * where DIR is a checkout of wsfutures with its node_modules (e.g. `git worktree add /tmp/old
 * REV`, then a symlink to this checkout's node_modules). This checkout is always measured, as
 * "this", and also with `busyPollMicros: 0`, as "this, polling off". Prints p50/p99 per build
 * and each round's p50.
 */
import { pathToFileURL } from 'node:url';
import { burstWarmup, percentile, sequentialWarmup } from './measure.ts';
import { noop } from './tasks.ts';

interface PoolContract {
  ready(slots: number): Promise<void>;
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): PromiseLike<Awaited<R>>;
  shutdown(): Promise<void>;
}
type PoolClass = new (options: { tasks: URL; maxWorkers: number; busyPollMicros?: number; log?: boolean }) => PoolContract;

const WORKERS = 2;
const TASKS = new URL('./tasks.ts', import.meta.url);
const here = new URL('../../', import.meta.url);

function parse(argv: string[]): { builds: [string, URL][]; rounds: number; trips: number } {
  const builds: [string, URL][] = [['this', here]];
  let rounds = 12;
  let trips = 500;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--rounds' || arg === '--trips') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${arg} takes a positive integer: got ${argv[i]}`);
      if (arg === '--rounds') rounds = n;
      else trips = n;
    } else if (/^[^=]+=.+$/.test(arg)) {
      const [name, dir] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
      builds.push([name, pathToFileURL(dir.endsWith('/') ? dir : `${dir}/`)]);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: compare-builds.ts [NAME=DIR ...] [--rounds N] [--trips N]`);
    }
  }
  return { builds, rounds, trips };
}

const { builds, rounds, trips } = parse(process.argv.slice(2));
const pools: { name: string; pool: PoolContract; samples: number[]; rounds: number[] }[] = [];

async function open(name: string, root: URL, busyPollMicros?: number): Promise<void> {
  const { ProcessPoolExecutor } = (await import(new URL('coordinator/index.ts', root).href)) as { ProcessPoolExecutor: PoolClass };
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: WORKERS, log: false, ...(busyPollMicros === undefined ? {} : { busyPollMicros }) });
  await pool.ready(WORKERS);
  for (let done = 0; done < burstWarmup(false); done += 1_000) await Promise.all(Array.from({ length: 1_000 }, (_, i) => pool.submit(noop, done + i)));
  for (let i = 0; i < sequentialWarmup(false); i++) await pool.submit(noop, i);
  pools.push({ name, pool, samples: [], rounds: [] });
}

try {
  for (const [name, root] of builds) await open(name, root);
  await open('this, polling off', here, 0);
  for (let round = 0; round < rounds; round++) {
    for (const entry of round % 2 === 0 ? pools : [...pools].reverse()) {
      const xs = new Float64Array(trips);
      for (let i = 0; i < trips; i++) {
        const t = performance.now();
        await entry.pool.submit(noop, i);
        xs[i] = (performance.now() - t) * 1000;
      }
      entry.samples.push(...xs);
      entry.rounds.push(percentile(xs, 50));
    }
  }
  const width = Math.max(...pools.map((p) => p.name.length));
  for (const { name, samples, rounds } of pools) {
    const all = Float64Array.from(samples);
    console.log(
      `${name.padEnd(width)}  p50 ${percentile(all, 50).toFixed(1)} µs  p99 ${percentile(all, 99).toFixed(0)} µs  rounds' p50: ${rounds.map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
} finally {
  await Promise.all(pools.map((p) => p.pool.shutdown()));
}
