/**
 * What every example shares: the context `run(ctx)` receives, the scale factor, the seed's
 * "Finished in X second(s)" timer, and `runStandalone`, which starts a pool of its own when an
 * example is run directly (`npx tsx scripts/examples/02-as-completed.ts`).
 */
import { pathToFileURL } from 'node:url';
import { ProcessPoolExecutor, wait } from '../../coordinator/index.ts';
import { loadImageLibrary } from './image-tasks.ts';
import { pause } from './tasks.ts';

/** What the demo (or `runStandalone`) gives each example. */
export interface ExampleContext {
  /** A ready process pool whose task modules include `tasks.ts` and `image-tasks.ts`. */
  pool: ProcessPoolExecutor;
  /** Multiplies sleeps, sizes and counts: 1 is the full example, 0.1 a quick check. */
  scale: number;
}

/** Every task module the examples use: the demo's shared pool loads them all. */
export const TASK_MODULES: URL[] = [new URL('./tasks.ts', import.meta.url), new URL('./image-tasks.ts', import.meta.url)];

/** `WSF_DEMO_SCALE` (default 1), checked: a typo should not silently run the full demo. */
export function demoScale(): number {
  const raw = process.env.WSF_DEMO_SCALE;
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 10) {
    throw new RangeError(`WSF_DEMO_SCALE must be a number in (0, 10], e.g. 0.1: got ${JSON.stringify(raw)}`);
  }
  return scale;
}

/** Python's `time.perf_counter()`, in seconds. */
export const perfCounter = (): number => performance.now() / 1000;

/** The seed's `print(f"Finished in {round(finish-start, 2)} second(s)")`. */
export function finishedIn(start: number): number {
  const seconds = Math.round((perfCounter() - start) * 100) / 100;
  console.log(`Finished in ${seconds} second(s)`);
  return seconds;
}

/** A heading for one part of an example. */
export function section(title: string): void {
  console.log(`\n-- ${title}`);
}

/**
 * True when `meta` is the entry module (run directly, not imported by the demo), under Node
 * (tsx) and under Deno alike.
 */
export function isMain(meta: ImportMeta): boolean {
  const denoMain = (meta as ImportMeta & { main?: boolean }).main;
  if (typeof denoMain === 'boolean') return denoMain;
  const entry = process.argv[1];
  return entry !== undefined && meta.url === pathToFileURL(entry).href;
}

/**
 * Runs one example on a pool of its own with two local worker slots (the seed's examples use
 * two to four workers), then shuts the pool down. Exits non-zero if the example throws.
 */
export async function runStandalone(run: (ctx: ExampleContext) => Promise<void>, options: { maxWorkers?: number } = {}): Promise<void> {
  const scale = demoScale();
  await using pool = new ProcessPoolExecutor({ tasks: TASK_MODULES, maxWorkers: options.maxWorkers ?? 2 });
  await pool.ready();
  await warmUp(pool);
  await run({ pool, scale });
}

/**
 * Has every worker thread load the task modules (a worker imports a module on its first task
 * from it; jimp alone takes a second or two), so that the examples' timings measure the work,
 * as Python's timings do once its worker processes are up.
 */
export async function warmUp(pool: ProcessPoolExecutor): Promise<void> {
  const n = Math.max(1, pool.slots) * 2;
  await wait<unknown>([
    ...Array.from({ length: n }, () => pool.submit(pause, 100)),
    ...Array.from({ length: n }, () => pool.submit(loadImageLibrary)),
  ]);
}
