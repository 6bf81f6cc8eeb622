/**
 * The wsfutures suite: `ProcessPoolExecutor` on the workloads the baselines and peers run.
 * Run by `index.ts` with `--expose-gc`. Figures:
 * - tiny tasks submitted all at once, read with `asCompleted` (tasks/s);
 * - sequential submit → result (p50, p99);
 * - `map` with `chunksize: 1000` (tasks/s), read value by value and with `chunks()`, and the
 *   same items cut by hand into arrays of 1000, one `submit` each (what `map` would cost with no
 *   per-item work of its own), taking turns;
 * - 1 MiB and 16 MiB `Uint8Array` arguments returned (MiB/s, each counted once, 4 in flight);
 * - CPU-bound tasks: speed-up of all cores over 1 worker;
 * - recovery: the local worker node killed (SIGKILL) while a batch of 50 ms tasks runs; the pool
 *   restarts it and reruns what it held: the batch's time over the same batch undisturbed;
 * - 1,000,000 tasks queued at once: coordinator heap per queued task (after `gc()`), and the
 *   rate at which the queue drains, against tiny-task bursts run just before and after it;
 * - interleaved with the bare echo (its own server process, as the baseline suite runs it):
 *   sequential round trips and tiny-task bursts, alternating in short rounds so both see the
 *   same machine. This VM's speed drifts by ±30% between suites run minutes apart; ratios of
 *   figures taken in the same seconds are what the targets are best checked on. The latency
 *   rounds also take turns with a bare echo whose ends busy-poll as wsfutures does by default,
 *   and with a second pool that has busy polling off (`busyPollMicros: 0`): the gain of the
 *   technique and the overhead of wsfutures, apart.
 *
 * The pool is imported at run time, not with a static import: until `coordinator/index.ts`
 * exports `ProcessPoolExecutor`, this suite reports itself unavailable (and the type check
 * passes), and the rest of the benchmark runs. `PoolContract` below is the API it relies on.
 * WSF_BENCH_MODULE may name another module to load instead (a path or URL), to compare builds.
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { burstWarmup, emitError, emitFigure, emitSkip, MiB, now, payloadWarmup, percentile, perSecond, progress, sequentialWarmup, suiteOptions, windowed } from './measure.ts';
import { echo, noop, noopMany, sleep, spin } from './tasks.ts';
import { EchoClient, pipeline, startEchoServer } from './echo-client.ts';
import { DEFAULTS } from '../../shared/protocol.ts';

/** The part of a wsfutures `Future` this suite uses. */
interface FutureContract<T> extends PromiseLike<T> {
  result(): Promise<T>;
}

/** The part of `ProcessPoolExecutor` this suite uses. */
interface PoolContract extends AsyncDisposable {
  /** The pid of the worker node process the pool started, if one runs. */
  readonly localWorkerPid?: number | undefined;
  /** Resolves when `slots` task slots are connected. */
  ready(slots: number): Promise<void>;
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): FutureContract<Awaited<R>>;
  map<T, R>(fn: (item: T) => R, items: Iterable<T>, options?: { chunksize?: number }): AsyncIterable<Awaited<R>> & { chunks(): AsyncIterable<Awaited<R>[]> };
}

interface WsFuturesContract {
  ProcessPoolExecutor: new (options: { tasks: URL; maxWorkers: number; busyPollMicros?: number }) => PoolContract;
  asCompleted<T>(futures: Iterable<FutureContract<T>>): AsyncIterable<FutureContract<T>>;
}

const SUITE = 'wsfutures';
const WORKERS = 2;
const CHUNKSIZE = 1_000;
const PAYLOAD_WINDOW = 4;
/** The pools' default busy-poll budget, which the busy-polling bare echo uses too. */
const BUSY_POLL_MICROS = DEFAULTS.busyPollMicros;
const TASKS = new URL('./tasks.ts', import.meta.url);
const { smoke } = suiteOptions();
const sizes = smoke
  ? { tiny: 500, sequential: 50, mapped: 5_000, echo1: 2, echo16: 1, spinTasks: 2, spinRounds: 1_000_000, recovery: 0, queued: 2_000, maxMs: 1_000, stepMs: 60_000 }
  : {
    tiny: 100_000,
    sequential: 10_000,
    mapped: 2_000_000,
    echo1: 300,
    echo16: 32,
    spinTasks: 8,
    spinRounds: 50_000_000,
    recovery: 40,
    queued: 1_000_000,
    maxMs: 10_000,
    stepMs: 300_000,
  };
