/**
 * Two of the seed's "important considerations", measured rather than asserted:
 *  1. serialization overhead: a large argument is encoded, sent over the socket and decoded
 *     before the task starts; sending a small recipe instead is cheaper;
 *  2. choosing maxWorkers: CPU-bound work stops gaining at the number of cores, while I/O-bound
 *     work keeps gaining far beyond it.
 *
 *   npx tsx scripts/examples/07-pitfalls.ts
 */
import { availableParallelism, loadavg } from 'node:os';
import { AsyncPoolExecutor, type Executor, ProcessPoolExecutor } from '../../coordinator/index.ts';
import { type ExampleContext, isMain, perfCounter, runStandalone, section, TASK_MODULES, warmUp } from './kit.ts';
import { withProgress } from './progress.ts';
import { burnCpu, checksum, checksumOfRecipe, makeBytes } from './tasks.ts';

const seconds = (s: number): string => `${s.toFixed(2)} s`;

async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; s: number }> {
  const start = perfCounter();
  const value = await fn();
  return { value, s: perfCounter() - start };
}

async function serializationOverhead(pool: ProcessPoolExecutor, scale: number): Promise<void> {
  const size = Math.max(1, Math.round(16 * scale)) * 1024 * 1024;
  const mb = size / 1024 / 1024;
  section(`Serialization overhead: a checksum of ${mb} MB`);
  const data = makeBytes(size, 7);
  // One small task first, so neither measurement pays for warming up the worker.
  await pool.submit(checksumOfRecipe, 1024, 7);
  const local = await timed(() => checksum(data));
  const sent = await timed(() => pool.submit(checksum, data));
  const recipe = await timed(() => pool.submit(checksumOfRecipe, size, 7));
  if (sent.value !== local.value || recipe.value !== local.value) throw new Error('the checksums differ: the data did not arrive intact');
  console.log(`in this process, data already here:       ${seconds(local.s)}`);
  console.log(`on the pool, sending the ${mb} MB argument: ${seconds(sent.s)}  (${(mb / Math.max(sent.s, 1e-3)).toFixed(0)} MB/s end to end)`);
  console.log(`on the pool, sending a recipe (2 numbers): ${seconds(recipe.s)}  (the worker makes the data itself)`);
  console.log('Keep what crosses the wire small: send file names, seeds or ranges, and let the worker make or read the data.');
}

async function runAll(executor: Executor, label: string, fn: (x: number) => unknown, items: number[], options: { buffersize?: number } = {}): Promise<number> {
  const { s } = await timed(async () => {
    for await (const _ of withProgress(executor.map(fn, items, options), items.length, { label })) {
      // results are not needed: this measures the time to get them all
    }
  });
  console.log(`${label.padEnd(44)} ${seconds(s)}`);
  return s;
}

async function choosingMaxWorkers(pool: ProcessPoolExecutor, scale: number): Promise<void> {
  const cores = availableParallelism();
  // Calibrate: how many rounds of burnCpu take about 250 ms (times the scale) here.
  burnCpu(5); // once unmeasured, so the probe times optimized code, as the workers run it
  const probe = await timed(() => burnCpu(5));
  const rounds = Math.max(1, Math.round((250 * scale) / Math.max(1, (probe.s * 1000) / 5)));
  const tasks = Array.from({ length: 8 }, () => rounds);

  section(`Choosing maxWorkers, CPU-bound: ${tasks.length} equal tasks on ${cores} core(s), load average ${loadavg()[0]!.toFixed(1)}`);
  await runAll(pool, 'pool, one task at a time (1 worker)', burnCpu, tasks, { buffersize: 1 });
  await runAll(pool, `pool, all ${pool.slots} slot(s)`, burnCpu, tasks);
  {
    const oversubscribed = cores * 2;
    await using big = new ProcessPoolExecutor({ tasks: TASK_MODULES, maxWorkers: oversubscribed, log: false });
    await big.ready();
    await warmUp(big);
    await runAll(big, `new pool, maxWorkers: ${oversubscribed} (2 × cores)`, burnCpu, tasks);
  }
  console.log('CPU-bound work gains up to the number of cores and no further: more workers only take turns.');

  const waits = 25;
  const waitMs = Math.round(100 * scale);
  section(`Choosing maxWorkers, I/O-bound: ${waits} waits of ${waitMs} ms on an AsyncPoolExecutor`);
  const io = (ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(ms), ms));
  for (const maxWorkers of [1, 5, 25]) {
    await using executor = new AsyncPoolExecutor({ maxWorkers });
    await runAll(executor, `AsyncPoolExecutor, maxWorkers: ${maxWorkers}`, io, Array.from({ length: waits }, () => waitMs));
  }
  console.log('Waiting costs no core: I/O-bound pools can have many more workers than cores.');
}

export async function run({ pool, scale }: ExampleContext): Promise<void> {
  await serializationOverhead(pool, scale);
  await choosingMaxWorkers(pool, scale);
}

if (isMain(import.meta)) await runStandalone(run);
