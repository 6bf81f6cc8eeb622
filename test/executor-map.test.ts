/**
 * Executor.map / starmap on the AsyncPoolExecutor: what CPython's executor.py and
 * test_thread_pool.py check for map (order, timeout, errors at their position, laziness with
 * buffersize), plus what we add: async iterables, early break, chunksize on a local pool.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, currentTask, ExecutorShutdownError, Future, TimeoutError } from '../coordinator/index.ts';
import { rejects, sleep } from './helpers/assert.ts';
import { until } from './helpers/deferred.ts';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** An endless sync generator that counts how many items were pulled and whether it was closed. */
function endless() {
  const stats = { pulled: 0, closed: false };
  function* gen() {
    try {
      for (let i = 0;; i++) {
        stats.pulled++;
        yield i;
      }
    } finally {
      stats.closed = true;
    }
  }
  return { stats, iterable: gen() };
}

/** The same, as an async generator that awaits between items. */
function endlessAsync() {
  const stats = { pulled: 0, closed: false };
  async function* gen() {
    try {
      for (let i = 0;; i++) {
        await sleep(0);
        stats.pulled++;
        yield i;
      }
    } finally {
      stats.closed = true;
    }
  }
  return { stats, iterable: gen() };
}

test('results come in input order, whatever order the calls finish in', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 5 });
  const delays = [40, 5, 30, 0, 15];
  const out = await collect(pool.map(async (ms: number) => {
    await sleep(ms);
    return ms * 2;
  }, delays));
  assert.equal(out, [80, 10, 60, 0, 30]);
});

test('map submits every call before the first result is asked for', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 3 });
  const ran: number[] = [];
  pool.map((n: number) => ran.push(n), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await pool.shutdown({ wait: true });
  assert.equal(ran.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('sync and async functions, sync and async iterables, an empty iterable', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  async function* letters() {
    yield 'a';
    await sleep(1);
    yield 'b';
  }
  assert.equal(await collect(pool.map((s: string) => s.toUpperCase(), letters())), ['A', 'B']);
  assert.equal(await collect(pool.map(async (n: number) => n + 1, new Set([1, 2, 3]))), [2, 3, 4]);
  assert.equal(await collect(pool.map((n: number) => n, [])), []);
});

test('an error is thrown at its position: the results before it are yielded first', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const divide = (d: number) => {
    if (d === 0) throw new RangeError('division by zero');
    return 12 / d;
  };
  const seen: number[] = [];
  const err = await rejects(async () => {
    for await (const v of pool.map(divide, [2, 3, 0, 4])) seen.push(v);
  }, RangeError);
  assert.equal(seen, [6, 4]);
  assert.is((err as Error).message, 'division by zero');
});

test('an error from the input iterable is thrown after the results of the items before it', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  function* broken() {
    yield 1;
    yield 2;
    throw new Error('input broke');
  }
  const seen: number[] = [];
  await rejects(async () => {
    for await (const v of pool.map((n: number) => n * 10, broken())) seen.push(v);
  }, (e: unknown) => (e as Error).message === 'input broke');
  assert.equal(seen, [10, 20]);
});

test('timeout: results ready in time are yielded, then TimeoutError; unstarted calls are cancelled', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 3 });
  const gate = new Future<void>();
  const ran: number[] = [];
  const seen: unknown[] = [];
  const task = async (n: number) => {
    ran.push(n);
    if (n === 2) await gate;
    return n;
  };
  const err = await rejects(async () => {
    for await (const v of pool.map(task, [0, 1, 2, 3, 4], { timeout: 50 })) seen.push(v);
  }, TimeoutError);
  assert.is((err as TimeoutError).code, 'WSF_TIMEOUT');
  assert.is((err as Error).message, 'AsyncPoolExecutor.map: results did not arrive within 50 ms');
  assert.equal(seen, [0, 1]);
  gate.setResult();
  await pool.shutdown();
  // 3 and 4 may have started in the free slots before the timeout; nothing new starts after.
  assert.ok(ran.length <= 5);
});

test('timeout: the call being waited on is cancelled too if it has not started', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = new Future<void>();
  const blocker = pool.submit(() => gate.result());
  const ran: number[] = [];
  await rejects(() => collect(pool.map((n: number) => ran.push(n), [1, 2, 3], { timeout: 20 })), TimeoutError);
  gate.setResult();
  await blocker;
  await pool.shutdown();
  assert.equal(ran, [], 'no mapped call ran after the map timed out');
});

test('breaking out early cancels the calls that have not started', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const ran: number[] = [];
  for await (
    const v of pool.map(async (n: number) => {
      ran.push(n);
      await sleep(5);
      return n;
    }, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  ) {
    assert.is(v, 0);
    break;
  }
  await pool.shutdown();
  assert.ok(ran.length <= 2, `only the first call (and at most the one already started) ran: ${ran}`);
});

test('buffersize: an endless sync generator is read lazily, and closed on break', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const { stats, iterable } = endless();
  const results = pool.map((n: number) => n * n, iterable, { buffersize: 3 });
  assert.is(stats.pulled, 3, 'at the call, exactly buffersize items are read and submitted');
  await sleep(10);
  assert.is(stats.pulled, 3, 'nothing more is read until a result is taken');
  const seen: number[] = [];
  for await (const v of results) {
    seen.push(v);
    assert.ok(stats.pulled <= seen.length + 3, `pulled ${stats.pulled} after ${seen.length} results`);
    if (seen.length === 10) break;
  }
  assert.equal(seen, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
  assert.ok(stats.pulled <= 13);
  await until(() => stats.closed, 1_000, 'the generator was closed');
});

