/**
 * What every benchmark suite shares: the shape of one measured figure, how a suite reports it
 * to the harness, and the small statistics the suites need.
 *
 * A suite is a child process of `index.ts`. It writes one line per figure to stdout,
 * `BENCH-FIGURE {json}`, as soon as the figure is measured (so a suite that is stopped for
 * running too long still keeps what it measured), `BENCH-INFO {json}` for facts about its
 * runtime, `BENCH-ERROR {json}` when one workload failed (the suite goes on with the next), or
 * `BENCH-SKIP reason` when it cannot run here. Progress goes to stderr. The Python
 * and Dask suites (`python-pool.py`, `dask-pool.py`) write the same lines, which is why they are plain text and JSON.
 */

export const FIGURE_PREFIX = 'BENCH-FIGURE ';
export const INFO_PREFIX = 'BENCH-INFO ';
export const SKIP_PREFIX = 'BENCH-SKIP ';
export const ERROR_PREFIX = 'BENCH-ERROR ';

export const MiB = 1024 * 1024;

export type Unit = 'tasks/s' | 'msgs/s' | 'req/s' | 'MiB/s' | 'µs' | 'ms' | 'x' | 'B/task';

/** One measured number. */
export interface Figure {
  /** Which suite measured it: `baseline`, `piscina`, `python`, `dask`, `bullmq`, `wsfutures`. */
  suite: string;
  /**
   * What was measured. Suites that run the same workload use the same name (`tiny-all-at-once`),
   * which is how the harness lines them up for ratios.
   */
  workload: string;
  /** How the table names it: "bare ws pipelined echo". */
  label: string;
  value: number;
  unit: Unit;
  /** How many operations the figure was measured over. */
  count: number;
  /** Wall time of the measured part, in seconds. */
  seconds: number;
  /** How it was measured, when the label does not say it all. */
  note?: string;
}

/** Options every Node suite understands. */
export interface SuiteOptions {
  smoke: boolean;
}

/**
 * Sequential round trips made before any latency is measured, by every suite that measures one
 * (the same number for all): a path run one message at a time starts cold (interpreted code,
 * on both sides of the socket); on the 2-core VM wsfutures' p50 took ~3,000 trips to settle
 * (320 µs over the first thousand, ~40 µs from the fourth on).
 */
export function sequentialWarmup(smoke: boolean): number {
  return smoke ? 50 : 5_000;
}

/**
 * Tiny tasks (or messages) run before any throughput is measured, by every JavaScript suite, a
 * thousand at a time: the bare echo's pipelined figure always had 20,000, and a pool warmed with
 * 2,000 in one burst still ran its first measured burst on code that had seen a few dozen frames.
 */
export function burstWarmup(smoke: boolean): number {
  return smoke ? 500 : 20_000;
}

/**
 * Payload round trips made before a payload figure is measured, by the bare echo and wsfutures
 * alike (64 MiB worth, at least 8): the first large buffers a process allocates come fresh
 * from the OS, and glibc raises its mmap threshold only after freeing a few, so early round
 * trips measure page faults (on the 2-core VM, 16 MiB round trips ran ~190 MiB/s over the
 * first 24 and ~600 MiB/s over the third 24).
 */
export function payloadWarmup(mib: number, smoke: boolean): number {
  return smoke ? 1 : Math.max(8, Math.ceil(64 / mib));
}

export function suiteOptions(argv: string[] = process.argv.slice(2)): SuiteOptions {
  return { smoke: argv.includes('--smoke') };
}

export function emitFigure(figure: Figure): void {
  process.stdout.write(`${FIGURE_PREFIX}${JSON.stringify(figure)}\n`);
}

export function emitInfo(info: Record<string, string | number>): void {
  process.stdout.write(`${INFO_PREFIX}${JSON.stringify(info)}\n`);
}

/** A workload that failed: which, and the error's first line. */
export interface WorkloadError {
  suite: string;
  workload: string;
  error: string;
}

export function emitError(suite: string, workload: string, err: unknown): void {
  const error = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).split('\n')[0]!;
  process.stdout.write(`${ERROR_PREFIX}${JSON.stringify({ suite, workload, error } satisfies WorkloadError)}\n`);
}

/** Reports that the suite cannot run here, and why. The caller then exits with status 0. */
export function emitSkip(reason: string): void {
  process.stdout.write(`${SKIP_PREFIX}${reason.replace(/\s+/g, ' ').trim()}\n`);
}

export function progress(suite: string, message: string): void {
  process.stderr.write(`  [${suite}] ${message}\n`);
}

/** The value below which `p` percent of the samples fall (nearest rank). Sorts in place. */
export function percentile(samples: Float64Array, p: number): number {
  if (samples.length === 0) return NaN;
  samples.sort();
  const rank = Math.ceil((p / 100) * samples.length);
  return samples[Math.min(samples.length, Math.max(1, rank)) - 1]!;
}

/** Milliseconds since an arbitrary origin, with sub-microsecond resolution. */
export const now = (): number => performance.now();

/**
 * Keeps up to `window` operations in flight until `count` have completed, or until `maxMs` has
 * passed (then no new ones start and the ones in flight are awaited). `start(i)` starts
 * operation `i` and resolves when it is done. Returns how many completed and the elapsed ms.
 *
 * The window bounds the memory and the socket buffers a run may fill, whatever the count.
 */
export async function windowed(
  count: number,
  window: number,
  maxMs: number,
  start: (i: number) => PromiseLike<unknown>,
): Promise<{ completed: number; ms: number }> {
  const t0 = now();
  const deadline = t0 + maxMs;
  let next = 0;
  let completed = 0;
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    const launch = (): void => {
      while (inFlight < window && next < count && (next === 0 || now() < deadline)) {
        const i = next++;
        inFlight++;
        start(i).then(() => {
          inFlight--;
          completed++;
          if (inFlight === 0 && (next >= count || now() >= deadline)) resolve();
          else launch();
        }, reject);
      }
    };
    launch();
    if (inFlight === 0) resolve();
  });
  return { completed, ms: now() - t0 };
}

/** Operations per second. */
export const perSecond = (count: number, ms: number): number => (count * 1000) / ms;
