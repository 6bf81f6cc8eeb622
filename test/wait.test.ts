/**
 * wait(futures, { timeout, returnWhen }): what CPython's test_wait.py checks, against our API.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ALL_COMPLETED, AsyncPoolExecutor, FIRST_COMPLETED, FIRST_EXCEPTION, Future, wait } from '../coordinator/index.ts';
import { sleep } from './helpers/assert.ts';
import { cancelled, failed, succeeded } from './helpers/futures.ts';

const setOf = <T>(...xs: T[]) => new Set(xs);

test('the constants are the strings Python uses', () => {
  assert.is(FIRST_COMPLETED, 'FIRST_COMPLETED');
  assert.is(FIRST_EXCEPTION, 'FIRST_EXCEPTION');
  assert.is(ALL_COMPLETED, 'ALL_COMPLETED');
});

test('FIRST_COMPLETED returns when the first pending future finishes', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const slow = pool.submit(() => sleep(300).then(() => 'slow'));
  const fast = pool.submit(() => sleep(5).then(() => 'fast'));
  const { done, notDone } = await wait([slow, fast], { returnWhen: FIRST_COMPLETED });
  assert.equal(done, setOf(fast));
  assert.equal(notDone, setOf(slow));
});

test('FIRST_COMPLETED with some futures already done returns at once with all of those', async () => {
  const never = new Future<number>();
  const c = cancelled();
  const s = succeeded(1);
  const { done, notDone } = await wait<unknown>([c, s, never], { returnWhen: FIRST_COMPLETED });
  assert.equal(done, setOf<Future<unknown>>(c, s));
  assert.equal(notDone, setOf<Future<unknown>>(never));
});

test('FIRST_EXCEPTION returns when a future fails, with those finished before it', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const first = pool.submit(() => sleep(5).then(() => 1));
  const boom = pool.submit(async () => {
    await first;
    await sleep(5);
    throw new Error('boom');
  });
  const gate = new Future<void>();
  const last = pool.submit(() => gate.result());
  const { done, notDone } = await wait<unknown>([first, boom, last], { returnWhen: FIRST_EXCEPTION });
  assert.equal(done, setOf<Future<unknown>>(first, boom));
  assert.equal(notDone, setOf<Future<unknown>>(last));
  gate.setResult();
});

test('FIRST_EXCEPTION with a failure already present returns at once; cancelled ones are done but not failures', async () => {
  const never = new Future<number>();
  const s = succeeded(1);
  const e = failed(new Error('x'));
  const c = cancelled();
  const { done, notDone } = await wait<unknown>([s, e, c, never], { returnWhen: FIRST_EXCEPTION });
  assert.equal(done, setOf<Future<unknown>>(s, e, c));
  assert.equal(notDone, setOf<Future<unknown>>(never));
});

test('FIRST_EXCEPTION with no failure at all waits for every future (a cancel is not an exception)', async () => {
  const a = new Future<number>();
  const b = new Future<number>();
  setTimeout(() => a.cancel(), 5);
  setTimeout(() => b.setResult(2), 20);
  const { done, notDone } = await wait([a, b], { returnWhen: FIRST_EXCEPTION });
  assert.equal(done, setOf(a, b));
  assert.is(notDone.size, 0);
});

test('ALL_COMPLETED (the default) waits for successes, failures and cancellations alike', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const fs: Future<unknown>[] = [
    succeeded(0),
    failed(new Error('already')),
    cancelled(),
    pool.submit(() => sleep(10).then(() => 1)),
    pool.submit(async () => {
      await sleep(5);
      throw new Error('later');
    }),
  ];
  const { done, notDone } = await wait(fs);
  assert.equal(done, new Set(fs));
  assert.is(notDone.size, 0);
  const explicit = await wait(fs, { returnWhen: ALL_COMPLETED });
  assert.equal(explicit.done, new Set(fs));
});

test('a timeout is not an error: wait resolves with what finished and what did not', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const gate = new Future<void>();
  const quick = pool.submit(() => 'quick');
  const stuck = pool.submit(() => gate.result());
  const s = succeeded('s');
  for (const timeout of [0, 30]) {
    const { done, notDone } = await wait<unknown>([s, quick, stuck], { timeout });
    assert.equal(done, setOf<Future<unknown>>(s, quick), `timeout ${timeout}`);
    assert.equal(notDone, setOf<Future<unknown>>(stuck));
    assert.is(stuck.done(), false, 'the timed-out future goes on');
  }
  gate.setResult();
  assert.is(await stuck, undefined);
});

test('a future passed twice is counted once', async () => {
  const f = succeeded(1);
  const { done, notDone } = await wait([f, f, f]);
  assert.is(done.size, 1);
  assert.is(notDone.size, 0);
});

test('an empty list resolves at once for every returnWhen', async () => {
  for (const returnWhen of [FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED] as const) {
    const { done, notDone } = await wait([], { returnWhen, timeout: 1_000 });
    assert.is(done.size + notDone.size, 0);
  }
});

test('futures from any source mix: pool futures and hand-made ones', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const manual = new Future<number>();
  const pooled = pool.submit(() => 2);
  setTimeout(() => manual.setResult(1), 5);
  const { done } = await wait([manual, pooled]);
  assert.equal(done, setOf(manual, pooled));
});

test('wait over 100,000 futures that finish one by one returns once they are all done', async () => {
  const futures = Array.from({ length: 100_000 }, () => new Future<number>());
  const waiting = wait(futures);
  futures.forEach((f, i) => f.setResult(i));
  // Each completion is checked on its own: a full scan per completion would take ~10^10 steps.
  const { done, notDone } = await waiting;
  assert.is(done.size, 100_000);
  assert.is(notDone.size, 0);
});

test.run();
