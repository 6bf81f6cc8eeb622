/**
 * The result type flows from the submitted function to the Future, to `await`, to map results.
 * The checks are at the type level (`npm run typecheck` fails if they break); the test body runs
 * the same code so the file also proves it at run time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, type Executor, Future, type TaskContext, wait } from '../coordinator/index.ts';

/** True only if A and B are the same type (not merely assignable). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
/** Compiles only when given `true`. */
function expectType<T extends true>(_proof?: T): void {}

async function fetchCount(): Promise<number> {
  return 3;
}
function label(n: number, prefix: string): string {
  return `${prefix}${n}`;
}

test('submit(fn returning Promise<number>) is a Future<number>, and awaiting it gives a number', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const f = pool.submit(fetchCount);
  expectType<Equal<typeof f, Future<number>>>(true);
  const n = await f;
  expectType<Equal<typeof n, number>>(true);
  const r = await f.result(100);
  expectType<Equal<typeof r, number>>(true);
  assert.is(n + r, 6);
});

test('arguments are checked against the function, and the result type follows sync functions too', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const s = pool.submit(label, 1, '#');
  expectType<Equal<typeof s, Future<string>>>(true);
  // @ts-expect-error: the second argument must be a string
  pool.submit(label, 1, 2).cancel();
  // @ts-expect-error: an argument is missing
  pool.submitWith({}, label, 1).cancel();
  const withThis = pool.submit(function (this: TaskContext, k: boolean) {
    return this.signal.aborted === k;
  }, false);
  expectType<Equal<typeof withThis, Future<boolean>>>(true);
  assert.is(await s, '#1');
  assert.is(await withThis, true);
});

test('map and starmap yield the awaited result type', async () => {
  const pool: Executor = new AsyncPoolExecutor({ maxWorkers: 2 });
  const out: number[] = [];
  for await (const v of pool.map(async (x: string) => x.length, ['a', 'bb'])) {
    expectType<Equal<typeof v, number>>(true);
    out.push(v);
  }
  for await (const v of pool.starmap(label, [[5, '>']] as [number, string][])) {
    expectType<Equal<typeof v, string>>(true);
    assert.is(v, '>5');
  }
  assert.equal(out, [1, 2]);
  await pool.shutdown();
});

test('futures of different result types mix in wait() (Future is covariant in its result)', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const a: Future<number> = pool.submit(() => 1);
  const b: Future<string> = pool.submit(() => 'b');
  const anyFuture: Future<unknown> = a;
  const { done } = await wait<unknown>([a, b]);
  assert.is(done.size, 2);
  assert.ok(done.has(anyFuture));
});

test.run();