// Every loop stops starting new work after maxMs; a workload that is still not done after
// stepMs (a hang, or a pool far slower than the sizes assume) is reported as failed. The smoke
// limit catches hangs, not slowness: a smoke step takes about a second alone, and CI runs it
// beside other test files on 2 cores.

async function load(): Promise<WsFuturesContract | string> {
  const specifier = process.env.WSF_BENCH_MODULE;
  const url = specifier ? (/^[a-z]+:/.test(specifier) ? specifier : pathToFileURL(specifier).href) : new URL('../../coordinator/index.ts', import.meta.url).href;
  const name = specifier ?? 'coordinator/index.ts';
  let mod: Partial<WsFuturesContract>;
  try {
    mod = (await import(url)) as Partial<WsFuturesContract>;
  } catch (err) {
    return `importing ${name} failed: ${(err as Error).message.split('\n')[0]}`;
  }
  if (typeof mod.ProcessPoolExecutor !== 'function') return `${name} does not export ProcessPoolExecutor yet`;
  if (typeof mod.asCompleted !== 'function') return `${name} does not export asCompleted`;
  return mod as WsFuturesContract;
}

const api = await load();
if (typeof api === 'string') {
  emitSkip(api);
  process.exit(0);
}
const { ProcessPoolExecutor, asCompleted } = api;

async function openPool(maxWorkers: number, busyPollMicros?: number): Promise<PoolContract> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers, ...(busyPollMicros === undefined ? {} : { busyPollMicros }) });
  await pool.ready(maxWorkers);
  return pool;
}

async function tinyAllAtOnce(pool: PoolContract): Promise<void> {
  const t0 = now();
  const futures = Array.from({ length: sizes.tiny }, (_, i) => pool.submit(noop, i));
  for await (const _ of asCompleted(futures));
  const ms = now() - t0;
  emitFigure({
    suite: SUITE,
    workload: 'tiny-all-at-once',
    label: 'wsfutures tiny tasks all at once',
    value: perSecond(sizes.tiny, ms),
    unit: 'tasks/s',
    count: sizes.tiny,
    seconds: ms / 1000,
    note: `${WORKERS} workers, submit() x${sizes.tiny}, then asCompleted`,
  });
}

async function sequential(pool: PoolContract): Promise<void> {
  for (let i = 0; i < sequentialWarmup(smoke); i++) await pool.submit(noop, i);
  const samples = new Float64Array(sizes.sequential);
  const t0 = now();
  let n = 0;
  for (; n < sizes.sequential && (n === 0 || now() < t0 + sizes.maxMs); n++) {
    const started = now();
    await pool.submit(noop, n);
    samples[n] = (now() - started) * 1000;
  }
  const seconds = (now() - t0) / 1000;
  const measured = samples.subarray(0, n);
  emitFigure({ suite: SUITE, workload: 'sequential-p50', label: 'wsfutures sequential p50', value: percentile(measured, 50), unit: 'µs', count: n, seconds });
  emitFigure({ suite: SUITE, workload: 'sequential-p99', label: 'wsfutures sequential p99', value: percentile(measured, 99), unit: 'µs', count: n, seconds });
}

/** The middle value (the upper one of an even count). */
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;

/** One pass of `map(…, { chunksize })` read value by value with `for await`; items per second. */
async function mapped(pool: PoolContract, items: number[]): Promise<number> {
  const t0 = now();
  let n = 0;
  for await (const _ of pool.map(noop, items, { chunksize: CHUNKSIZE })) n++;
  const ms = now() - t0;
  if (n !== items.length) throw new Error(`map yielded ${n} results for ${items.length} items`);
  return perSecond(n, ms);
}

/** The same read a chunk at a time with `chunks()`: one `for await` step per chunk. */
async function mappedChunks(pool: PoolContract, items: number[]): Promise<number> {
  const t0 = now();
  let n = 0;
  for await (const values of pool.map(noop, items, { chunksize: CHUNKSIZE }).chunks()) for (const value of values) if (value === n) n++;
  const ms = now() - t0;
  if (n !== items.length) throw new Error(`map(…).chunks() yielded ${n} of ${items.length} values in order`);
  return perSecond(n, ms);
}

