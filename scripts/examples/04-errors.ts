/**
 * The seed's error handling: `risky_function` over [5, 2, 0, 1]. The error thrown on the
 * worker for 0 is re-thrown by `result()` at its position, with the worker's stack.
 *
 *   npx tsx scripts/examples/04-errors.ts
 */
import { type ExampleContext, isMain, runStandalone } from './kit.ts';
import { riskyFunction } from './tasks.ts';

export async function run({ pool }: ExampleContext): Promise<void> {
  const inputs = [5, 2, 0, 1];
  const futures = inputs.map((x) => pool.submit(riskyFunction, x));
  for (const [position, future] of futures.entries()) {
    try {
      const result = await future.result(); // re-throws what the task threw
      console.log(`Result: ${result}`);
    } catch (e) {
      const error = e as Error;
      console.log(`Error: ${error.message}  (position ${position}, input ${inputs[position]}, ${error.name})`);
      console.log(`  worker stack:\n${indent(error.stack ?? '', '    ')}`);
    }
  }
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((line) => prefix + line.trim()).join('\n');
}

if (isMain(import.meta)) await runStandalone(run);
