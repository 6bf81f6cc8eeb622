/**
 * AsyncPoolExecutor: running sync and async functions in-process, at most maxWorkers at once,
 * and stopping running work (the task's AbortSignal, future.abort(), submitWith timeout/signal).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, CancelledError, currentTask, Future, type TaskContext, TimeoutError } from '../coordinator/index.ts';
import { rejects, sleep } from './helpers/assert.ts';
import { deferred, until } from './helpers/deferred.ts';

test('submit runs sync and async functions with their arguments, and closures', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  assert.is(await pool.submit(Math.pow, 2, 8), 256);
  assert.is(await pool.submit(async (a: string, b: string) => `${a}${b}`, 'x', 'y'), 'xy');
  const captured = { hits: 0 };
  await pool.submit(() => void captured.hits++);
  assert.is(captured.hits, 1);
});

test('submit returns before the task body runs, and a sync throw rejects the future, not the caller', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  let ran = false;
  const f = pool.submit(() => {
    ran = true;
    throw new TypeError('sync throw');
  });
  assert.is(ran, false);
  const err = await f.exception();
  assert.ok(err instanceof TypeError && err.message === 'sync throw');
  assert.is(ran, true);
});

test('a task is RUNNING while its body runs and FINISHED after', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  const f = pool.submit(() => gate.promise);
  await until(() => f.running());
  assert.is(f.state, 'RUNNING');
  assert.is(f.cancel(), false, 'a running task cannot be cancelled');
  gate.resolve();
  await f;
  assert.is(f.state, 'FINISHED');
});

test('maxWorkers bounds how many tasks run at once; the rest queue in order', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 3 });
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const fs = Array.from({ length: 12 }, (_, i) =>
    pool.submit(async () => {
      started.push(i);
      peak = Math.max(peak, ++running);
      await sleep(3);
      running--;
      return i;
    }));
  await until(() => pool.runningCount === 3);
  assert.is(pool.queuedCount, 9);
  assert.equal(await Promise.all(fs), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.is(peak, 3);
  assert.equal(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'FIFO');
  assert.is(pool.runningCount, 0);
});

test("the default maxWorkers is Python's min(32, cores + 4)", async () => {
  const { availableParallelism } = await import('node:os');
  const pool = new AsyncPoolExecutor();
  assert.is(pool.maxWorkers, Math.min(32, availableParallelism() + 4));
  await pool.shutdown();
});

test('a task reaches its context through currentTask(), also after an await', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  assert.is(currentTask(), undefined, 'no task outside the pool');
  const seen = await pool.submit(async () => {
    const before = currentTask();
    await sleep(1);
    const after = currentTask();
    return { same: before === after, signal: after?.signal instanceof AbortSignal, id: after?.taskId, attempt: after?.attempt };
  });
  assert.equal({ same: seen.same, signal: seen.signal, attempt: seen.attempt }, { same: true, signal: true, attempt: 1 });
  assert.type(seen.id, 'string');
  const other = await pool.submit(() => currentTask()!.taskId);
  assert.is.not(other, seen.id, 'task ids are unique');
});

test('a task declared with function gets its context as this', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const f = pool.submit(function (this: TaskContext, n: number) {
    return { n, aborted: this.signal.aborted, sameAsCurrent: this === currentTask() };
  }, 5);
  assert.equal(await f, { n: 5, aborted: false, sameAsCurrent: true });
});

test('future.abort() on a running task fires its signal (via currentTask and this) and settles CANCELLED at once', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const reasons: unknown[] = [];
  const stopped = deferred();
  const f = pool.submit(function (this: TaskContext) {
    const viaCurrent = currentTask()!.signal;
    return new Promise<string>((_, reject) => {
      this.signal.addEventListener('abort', () => {
        reasons.push(this.signal.reason, viaCurrent.aborted);
        stopped.resolve();
        reject(this.signal.reason);
      });
    });
  });
  await until(() => f.running());
  const why = new Error('user pressed stop');
  assert.is(f.abort(why), true);
  assert.is(f.state, 'CANCELLED');
  await stopped.promise;
  assert.is(reasons[0], why);
  assert.is(reasons[1], true);
  const err = await rejects(() => f.result(), CancelledError);
  assert.is((err as CancelledError).cause, why);
  assert.is(f.abort(), true, 'aborting again is harmless');
});

test('an aborted task keeps its slot until its function returns (maxWorkers bounds real work)', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const release = deferred();
  const stubborn = pool.submit(() => release.promise); // ignores its signal
  await until(() => stubborn.running());
  stubborn.abort();
  const next = pool.submit(() => 'next');
  await sleep(10);
  assert.is(next.state, 'PENDING');
  release.resolve();
  assert.is(await next, 'next');
});

test('abort() on a queued task cancels it, and it never runs', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const gate = deferred();
  const first = pool.submit(() => gate.promise);
  let ran = false;
  const queued = pool.submit(() => void (ran = true));
  assert.is(queued.abort(), true);
  gate.resolve();
  await first;
  await pool.shutdown();
  assert.is(ran, false);
  assert.is(queued.cancelled(), true);
});

test('submitWith({ timeout }) fails a running task with TimeoutError and fires its signal', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  let signalReason: unknown;
  const f = pool.submitWith({ timeout: 20 }, () => {
    const signal = currentTask()!.signal;
    return new Promise((_, reject) =>
      signal.addEventListener('abort', () => {
        signalReason = signal.reason;
        reject(signal.reason);
      })
    );
  });
  const err = await rejects(() => f.result(), TimeoutError);
  assert.is((err as TimeoutError).code, 'WSF_TIMEOUT');
  assert.is((err as Error).message, 'the task ran longer than its timeout of 20 ms and was stopped');
  assert.is(f.state, 'FINISHED', 'a timed-out task failed, it was not cancelled');
  await until(() => signalReason !== undefined);
  assert.is(signalReason, err);
});

test('submitWith({ timeout }) counts from the start of the task, not from the submit', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const blocker = pool.submit(() => sleep(60));
  const f = pool.submitWith({ timeout: 40 }, () => sleep(5).then(() => 'made it'));
  await blocker;
  assert.is(await f, 'made it');
});

test('submitWith({ signal }): aborting the signal aborts the task; an already aborted signal cancels it', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 2 });
  const controller = new AbortController();
  let taskSaw: unknown;
  const f = pool.submitWith({ signal: controller.signal }, () =>
    new Promise((resolve) => {
      const signal = currentTask()!.signal;
      signal.addEventListener('abort', () => resolve(taskSaw = signal.reason));
    }));
  await until(() => f.running());
  controller.abort('caller gave up');
  assert.is(f.cancelled(), true);
  await until(() => taskSaw !== undefined);
  assert.is(taskSaw, 'caller gave up');
  const err = await rejects(() => f.result(), CancelledError);
  assert.match((err as Error).message, 'caller gave up');

  let ran = false;
  const g = pool.submitWith({ signal: AbortSignal.abort('too late') }, () => void (ran = true));
  assert.is(g.cancelled(), true);
  await sleep(5);
  assert.is(ran, false);
});

test('a finished task ignores a later abort of its signal, and clears its timeout', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const controller = new AbortController();
  const f = pool.submitWith({ signal: controller.signal, timeout: 30 }, () => 1);
  assert.is(await f, 1);
  controller.abort();
  await sleep(50);
  assert.is(f.state, 'FINISHED');
  assert.is(await f, 1);
});

test('many tasks: every future settles, in a pool much smaller than the load', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 4 });
  const fs: Future<number>[] = [];
  for (let i = 0; i < 2_000; i++) fs.push(pool.submit(async (n: number) => n, i));
  const sum = (await Promise.all(fs)).reduce((a, b) => a + b, 0);
  assert.is(sum, (1999 * 2000) / 2);
});

test.run();
