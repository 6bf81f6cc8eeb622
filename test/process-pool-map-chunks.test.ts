/**
 * map/starmap with chunksize on a real cluster, as a user sees it: every item reaches the task
 * whole as its one argument (a chunk of map calls travels as one flat array of items), results
 * come back in input order, an error surfaces at its exact position after the values before it,
 * and an array input is read lazily under buffersize, as its own iterator would read it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ProcessPoolExecutor } from '../coordinator/index.ts';
import { add, echo, failFastOrSleep, failIfNegative } from './fixtures/tasks.ts';
import { startPool } from './helpers/cluster.ts';
import { until } from './helpers/deferred.ts';

let pool: ProcessPoolExecutor;

test.before(async () => {
  pool = await startPool({ maxWorkers: 2 });
});

test.after(async () => {
  await pool?.shutdown({ cancelFutures: true });
});

async function collect<T>(it: AsyncIterable<T>): Promise<{ values: T[]; error?: unknown }> {
  const values: T[] = [];
  try {
    for await (const v of it) values.push(v);
  } catch (error) {
    return { values, error };
  }
  return { values };
}

test('map with chunksize hands every item whole to the task: arrays, empty arrays, undefined, null, objects', async () => {
  const items: unknown[] = [[1, 2], [], undefined, null, { a: [1] }, 'x', [[3]], [undefined], 0, new Uint8Array([1, 2])];
  for (const chunksize of [1, 3, 4, 100]) {
    const { values, error } = await collect(pool.map(echo, items, { chunksize }));
    assert.is(error, undefined);
    assert.equal(values, items, `chunksize ${chunksize}`);
  }
  // A subclass of Array is read through its iterator, and never constructed by map.
  class Items extends Array<unknown> {
    static constructed = 0;
    constructor(...args: unknown[]) {
      super(...(args as []));
      Items.constructed++;
    }
  }
  const sub = Items.from([1, [2], 3, 4]) as Items;
  const before = Items.constructed;
  assert.equal((await collect(pool.map(echo, sub, { chunksize: 3 }))).values, [1, [2], 3, 4]);
  assert.is(Items.constructed, before);
  // starmap still spreads each item over the arguments.
  const { values } = await collect(pool.starmap(add, [[1, 2], [3, 4], [5, 6], [7, 8]] as [number, number][], { chunksize: 3 }));
  assert.equal(values, [3, 7, 11, 15]);
});

test('an error at the first or the last call of a chunk surfaces at exactly its position', async () => {
  for (const bad of [10, 14, 0, 19]) {
    // chunksize 5: item 10 opens the third chunk, 14 closes it, 0 opens the first, 19 ends the input.
    const items = Array.from({ length: 20 }, (_, i) => (i === bad ? -1 : i));
    const { values, error } = await collect(pool.map(failIfNegative, items, { chunksize: 5 }));
    assert.equal(values, items.slice(0, bad), `bad item at ${bad}`);
    assert.instance(error, RangeError);
    assert.is((error as Error).message, 'bad item -1');
  }
});

test('a chunk that fails before the chunks ahead of it finish: their values come first, then the error', async () => {
  // Two slots: the first chunk sleeps 5 x 40 ms on one while the second fails at its second
  // call on the other, long before the first is done.
  const items = [40, 40, 40, 40, 40, 0, -1, 0, 0, 0, 0, 0];
  for (const read of ['values', 'chunks'] as const) {
    const started = performance.now();
    const results = pool.map(failFastOrSleep, items, { chunksize: 5 });
    const { values, error } = await collect<unknown>(read === 'values' ? results : results.chunks());
    assert.equal(values, read === 'values' ? [40, 40, 40, 40, 40, 0] : [[40, 40, 40, 40, 40], [0]], read);
    assert.instance(error, RangeError, read);
    assert.is((error as Error).message, 'bad item -1');
    // The error waited for the first chunk: it was not thrown as soon as it was known.
    assert.ok(performance.now() - started >= 150, `${read}: the error came after ${Math.round(performance.now() - started)} ms`);
  }
});

test('an array input is read a chunk at a time under buffersize, and items pushed while mapping are read too', async () => {
  const target = Array.from({ length: 100 }, (_, i) => i);
  let furthest = -1;
  // A Proxy is still an array (Array.isArray): it shows which indexes map has read.
  const items = new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) furthest = Math.max(furthest, Number(key));
      return Reflect.get(t, key, receiver);
    },
  });
  const seen: number[] = [];
  for await (const v of pool.map(echo, items, { chunksize: 10, buffersize: 2 })) {
    if (seen.length === 0) {
      // Two chunks in flight, and a third read once the first is in hand: at most 30 items.
      assert.ok(furthest < 30, `read up to index ${furthest} before the first result was used`);
      target.push(100, 101, 102);
    }
    seen.push(v);
  }
  assert.equal(seen, Array.from({ length: 103 }, (_, i) => i));
  // map() reads up to buffersize chunks at once, here the whole array; the array is still not
  // done: as with its own iterator, items pushed before the next read are read.
  const short = Array.from({ length: 20 }, (_, i) => i);
  const mapping = pool.map(echo, short, { chunksize: 10, buffersize: 2 });
  short.push(20, 21);
  const got: number[] = [];
  for await (const v of mapping) got.push(v);
  assert.equal(got, Array.from({ length: 22 }, (_, i) => i));
});

test('starmap with chunksize: an item that is not an array throws TypeError naming starmap, after the chunks before it', async () => {
  const pairs: unknown[] = Array.from({ length: 12 }, (_, i) => [i, 1]);
  pairs[7] = 5;
  const { values, error } = await collect(pool.starmap(add, pairs as [number, number][], { chunksize: 3 }));
  // Items 6..8 make the chunk that never formed; the two before it ran.
  assert.equal(values, [1, 2, 3, 4, 5, 6]);
  assert.instance(error, TypeError);
  assert.match((error as Error).message, /starmap: every item must be an array of arguments: got 5/);
});

test('chunks() hands out the values a chunk at a time, in input order, the last chunk shorter', async () => {
  const items = Array.from({ length: 23 }, (_, i) => i);
  const { values, error } = await collect(pool.map(echo, items, { chunksize: 5 }).chunks());
  assert.is(error, undefined);
  assert.equal(values, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19], [20, 21, 22]]);
  const pairs = Array.from({ length: 7 }, (_, i) => [i, 10] as [number, number]);
  assert.equal((await collect(pool.starmap(add, pairs, { chunksize: 3 }).chunks())).values, [[10, 11, 12], [13, 14, 15], [16]]);
  assert.equal((await collect(pool.map(echo, [], { chunksize: 3 }).chunks())).values, []);
});

test('chunks(): an error comes after the values before it, at the next step, and never as an empty chunk', async () => {
  for (const [bad, expected] of [[7, [[0, 1, 2, 3, 4], [5, 6]]], [10, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]], [0, []]] as const) {
    const items = Array.from({ length: 20 }, (_, i) => (i === bad ? -1 : i));
    const { values, error } = await collect(pool.map(failIfNegative, items, { chunksize: 5 }).chunks());
    assert.equal(values, expected, `bad item at ${bad}`);
    assert.instance(error, RangeError);
    assert.is((error as Error).message, 'bad item -1');
  }
});

test('chunks() goes on from the values already taken one by one, without repeating them', async () => {
  const results = pool.map(echo, Array.from({ length: 12 }, (_, i) => i), { chunksize: 5 });
  assert.equal(await results.next(), { value: 0, done: false });
  assert.equal(await results.next(), { value: 1, done: false });
  const chunks = results.chunks();
  assert.equal(await chunks.next(), { value: [2, 3, 4], done: false });
  // And back: one by one again from the next chunk.
  assert.equal(await results.next(), { value: 5, done: false });
  assert.equal((await collect(chunks)).values, [[6, 7, 8, 9], [10, 11]]);
  assert.equal(await results.next(), { value: undefined, done: true });
});

test('chunks() reads the input lazily under buffersize, and leaving early closes it', async () => {
  const stats = { pulled: 0, closed: false };
  function* endless() {
    try {
      for (let i = 0;; i++) {
        stats.pulled++;
        yield i;
      }
    } finally {
      stats.closed = true;
    }
  }
  const seen: number[][] = [];
  for await (const values of pool.map(echo, endless(), { chunksize: 4, buffersize: 2 }).chunks()) {
    seen.push(values);
    // Two chunks in flight at most, and a third read once one is in hand.
    assert.ok(stats.pulled <= (seen.length + 2) * 4, `read ${stats.pulled} items after ${seen.length} chunk(s)`);
    if (seen.length === 3) break;
  }
  assert.equal(seen, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
  await until(() => stats.closed, 2_000, 'the input was closed');
});

test('chunks() with progress counts every value of a chunk', async () => {
  const reports: { done: number; total?: number }[] = [];
  const { values } = await collect(pool.map(echo, Array.from({ length: 10 }, (_, i) => i), { chunksize: 4, progress: (p) => reports.push({ ...p }) }).chunks());
  assert.equal(values, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  assert.equal(reports[0], { done: 0, total: 10 });
  assert.equal(reports.at(-1), { done: 10, total: 10 });
  for (let i = 1; i < reports.length; i++) assert.ok(reports[i]!.done >= reports[i - 1]!.done, 'done never goes back');
});

test.run();