/** The same items cut into arrays by hand, one `submit` each, awaited in order. */
async function manualChunks(pool: PoolContract, items: number[]): Promise<number> {
  const t0 = now();
  const futures: FutureContract<number[]>[] = [];
  for (let start = 0; start < items.length; start += CHUNKSIZE) futures.push(pool.submit(noopMany, items.slice(start, start + CHUNKSIZE)));
  let n = 0;
  for (const future of futures) for (const value of await future) if (value === n) n++;
  const ms = now() - t0;
  if (n !== items.length) throw new Error(`the arrays returned ${n} of ${items.length} values in order`);
  return perSecond(n, ms);
}

/**
 * The three ways of running the same chunked items, taking turns in rounds so that they see
 * the same machine (their ratio is the figure that matters); the median round of each.
 */
async function chunkedMaps(pool: PoolContract): Promise<void> {
  const items = Array.from({ length: sizes.mapped }, (_, i) => i);
  const rounds = smoke ? 1 : 3;
  const rates = { map: [] as number[], chunks: [] as number[], manual: [] as number[] };
  // A build from before chunks() (WSF_BENCH_MODULE) runs the other two.
  const hasChunks = typeof pool.map(noop, []).chunks === 'function';
  const t0 = now();
  for (let round = 0; round < rounds; round++) {
    rates.map.push(await mapped(pool, items));
    rates.manual.push(await manualChunks(pool, items));
    if (hasChunks) rates.chunks.push(await mappedChunks(pool, items));
  }
  const seconds = (now() - t0) / 1000;
  const count = rounds * items.length;
  const note = `median of ${rounds} round(s) of ${items.length} items, the three taking turns`;
  emitFigure({ suite: SUITE, workload: 'map-chunked', label: `wsfutures map chunksize=${CHUNKSIZE}`, value: median(rates.map), unit: 'tasks/s', count, seconds, note });
  if (hasChunks) {
    emitFigure({
      suite: SUITE,
      workload: 'map-chunked-chunks',
      label: `wsfutures map chunksize=${CHUNKSIZE}, read with chunks()`,
      value: median(rates.chunks),
      unit: 'tasks/s',
      count,
      seconds,
      note,
    });
  }
  emitFigure({
    suite: SUITE,
    workload: 'map-manual-chunks',
    label: `wsfutures submit of ${CHUNKSIZE}-item arrays`,
    value: median(rates.manual),
    unit: 'tasks/s',
    count,
    seconds,
    note: `${note}; ${items.length / CHUNKSIZE} submit() of noopMany(array), awaited in order`,
  });
}

async function payload(pool: PoolContract, mib: number, count: number): Promise<void> {
  const data = new Uint8Array(mib * MiB).fill(7);
  const check = (returned: Uint8Array): void => {
    if (returned.byteLength !== data.byteLength) throw new Error(`echo returned ${returned.byteLength} bytes for ${data.byteLength}`);
  };
  await windowed(payloadWarmup(mib, smoke), PAYLOAD_WINDOW, sizes.maxMs, async () => check(await pool.submit(echo, data)));
  const { completed, ms } = await windowed(count, PAYLOAD_WINDOW, sizes.maxMs, async () => check(await pool.submit(echo, data)));
  emitFigure({
    suite: SUITE,
    workload: `payload-${mib}mib`,
    label: `wsfutures Uint8Array ${mib} MiB round trip`,
    value: perSecond(completed * mib, ms),
    unit: 'MiB/s',
    count: completed,
    seconds: ms / 1000,
    note: `${PAYLOAD_WINDOW} in flight, counted once`,
  });
}

async function cpuSpeedup(): Promise<void> {
  const cores = availableParallelism();
  const seconds: number[] = [];
  for (const workers of [1, cores]) {
    await using pool = await openPool(workers);
    await Promise.all(Array.from({ length: workers * 2 }, (_, i) => pool.submit(noop, i)));
    const t0 = now();
    await Promise.all(Array.from({ length: sizes.spinTasks }, () => pool.submit(spin, sizes.spinRounds)));
    seconds.push((now() - t0) / 1000);
  }
  const [one, all] = seconds as [number, number];
  emitFigure({
    suite: SUITE,
    workload: 'cpu-speedup',
    label: `wsfutures CPU-bound speed-up 1 -> ${cores} workers`,
    value: one / all,
    unit: 'x',
    count: sizes.spinTasks,
    seconds: one + all,
    note: `${sizes.spinTasks} tasks: ${one.toFixed(2)} s on 1 worker, ${all.toFixed(2)} s on ${cores}`,
  });
}

