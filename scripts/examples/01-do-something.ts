/**
 * The seed's first example: `do_something` run one after another, then with `submit`, then
 * with `map`, on two workers. The two concurrent runs take about half the sequential time.
 *
 *   npx tsx scripts/examples/01-do-something.ts        (WSF_DEMO_SCALE=0.2 for a quick run)
 */
import { wait } from '../../coordinator/index.ts';
import { type ExampleContext, finishedIn, isMain, perfCounter, runStandalone, section } from './kit.ts';
import { doSomething } from './tasks.ts';

export async function run({ pool, scale }: ExampleContext): Promise<void> {
  const seconds = Math.round(scale * 100) / 100;

  section('Sequential execution (the slow, sad way)');
  let start = perfCounter();
  await doSomething(seconds);
  await doSomething(seconds);
  finishedIn(start);

  section('Concurrent execution with submit (two baristas)');
  start = perfCounter();
  // Python's `with ... as executor:` waits for both at the end of the block; the pool here is
  // shared with the other examples, so `wait` does that part.
  await wait([pool.submit(doSomething, seconds), pool.submit(doSomething, seconds)]);
  finishedIn(start);

  section('More elegant: map');
  start = perfCounter();
  for await (const result of pool.map(doSomething, [seconds, seconds])) console.log(result);
  finishedIn(start);
}

if (isMain(import.meta)) await runStandalone(run);
