/**
 * The seed's CPU-bound example: factorials of 1000, 10000, 100000 and 1000000 as bigints, on
 * the process pool, then on one core (this process) for comparison. The numbers themselves
 * are millions of digits long, so digit counts are printed instead.
 *
 *   npx tsx scripts/examples/03-factorials.ts
 */
import { availableParallelism } from 'node:os';
import { type ExampleContext, finishedIn, isMain, perfCounter, runStandalone, section } from './kit.ts';
import { calculateFactorial, digitCount, factorial } from './tasks.ts';

export async function run({ pool, scale }: ExampleContext): Promise<void> {
  // Scaled down, the largest number shrinks first: it is the one that takes seconds.
  const numbers = [1000, 10000, 100000, 1000000].map((n) => Math.max(10, Math.round(n * Math.min(1, scale))));

  section(`On the process pool (${pool.slots} worker slot(s))`);
  let start = perfCounter();
  for await (const result of pool.map(calculateFactorial, numbers)) {
    console.log(`Final Result: a number of ${digitCount(result)} digits`);
  }
  const parallel = finishedIn(start);

  section('On one core, in this process');
  start = perfCounter();
  for (const n of numbers) {
    const result = calculateFactorial(n);
    console.log(`Final Result: a number of ${digitCount(result)} digits`);
  }
  const sequential = finishedIn(start);

  console.log(`\nSpeed-up over one core: ${(sequential / Math.max(parallel, 0.01)).toFixed(2)}x on ${availableParallelism()} core(s).`);
  console.log(
    'The factorial of the largest number is nearly all the work, and one task runs on one core: the pool\n' +
      'can only overlap the three small ones with it, and its million-digit result travels back over the socket.',
  );

  // The same kind of work in equal parts, which is where more cores pay off.
  const even = Math.max(10, Math.round(250000 * Math.min(1, scale)));
  section(`Balanced: four factorials of ${even}, on the pool and then on one core`);
  start = perfCounter();
  for await (const result of pool.map(factorial, [even, even, even, even])) void result;
  const balancedParallel = finishedIn(start);
  start = perfCounter();
  for (let i = 0; i < 4; i++) factorial(even);
  const balancedSequential = finishedIn(start);
  console.log(`Speed-up over one core: ${(balancedSequential / Math.max(balancedParallel, 0.01)).toFixed(2)}x with ${pool.slots} worker slot(s).`);
}

if (isMain(import.meta)) await runStandalone(run);