/**
 * A batch of 50 ms tasks, undisturbed, then again with the pool's worker node process killed a
 * quarter of the way in: the pool restarts it and its tasks run again.
 */
async function recovery(): Promise<void> {
  const n = sizes.recovery;
  await using pool = await openPool(WORKERS);
  const batch = (): Promise<number[]> => Promise.all(Array.from({ length: n }, (_, i) => pool.submit(sleep, i, 50)));
  const t0 = now();
  await batch();
  const calm = now() - t0;
  const t1 = now();
  const hit = batch();
  await new Promise((resolve) => setTimeout(resolve, calm / 4));
  const pid = pool.localWorkerPid;
  if (pid === undefined) throw new Error('the pool has no local worker node to kill');
  process.kill(pid, 'SIGKILL');
  const values = await hit;
  const hitMs = now() - t1;
  if (!values.every((v, i) => v === i)) throw new Error('the batch came back wrong after the worker node was killed');
  emitFigure({
    suite: SUITE,
    workload: 'recovery',
    label: 'wsfutures batch with its worker node killed, time ratio',
    value: hitMs / calm,
    unit: 'x',
    count: n,
    seconds: (calm + hitMs) / 1000,
    note: `${n} tasks of 50 ms: ${(calm / 1000).toFixed(2)} s undisturbed, ${(hitMs / 1000).toFixed(2)} s with the local worker node (both slots) killed a quarter of the way in`,
  });
}

/**
 * Submits `sizes.queued` tasks in one synchronous loop, so none can finish before the heap is
 * measured, then waits for all. The heap is read after a full collection both before and after;
 * the difference over the count is what one queued task costs the coordinator (its future, its
 * queue entry, whatever the pool keeps). The drain rate counts from the first submit to the last
 * result, less the full collection forced for the heap figure: a program does not force one,
 * and with a million tasks waiting it takes 0.3–1 s, which the pool's rate should not carry.
 */
async function queued(pool: PoolContract): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc to measure the queue');
  const n = sizes.queued;
  const aroundStarted = now();
  const burstBefore = await awaitedBurst(pool);
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = now();
  const futures: FutureContract<number>[] = new Array(n);
  for (let i = 0; i < n; i++) futures[i] = pool.submit(noop, i);
  const submitMs = now() - t0;
  const gcStarted = now();
  gc();
  const gcMs = now() - gcStarted;
  const bytes = (process.memoryUsage().heapUsed - before) / n;
  let done = 0;
  for (const f of futures) done += (await f) === done ? 1 : 0;
  const ms = now() - t0 - gcMs;
  if (done !== n) throw new Error(`the queued tasks returned wrong values (${done} of ${n} right)`);
  const burstAfter = await awaitedBurst(pool);
  const count = n.toLocaleString('en-US');
  emitFigure({
    suite: SUITE,
    workload: 'queue-heap',
    label: `wsfutures heap per queued task (${count})`,
    value: bytes,
    unit: 'B/task',
    count: n,
    seconds: submitMs / 1000,
    note: 'heapUsed after gc(), minus before, over the count',
  });
  emitFigure({
    suite: SUITE,
    workload: 'queue-drain',
    label: `wsfutures ${count} queued tasks drained`,
    value: perSecond(n, ms),
    unit: 'tasks/s',
    count: n,
    seconds: ms / 1000,
    note: `from the first submit to the last result; submitting took ${(submitMs / 1000).toFixed(2)} s; the gc() for the heap figure (${
      (gcMs / 1000).toFixed(2)
    } s) not counted (with it: ${Math.round(perSecond(n, ms + gcMs)).toLocaleString('en-US')}/s)`,
  });
  emitFigure({
    suite: SUITE,
    workload: 'queue-burst-around',
    label: `wsfutures ${sizes.tiny.toLocaleString('en-US')}-task bursts before and after the queue`,
    value: (burstBefore + burstAfter) / 2,
    unit: 'tasks/s',
    count: 2 * sizes.tiny,
    seconds: (now() - aroundStarted) / 1000,
    note: `mean of ${Math.round(burstBefore).toLocaleString('en-US')} and ${
      Math.round(burstAfter).toLocaleString('en-US')
    }/s; submitted and awaited in order as the queue is, so that only the queue's size differs`,
  });
}

