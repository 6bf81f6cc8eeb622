/**
 * The piscina peer: a pool of 2 worker threads (no network, no process boundary), running the
 * same task module as wsfutures. Figures: tiny tasks submitted all at once (tasks/s), and
 * sequential run→result round trips (p50, p99).
 */
import { burstWarmup, emitFigure, emitInfo, emitSkip, now, percentile, perSecond, progress, sequentialWarmup, suiteOptions } from './measure.ts';

const SUITE = 'piscina';
const THREADS = 2;
const { smoke } = suiteOptions();
const sizes = smoke ? { tiny: 2_000, sequential: 200, maxMs: 2_000 } : { tiny: 100_000, sequential: 10_000, maxMs: 10_000 };

// Imported here, not at the top, so that a missing piscina is a skip rather than a crash.
let Piscina: typeof import('piscina').Piscina;
try {
  ({ Piscina } = await import('piscina'));
} catch (err) {
  emitSkip(`piscina is not installed (${(err as Error).message.split('\n')[0]})`);
  process.exit(0);
}
emitInfo({ piscina: Piscina.version });

// Worker threads inherit this process's `--import tsx`, so they load the TypeScript module as is.
const pool = new Piscina({ filename: new URL('./tasks.ts', import.meta.url).href, name: 'noop', minThreads: THREADS, maxThreads: THREADS });
try {
  for (let done = 0; done < burstWarmup(smoke); done += 1_000) {
    const warm = await Promise.all(Array.from({ length: 1_000 }, (_, i) => pool.run(i)));
    if (warm[7] !== 7) throw new Error(`noop(7) returned ${String(warm[7])}`);
  }

  progress(SUITE, 'tiny tasks all at once');
  const t0 = now();
  await Promise.all(Array.from({ length: sizes.tiny }, (_, i) => pool.run(i)));
  const ms = now() - t0;
  emitFigure({
    suite: SUITE,
    workload: 'tiny-all-at-once',
    label: `piscina tiny tasks all at once`,
    value: perSecond(sizes.tiny, ms),
    unit: 'tasks/s',
    count: sizes.tiny,
    seconds: ms / 1000,
    note: `${THREADS} threads, run() ${sizes.tiny} times, then await all`,
  });

  progress(SUITE, 'sequential round trips');
  for (let i = 0; i < sequentialWarmup(smoke); i++) await pool.run(i);
  const samples = new Float64Array(sizes.sequential);
  const s0 = now();
  let n = 0;
  for (; n < sizes.sequential && (n === 0 || now() < s0 + sizes.maxMs); n++) {
    const started = now();
    await pool.run(n);
    samples[n] = (now() - started) * 1000;
  }
  const seconds = (now() - s0) / 1000;
  const measured = samples.subarray(0, n);
  emitFigure({ suite: SUITE, workload: 'sequential-p50', label: 'piscina sequential p50', value: percentile(measured, 50), unit: 'µs', count: n, seconds });
  emitFigure({ suite: SUITE, workload: 'sequential-p99', label: 'piscina sequential p99', value: percentile(measured, 99), unit: 'µs', count: n, seconds });
} finally {
  await pool.destroy();
}
