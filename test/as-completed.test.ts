/**
 * asCompleted(futures, { timeout }): what CPython's test_as_completed.py checks, against our API.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { asCompleted, AsyncPoolExecutor, type CompletedFuture, Future, TimeoutError } from '../coordinator/index.ts';
import { rejects, sleep } from './helpers/assert.ts';
import { cancelled, failed, succeeded } from './helpers/futures.ts';

/** Drains an asCompleted iteration; returns what it yielded and what it threw, if anything. */
async function drain<T>(it: AsyncIterable<CompletedFuture<T>>): Promise<{ yielded: Future<T>[]; error: unknown }> {
  const yielded: Future<T>[] = [];
  try {
    // TypeScript types a for-await variable as Awaited<element>, and a Future is thenable, so it
    // claims `f` is a T; at run time it is the Future (asCompleted yields futures, not results).
    for await (const f of it) yielded.push(f as unknown as Future<T>);
  } catch (error) {
    return { yielded, error };
  }
  return { yielded, error: undefined };
}

test('yields futures (not results) in the order they finish', async () => {
  const a = new Future<string>();
  const b = new Future<string>();
  const c = new Future<string>();
  setTimeout(() => b.setResult('b'), 5);
  setTimeout(() => c.setException(new Error('c')), 25);
  setTimeout(() => a.setResult('a'), 50);
  const { yielded, error } = await drain(asCompleted([a, b, c]));
  assert.is(error, undefined);
  assert.equal(yielded, [b, c, a]);
  assert.ok(yielded.every((f) => f instanceof Future));
});

test('futures already done come first, before any that finish later', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const later = pool.submit(() => sleep(5).then(() => 'later'));
  const s = succeeded('s');
  const e = failed(new Error('e'));
  const c = cancelled();
  const order: Future<unknown>[] = [];
  for await (const f of asCompleted<unknown>([later, s, e, c])) order.push(f as Future<unknown>);
  assert.is(order.length, 4);
  assert.equal(new Set(order.slice(0, 3)), new Set<Future<unknown>>([s, e, c]));
  assert.is(order[3], later);
});

test('a future passed several times is yielded once', async () => {
  const f = new Future<number>();
  const g = succeeded(2);
  setTimeout(() => f.setResult(1), 5);
  const { yielded } = await drain(asCompleted([f, g, f, f, g]));
  assert.equal(yielded, [g, f]);
});

test('with a timeout, the finished futures are yielded, then TimeoutError (also with a zero timeout)', async () => {
  for (const timeout of [0, 30]) {
    const stuck = new Future<number>();
    const s = succeeded(1);
    const e = failed(new Error('x'));
    const c = cancelled();
    const started = Date.now();
    const { yielded, error } = await drain(asCompleted<unknown>([s, e, c, stuck], { timeout }));
    assert.equal(new Set(yielded), new Set<Future<unknown>>([s, e, c]), `timeout ${timeout}`);
    assert.instance(error, TimeoutError);
    assert.is((error as TimeoutError).code, 'WSF_TIMEOUT');
    assert.is((error as Error).message, `1 (of 4) futures unfinished after ${timeout} ms`);
    assert.ok(Date.now() - started >= timeout - 1, 'did not give up early');
    assert.is(stuck.done(), false, 'the timeout does not touch the future');
  }
});

test('the timeout counts from the call, not from the first next()', async () => {
  const stuck = new Future<number>();
  const it = asCompleted([stuck], { timeout: 20 });
  await sleep(40);
  const started = Date.now();
  await rejects(() => it.next(), TimeoutError);
  assert.ok(Date.now() - started < 1_000);
});

test('a future that finishes before the timeout is yielded, then the rest time out', async () => {
  const quick = new Future<number>();
  const stuck = new Future<number>();
  setTimeout(() => quick.setResult(1), 5);
  const { yielded, error } = await drain(asCompleted([stuck, quick], { timeout: 200 }));
  assert.equal(yielded, [quick]);
  assert.instance(error, TimeoutError);
  assert.is((error as Error).message, '1 (of 2) futures unfinished after 200 ms');
});

test('no timeout: waits as long as it takes, and an empty input ends at once', async () => {
  const f = new Future<number>();
  setTimeout(() => f.setResult(1), 30);
  assert.equal((await drain(asCompleted([f]))).yielded, [f]);
  assert.equal((await drain(asCompleted([]))).yielded, []);
});

test('breaking out of the loop ends the iteration; the futures go on', async () => {
  const a = succeeded(1);
  const b = new Future<number>();
  const it = asCompleted([a, b]);
  for await (const f of it) {
    assert.is(f, a);
    break;
  }
  assert.equal(await it.next(), { value: undefined, done: true });
  b.setResult(2);
  assert.is(await b, 2);
});

test('a bad argument throws at the call: a non-future item, a negative timeout', () => {
  assert.throws(
    () => asCompleted([1 as never]),
    (e: unknown) => e instanceof TypeError && (e as Error).message === 'asCompleted(futures): every item must be a Future: got number',
  );
  assert.throws(() => asCompleted([], { timeout: -5 }), (e: unknown) => e instanceof RangeError && /options\.timeout .*got -5/.test((e as Error).message));
});

test('two next() calls in flight at once both settle, in completion order', async () => {
  const a = new Future<string>();
  const b = new Future<string>();
  const it = asCompleted([a, b]);
  const both = Promise.all([it.next(), it.next()]);
  b.setResult('b');
  a.setResult('a');
  const [first, second] = await both;
  assert.is(await first.value!.result(), 'b');
  assert.is(await second.value!.result(), 'a');
  assert.is((await it.next()).done, true);
});

test.run();
