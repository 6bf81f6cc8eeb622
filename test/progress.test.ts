/**
 * Progress of long work: map/starmap and asCompleted call a progress callback with
 * { done, total } as results come, ending at the total; `progress: true` draws a bar only on a
 * terminal, so a piped program prints nothing extra.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { asCompleted, AsyncPoolExecutor, type Progress } from '../coordinator/index.ts';
import { add, sleepThenEcho } from './fixtures/tasks.ts';
import { ROOT, startPool } from './helpers/cluster.ts';

const run = promisify(execFile);
const IS_DENO = 'Deno' in globalThis;

test('map on worker nodes reports progress up to the total, never going back', async () => {
  const pool = await startPool({ maxWorkers: 2 }, 2);
  try {
    const seen: Progress[] = [];
    const items = Array.from({ length: 500 }, (_, i) => i);
    const out: number[] = [];
    const calls = items.map((i) => [i, 1] as [number, number]);
    for await (const v of pool.starmap(add, calls, { chunksize: 10, progress: (p) => seen.push(p) })) out.push(v);
    assert.equal(out.length, 500);
    assert.equal(seen[0], { done: 0, total: 500 });
    assert.equal(seen.at(-1), { done: 500, total: 500 });
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.done >= seen[i - 1]!.done);
  } finally {
    await pool.shutdown();
  }
});

test('asCompleted reports progress as futures complete; an iterable of unknown length has no total', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  try {
    const seen: Progress[] = [];
    const fs = [30, 10, 20].map((ms) => pool.submit(sleepThenEcho, ms, ms));
    const order: number[] = [];
    for await (const f of asCompleted(fs, { progress: (p) => seen.push(p) })) order.push(await f.result());
    assert.equal(order, [10, 20, 30]);
    assert.equal(seen.at(-1), { done: 3, total: 3 });
    const lazy: Progress[] = [];
    const input = async function* () {
      yield 1;
      yield 2;
    };
    for await (const _ of pool.map((n: number) => n, input(), { progress: (p) => lazy.push(p) }));
    assert.equal(lazy.at(-1), { done: 2, total: undefined });
  } finally {
    await pool.shutdown();
  }
});

test('progress: true prints nothing when stderr is not a terminal', async () => {
  if (IS_DENO) return console.log('runs once, under Node');
  const script = `import { AsyncPoolExecutor } from './coordinator/index.ts';
const pool = new AsyncPoolExecutor({ maxWorkers: 2 });
let n = 0;
for await (const _ of pool.map((x) => x, Array.from({ length: 200 }, (_, i) => i), { progress: true })) n++;
await pool.shutdown();
console.log(n);`;
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
  assert.equal(stdout.trim(), '200');
  assert.equal(stderr, '');
});

test.run();
