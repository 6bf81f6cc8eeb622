/**
 * shutdown({ wait, cancelFutures }) and `await using`: what CPython's test_shutdown.py checks,
 * against the AsyncPoolExecutor.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, BrokenExecutorError, CancelledError, ExecutorShutdownError, Future } from '../coordinator/index.ts';
import { rejects, sleep } from './helpers/assert.ts';
import { deferred, until } from './helpers/deferred.ts';

test('submit() after shutdown() throws ExecutorShutdownError (code WSF_SHUTDOWN) at once', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  assert.is(pool.isShutdown, false);
  await pool.shutdown();
  assert.is(pool.isShutdown, true);
  for (const attempt of [() => pool.submit(() => 1), () => pool.submitWith({}, () => 1), () => pool.starmap((a: number) => a, [[1]])]) {
    assert.throws(attempt, (e: unknown) =>
      e instanceof ExecutorShutdownError &&
      e instanceof BrokenExecutorError &&
      e.code === 'WSF_SHUTDOWN' &&
      e.message === 'cannot submit new tasks after AsyncPoolExecutor.shutdown(): create a new executor');
  }
});

test('submit() is refused as soon as shutdown() is called, before it resolves', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  pool.submit(() => gate.promise);
  const closing = pool.shutdown();
  assert.throws(() => pool.submit(() => 1), (e: unknown) => e instanceof ExecutorShutdownError);
  gate.resolve();
  await closing;
});

test('shutdown() waits for running and queued tasks, which all run to the end', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const finished: number[] = [];
  const fs = Array.from({ length: 8 }, (_, i) =>
    pool.submit(async () => {
      await sleep(2);
      finished.push(i);
      return i;
    }));
  await pool.shutdown();
  assert.is(finished.length, 8);
  assert.ok(fs.every((f) => f.state === 'FINISHED'));
  assert.equal(await Promise.all(fs), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('shutdown({ cancelFutures: true }) cancels the queued tasks; the running ones finish normally', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const fs = Array.from({ length: 50 }, () => pool.submit(() => sleep(10)));
  await until(() => pool.runningCount === 2);
  await pool.shutdown({ cancelFutures: true });
  const cancelled = fs.filter((f) => f.cancelled());
  const others = fs.filter((f) => !f.cancelled());
  assert.is(cancelled.length, 48);
  assert.is(others.length, 2);
  for (const f of others) assert.is(await f.exception(), undefined);
  const err = await rejects(() => cancelled[0]!.result(), CancelledError);
  assert.is((err as Error).message, 'cancelled by AsyncPoolExecutor.shutdown({ cancelFutures: true })');
});

test('shutdown({ wait: false }) returns at once; the tasks still run and their results arrive', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  const fs = [pool.submit(() => gate.promise.then(() => 2 ** 5)), pool.submit(() => 3 ** 2)];
  await pool.shutdown({ wait: false });
  assert.is(fs[0]!.done(), false);
  assert.is(fs[1]!.state, 'PENDING', 'queued work is not cancelled without cancelFutures');
  gate.resolve();
  assert.equal(await Promise.all(fs), [32, 9]);
});

test('shutdown({ wait: false, cancelFutures: true }) cancels what is queued without waiting for what runs', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  const running = pool.submit(() => gate.promise.then(() => 'ran'));
  const queued = pool.submit(() => 'never');
  await until(() => running.running());
  await pool.shutdown({ wait: false, cancelFutures: true });
  assert.is(running.running(), true);
  assert.is(queued.cancelled(), true);
  gate.resolve();
  assert.is(await running, 'ran');
});

test('shutdown() may be called again: later calls wait for the same end', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  const f = pool.submit(() => gate.promise);
  const first = pool.shutdown({ wait: false });
  let secondDone = false;
  const second = pool.shutdown().then(() => (secondDone = true));
  await first;
  await sleep(10);
  assert.is(secondDone, false, 'a waiting shutdown waits even if an earlier one did not');
  gate.resolve();
  await second;
  assert.is(f.done(), true);
  await pool.shutdown();
});

test('shutdown() also waits for an aborted task whose function has not returned yet', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const release = deferred();
  let returned = false;
  const f = pool.submit(() => release.promise.then(() => (returned = true)));
  await until(() => f.running());
  f.abort();
  let closed = false;
  const closing = pool.shutdown().then(() => (closed = true));
  await sleep(20);
  assert.is(closed, false);
  release.resolve();
  await closing;
  assert.is(returned, true);
});

test('await using shuts the pool down, waiting for its tasks, at the end of the block', async () => {
  let pool!: AsyncPoolExecutor;
  let f!: Future<string>;
  {
    await using p = new AsyncPoolExecutor({ maxWorkers: 1 });
    pool = p;
    f = p.submit(() => sleep(10).then(() => 'done'));
    assert.is(p.isShutdown, false);
  }
  assert.is(pool.isShutdown, true);
  assert.is(f.state, 'FINISHED');
  assert.is(await f, 'done');
});

test('await using also shuts down when the block throws', async () => {
  let pool!: AsyncPoolExecutor;
  await rejects(async () => {
    await using p = new AsyncPoolExecutor({ maxWorkers: 1 });
    pool = p;
    throw new Error('inside the block');
  }, (e: unknown) => (e as Error).message === 'inside the block');
  assert.is(pool.isShutdown, true);
});

test('a task that submits more work after shutdown gets ExecutorShutdownError in its own future', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const gate = deferred();
  const parent = pool.submit(async () => {
    await gate.promise;
    return pool.submit(() => 'child');
  });
  const closing = pool.shutdown();
  gate.resolve();
  await rejects(() => parent.result(), ExecutorShutdownError);
  await closing;
});

test.run();