test('buffersize: an endless async generator is read lazily, and closed on break', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const { stats, iterable } = endlessAsync();
  const results = pool.map(async (n: number) => `#${n}`, iterable, { buffersize: 2 });
  // Each pull waits a timer turn: on a loaded machine two can take longer than a fixed sleep
  // (CI once saw 1 after 20 ms). Wait for them, then check that no third one follows.
  await until(() => stats.pulled >= 2, 2_000, 'buffersize items read');
  await sleep(20);
  assert.is(stats.pulled, 2, 'only buffersize items read before a result is taken');
  const seen: string[] = [];
  for await (const v of results) {
    seen.push(v);
    assert.ok(stats.pulled <= seen.length + 2, `pulled ${stats.pulled} after ${seen.length} results`);
    if (seen.length === 5) break;
  }
  assert.equal(seen, ['#0', '#1', '#2', '#3', '#4']);
  await until(() => stats.closed, 1_000, 'the async generator was closed');
  assert.ok(stats.pulled <= 8);
});

test('buffersize bounds the calls in flight, not just the items read', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 10 });
  let running = 0;
  let peak = 0;
  const out = await collect(pool.map(
    async (n: number) => {
      peak = Math.max(peak, ++running);
      await sleep(2);
      running--;
      return n;
    },
    Array.from({ length: 20 }, (_, i) => i),
    { buffersize: 3 },
  ));
  assert.equal(out, Array.from({ length: 20 }, (_, i) => i));
  assert.ok(peak <= 3, `peak ${peak}`);
});

test('buffersize larger than the input, and on an empty input', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  assert.equal(await collect(pool.map((n: number) => n, [1, 2], { buffersize: 10 })), [1, 2]);
  assert.equal(await collect(pool.map((n: number) => n, [], { buffersize: 1 })), []);
});

test('buffersize with a timeout still times out', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const gate = new Future<void>();
  const { iterable } = endless();
  await rejects(() => collect(pool.map((n: number) => (n === 1 ? gate.result() : n), iterable, { buffersize: 2, timeout: 30 })), TimeoutError);
  gate.setResult();
});

test('starmap spreads each item over the arguments, in order', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 3 });
  const pow = async (base: number, exp: number) => {
    await sleep(exp);
    return base ** exp;
  };
  const inputs: [number, number][] = [[2, 5], [3, 2], [10, 0]];
  assert.equal(await collect(pool.starmap(pow, inputs)), [32, 9, 1]);
  async function* pairs(): AsyncGenerator<[string, number]> {
    yield ['a', 3];
    yield ['b', 1];
  }
  assert.equal(await collect(pool.starmap((s: string, n: number) => s.repeat(n), pairs(), { buffersize: 1 })), ['aaa', 'b']);
  await rejects(
    () => collect(pool.starmap((a: number) => a, [5 as never])),
    (e: unknown) => e instanceof TypeError && /every item must be an array of arguments: got 5/.test((e as Error).message),
  );
});

test('chunksize is accepted and ignored on the local pool: every call is its own task', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const ids = new Set<string>();
  const out = await collect(pool.map(
    (n: number) => {
      ids.add(currentTask()!.taskId);
      return n + 1;
    },
    [0, 1, 2, 3, 4, 5, 6],
    { chunksize: 3 },
  ));
  assert.equal(out, [1, 2, 3, 4, 5, 6, 7]);
  assert.is(ids.size, 7);
});

test('chunksize does not widen buffersize on the local pool', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const { stats, iterable } = endless();
  const results = pool.map((n: number) => n, iterable, { buffersize: 2, chunksize: 5 });
  assert.is(stats.pulled, 2);
  await results.return();
});

test('chunks() on the local pool: one-element arrays in order, and the map timeout still applies', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  assert.equal(await collect(pool.map((n: number) => n * 2, [1, 2, 3], { chunksize: 2 }).chunks()), [[2], [4], [6]]);
  const seen: number[][] = [];
  const slow = (ms: number) => sleep(ms).then(() => ms);
  const err = await rejects(async () => {
    for await (const values of pool.map(slow, [0, 1, 1_500], { timeout: 500 }).chunks()) seen.push(values);
  }, TimeoutError);
  assert.equal(seen, [[0], [1]]);
  assert.is((err as Error).message, 'AsyncPoolExecutor.map: results did not arrive within 500 ms');
});

test('reading many results already in hand lets the event loop turn along the way', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const count = 50_000;
  let ran = 0;
  const results = pool.map((n: number) => {
    ran++;
    return n;
  }, Array.from({ length: count }, (_, i) => i));
  await until(() => ran === count, 10_000, 'every call ran');
  await sleep(10);
  // Every value is in hand: handing them out takes only microtasks, unless the reader lets the
  // loop turn (immediates run only when it does).
  let turns = 0;
  let ticking = true;
  const tick = () => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  let n = 0;
  for await (const v of results) if (v === n) n++;
  ticking = false;
  assert.is(n, count, 'every value, in order');
  assert.ok(turns > 0, 'the event loop turned while the values were handed out');
});

test('map after shutdown throws ExecutorShutdownError at the call', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  await pool.shutdown();
  assert.throws(() => pool.map((n: number) => n, [1]), (e: unknown) => e instanceof ExecutorShutdownError && (e as ExecutorShutdownError).code === 'WSF_SHUTDOWN');
});

test.run();