/** A tiny-task burst read as the queue is (each future awaited in order); tasks/s. */
async function awaitedBurst(pool: PoolContract): Promise<number> {
  const t0 = now();
  const futures = Array.from({ length: sizes.tiny }, (_, i) => pool.submit(noop, i));
  let done = 0;
  for (const f of futures) done += (await f) === done ? 1 : 0;
  if (done !== sizes.tiny) throw new Error(`the burst returned wrong values (${done} of ${sizes.tiny} right)`);
  return perSecond(sizes.tiny, now() - t0);
}

/**
 * Sequential round trips and tiny-task bursts, wsfutures and the bare echo taking turns in
 * short rounds; p50 over all rounds for latency, the median round for rates.
 */
async function interleaved(pool: PoolContract): Promise<void> {
  const rounds = smoke ? 2 : 10;
  const trips = smoke ? 20 : 1_000;
  const burst = smoke ? 200 : 20_000;
  const { child, ports } = await startEchoServer();
  const started = now();
  // The same pool with busy polling off, and a bare echo whose ends busy-poll as the pool does.
  const quiet = await openPool(WORKERS, 0);
  try {
    const client = await EchoClient.open(ports.wsPort);
    const busyClient = await EchoClient.open(ports.wsPort, BUSY_POLL_MICROS);
    const tiny = (i: number) => ({ id: i, args: [i] });
    for (let i = 0; i < sequentialWarmup(smoke); i++) {
      await client.request(tiny(i));
      await busyClient.request(tiny(i));
      await pool.submit(noop, i);
      await quiet.submit(noop, i);
    }
    await pipeline(client, sizes.maxMs, burst, 1_000, tiny, () => 1);
    const bareTrips = new Float64Array(rounds * trips);
    const busyBareTrips = new Float64Array(rounds * trips);
    const ourTrips = new Float64Array(rounds * trips);
    const quietTrips = new Float64Array(rounds * trips);
    const bareRates: number[] = [];
    const ourRates: number[] = [];
    // Latency rounds first, before the bursts leave garbage behind. No gc() between rounds: a
    // forced full collection slowed the ~1,000 round trips after it for every side (the
    // busy-polling bare echo from ~29 to ~41 µs, wsfutures from ~40 to ~87 µs), so whichever
    // side came after one measured the collection rather than itself.
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < trips; i++) {
        const t = now();
        await client.request(tiny(i));
        bareTrips[r * trips + i] = (now() - t) * 1000;
      }
      for (let i = 0; i < trips; i++) {
        const t = now();
        await busyClient.request(tiny(i));
        busyBareTrips[r * trips + i] = (now() - t) * 1000;
      }
      for (let i = 0; i < trips; i++) {
        const t = now();
        await pool.submit(noop, i);
        ourTrips[r * trips + i] = (now() - t) * 1000;
      }
      for (let i = 0; i < trips; i++) {
        const t = now();
        await quiet.submit(noop, i);
        quietTrips[r * trips + i] = (now() - t) * 1000;
      }
    }
    busyClient.close();
    await dispose(quiet);
    for (let r = 0; r < rounds; r++) {
      const { units, ms } = await pipeline(client, sizes.maxMs, burst, 1_000, tiny, () => 1);
      bareRates.push(perSecond(units, ms));
      const t0 = now();
      const futures = Array.from({ length: burst }, (_, i) => pool.submit(noop, i));
      for await (const _ of asCompleted(futures));
      ourRates.push(perSecond(burst, now() - t0));
    }
    client.close();
    const note = `${rounds} rounds, taking turns with the bare echo`;
    const seconds = (now() - started) / 1000;
    emitFigure({
      suite: 'baseline',
      workload: 'ws-ping-pong-p50-interleaved',
      label: 'bare ws ping-pong p50, interleaved',
      value: percentile(bareTrips, 50),
      unit: 'µs',
      count: bareTrips.length,
      note,
      seconds,
    });
    emitFigure({
      suite: 'baseline',
      workload: 'ws-ping-pong-busy-p50-interleaved',
      label: 'bare ws ping-pong, busy-polling p50, interleaved',
      value: percentile(busyBareTrips, 50),
      unit: 'µs',
      count: busyBareTrips.length,
      note: `${note}, both ends busy-polling ${BUSY_POLL_MICROS} µs`,
      seconds,
    });
    emitFigure({
      suite: 'baseline',
      workload: 'ws-pipelined-interleaved',
      label: 'bare ws pipelined echo, interleaved',
      value: median(bareRates),
      unit: 'msgs/s',
      count: rounds * burst,
      note: `median of ${note}`,
      seconds,
    });
    emitFigure({
      suite: SUITE,
      workload: 'sequential-p50-interleaved',
      label: 'wsfutures sequential p50, interleaved',
      value: percentile(ourTrips, 50),
      unit: 'µs',
      count: ourTrips.length,
      note,
      seconds,
    });
    emitFigure({
      suite: SUITE,
      workload: 'sequential-p50-no-busy-poll-interleaved',
      label: 'wsfutures sequential p50, busyPollMicros 0, interleaved',
      value: percentile(quietTrips, 50),
      unit: 'µs',
      count: quietTrips.length,
      note,
      seconds,
    });
    emitFigure({
      suite: SUITE,
      workload: 'tiny-all-at-once-interleaved',
      label: 'wsfutures tiny tasks, interleaved',
      value: median(ourRates),
      unit: 'tasks/s',
      count: rounds * burst,
      note: `median of ${note}`,
      seconds,
    });
  } finally {
    child.kill('SIGKILL');
    await dispose(quiet);
  }
}

