/**
 * The task module of the benchmark: plain exported functions, loaded by the wsfutures worker
 * nodes (`tasks: new URL('./tasks.ts', import.meta.url)`) and by piscina's worker threads, so
 * both pools run exactly the same code (the BullMQ workers import it too). `python-pool.py` and
 * `dask-pool.py` define the same tasks in Python.
 */

/** A task that does nothing: its cost is the pool's overhead. Returns its argument. */
export function noop(value: number): number {
  return value;
}

/** Returns its argument: with a large Uint8Array, its cost is moving the bytes both ways. */
export function echo(data: Uint8Array): Uint8Array {
  return data;
}

/**
 * CPU-bound work: `rounds` steps of a 32-bit xorshift generator, so that nothing can be
 * optimized away or cached. Returns the last state.
 */
export function spin(rounds: number): number {
  let x = 2463534242;
  for (let i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

/** `noop` over an array: a chunk of work cut by hand, one task per array. */
export function noopMany(values: number[]): number[] {
  return values.map(noop);
}

/** Waits `ms` milliseconds, then returns `value`: a task whose duration is known. */
export function sleep(value: number, ms: number): Promise<number> {
  return new Promise((resolve) => setTimeout(resolve, ms, value));
}

/**
 * Busy for `ms` of CPU time, then returns `value`. On a node started with WSF_BENCH_SLOWDOWN=4
 * it takes four times as long, as on a machine four times slower — the extra time spent waiting,
 * not spinning, so that this machine's cores stay free for the other nodes and the coordinator,
 * as another machine's would.
 */
export function busy(value: number, ms: number): number | Promise<number> {
  const end = performance.now() + ms;
  while (performance.now() < end);
  const slowdown = Number(process.env.WSF_BENCH_SLOWDOWN ?? 1);
  if (slowdown <= 1) return value;
  return new Promise((resolve) => setTimeout(resolve, ms * (slowdown - 1), value));
}

/**
 * `busy` under another name: a second kind of task, for workloads that mix short and long
 * functions (the scheduler estimates durations per function).
 */
export function busyLong(value: number, ms: number): number | Promise<number> {
  return busy(value, ms);
}
