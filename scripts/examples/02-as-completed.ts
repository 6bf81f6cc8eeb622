/**
 * The seed's `as_completed` example: sleeps of 5, 4, 3, 2 and 1 seconds (times WSF_DEMO_SCALE)
 * submitted to two workers; results are printed as they finish, not in submission order.
 *
 *   npx tsx scripts/examples/02-as-completed.ts
 */
import { asCompleted, type Future } from '../../coordinator/index.ts';
import { type ExampleContext, finishedIn, isMain, perfCounter, runStandalone } from './kit.ts';
import { doSomething } from './tasks.ts';

/**
 * `for await` types its variable as the awaited element, and a Future is awaitable, so
 * TypeScript calls it a string although it is the Future: this gives the type back.
 */
const asFuture = <T>(f: unknown): Future<T> => f as Future<T>;

export async function run({ pool, scale }: ExampleContext): Promise<void> {
  const start = perfCounter();
  const futures = [5, 4, 3, 2, 1].map((s) => pool.submit(doSomething, Math.round(s * scale * 100) / 100));
  for await (const done of asCompleted(futures)) {
    console.log(await asFuture<string>(done).result()); // results as they complete
  }
  finishedIn(start);
}

if (isMain(import.meta)) await runStandalone(run);