/** The two-worker pool the workloads share; a failed workload throws it away, and the next opens another. */
let shared: PoolContract | undefined;

async function sharedPool(): Promise<PoolContract> {
  if (!shared) {
    shared = await openPool(WORKERS);
    for (let done = 0; done < burstWarmup(smoke); done += 1_000) await Promise.all(Array.from({ length: 1_000 }, (_, i) => shared!.submit(noop, done + i)));
  }
  return shared;
}

/** Disposes of a pool, but does not wait long for it: the harness kills what is left at the end. */
async function dispose(pool: PoolContract): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, smoke ? 2_000 : 10_000)));
  await Promise.race([Promise.resolve(pool[Symbol.asyncDispose]()).catch(() => {}), timeout]);
  clearTimeout(timer);
}

/**
 * Runs one workload. A failure is reported (`BENCH-ERROR`) and the remaining workloads still
 * run, on a fresh pool, so one broken feature does not hide every other figure.
 */
async function step(name: string, run: () => Promise<void>): Promise<void> {
  progress(SUITE, name);
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done after ${sizes.stepMs / 1000} s`)), sizes.stepMs);
  });
  try {
    await Promise.race([run(), limit]);
  } catch (err) {
    emitError(SUITE, name, err);
    const broken = shared;
    shared = undefined;
    if (broken) await dispose(broken);
  } finally {
    clearTimeout(timer);
  }
}

await step('tiny tasks all at once', async () => tinyAllAtOnce(await sharedPool()));
await step('sequential round trips', async () => sequential(await sharedPool()));
await step(`map chunksize=${CHUNKSIZE}, chunks() and ${CHUNKSIZE}-item arrays, taking turns`, async () => chunkedMaps(await sharedPool()));
await step('Uint8Array 1 MiB', async () => payload(await sharedPool(), 1, sizes.echo1));
await step('Uint8Array 16 MiB', async () => payload(await sharedPool(), 16, sizes.echo16));
if (shared) await dispose(shared);
shared = undefined;
await step('interleaved with the bare echo', async () => interleaved(await sharedPool()));
if (shared) await dispose(shared);
shared = undefined;
await step('CPU-bound speed-up', cpuSpeedup);
if (sizes.recovery) await step('worker node killed mid-batch', recovery);
// Last, on a pool of its own: a queue that outlives its time limit is abandoned while its
// workers may still be busy, which would skew any figure measured after it.
await step(`${sizes.queued.toLocaleString('en-US')} tasks queued at once`, async () => queued(await sharedPool()));
if (shared) await dispose(shared);
