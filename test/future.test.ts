/**
 * Future<T> on its own, driven by hand the way an executor drives it: states, the tag that
 * stands in for Python's repr, cancel(), result()/exception() with timeouts, done callbacks.
 * Mirrors what CPython's test_future.py checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelledError, Future, type FutureState, InvalidStateError, setCallbackErrorReporter, TimeoutError } from '../coordinator/index.ts';
import { rejects, sleep } from './helpers/assert.ts';
import { cancelled, failed, succeeded } from './helpers/futures.ts';

function pending<T = number>(): Future<T> {
  return new Future<T>();
}
function running<T = number>(): Future<T> {
  const f = new Future<T>();
  f.setRunningOrNotifyCancel();
  return f;
}
const tag = (f: Future<unknown>): string => Object.prototype.toString.call(f);

/** Collects what the done-callback reporter receives, restoring the old reporter afterwards. */
async function withReporter(body: (reported: unknown[]) => Promise<void> | void): Promise<void> {
  const reported: unknown[] = [];
  const prev = setCallbackErrorReporter((err) => reported.push(err));
  try {
    await body(reported);
  } finally {
    setCallbackErrorReporter(prev);
  }
}

test('states and predicates: pending, running, cancelled, finished with a result or an error', () => {
  const table: [Future<unknown>, FutureState, { done: boolean; running: boolean; cancelled: boolean }][] = [
    [pending(), 'PENDING', { done: false, running: false, cancelled: false }],
    [running(), 'RUNNING', { done: false, running: true, cancelled: false }],
    [cancelled(), 'CANCELLED', { done: true, running: false, cancelled: true }],
    [succeeded(42), 'FINISHED', { done: true, running: false, cancelled: false }],
    [failed(new Error('boom')), 'FINISHED', { done: true, running: false, cancelled: false }],
  ];
  for (const [f, state, expected] of table) {
    assert.is(f.state, state);
    assert.equal({ done: f.done(), running: f.running(), cancelled: f.cancelled() }, expected, state);
  }
});

test('the string tag names the state, and for a finished future what it returned or raised (like Python repr)', () => {
  assert.is(tag(pending()), '[object Future PENDING]');
  assert.is(tag(running()), '[object Future RUNNING]');
  assert.is(tag(cancelled()), '[object Future CANCELLED]');
  assert.is(tag(succeeded(42)), '[object Future FINISHED returned number]');
  assert.is(tag(succeeded(null)), '[object Future FINISHED returned null]');
  assert.is(tag(failed(new TypeError('x'))), '[object Future FINISHED raised TypeError]');
  assert.is(tag(failed('just text')), '[object Future FINISHED raised string]');
});

test('cancel() succeeds only while pending (and again once cancelled); abort() also stops a running one', () => {
  const p = pending();
  assert.is(p.cancel(), true);
  assert.is(p.state, 'CANCELLED');
  assert.is(p.cancel(), true, 'cancelling a cancelled future still reports true');

  const r = running();
  assert.is(r.cancel(), false);
  assert.is(r.state, 'RUNNING');

  const s = succeeded(1);
  assert.is(s.cancel(), false);
  assert.is(s.state, 'FINISHED');

  const e = failed(new Error('x'));
  assert.is(e.cancel(), false);
  assert.is(e.state, 'FINISHED');

  const hooked = running();
  let hookReason: unknown;
  hooked.setAbortHook((reason) => (hookReason = reason));
  assert.is(hooked.abort(), true);
  assert.is(hooked.state, 'CANCELLED');
  assert.instance(hookReason, CancelledError);
  assert.is(succeeded(1).abort(), false, 'a finished future cannot be aborted');
});

test('setRunningOrNotifyCancel: false for a cancelled future, InvalidStateError if running or finished', () => {
  assert.is(cancelled().setRunningOrNotifyCancel(), false);
  const f = pending();
  assert.is(f.setRunningOrNotifyCancel(), true);
  assert.throws(() => f.setRunningOrNotifyCancel(), (e: unknown) => e instanceof InvalidStateError);
  assert.throws(() => succeeded(1).setRunningOrNotifyCancel(), (e: unknown) => e instanceof InvalidStateError);
});

test('a result or an exception can be set only once (InvalidStateError, code WSF_INVALID_STATE)', () => {
  const f = succeeded(1);
  assert.throws(() => f.setResult(2), (e: unknown) => e instanceof InvalidStateError && e.code === 'WSF_INVALID_STATE');
  assert.throws(() => f.setException(new Error('late')), (e: unknown) => e instanceof InvalidStateError);
  const g = failed(new Error('first'));
  assert.throws(() => g.setException(new Error('second')), (e: unknown) => e instanceof InvalidStateError);
  const c = cancelled<number>();
  assert.throws(() => c.setResult(1), (e: unknown) => e instanceof InvalidStateError);
});

test('result(): the value, the task error, CancelledError; exception(): the error or undefined', async () => {
  assert.is(await succeeded(42).result(), 42);
  assert.is(await succeeded(42).exception(), undefined);

  const boom = new Error('boom');
  assert.is(await rejects(() => failed(boom).result()), boom);
  assert.is(await failed(boom).exception(), boom);

  await rejects(() => cancelled().result(), (e: unknown) => e instanceof CancelledError && e.code === 'WSF_CANCELLED');
  await rejects(() => cancelled().exception(), CancelledError);
});

test('result(timeoutMs)/exception(timeoutMs) time out with TimeoutError (WSF_TIMEOUT) and leave the future alone', async () => {
  for (const f of [pending(), running()]) {
    await rejects(() => f.result(5), (e: unknown) => e instanceof TimeoutError && e.code === 'WSF_TIMEOUT');
    await rejects(() => f.exception(0), TimeoutError);
    assert.is(f.done(), false);
  }
  // A done future answers at once even with a zero timeout.
  assert.is(await succeeded(7).result(0), 7);
  assert.is(await failed(new RangeError('r')).exception(0) instanceof RangeError, true);
});

test('result(timeoutMs) sees a result, an exception or a cancellation that arrives in time', async () => {
  const ok = pending();
  setTimeout(() => ok.setResult(5), 5);
  assert.is(await ok.result(5_000), 5);

  const bad = pending();
  const err = new Error('later');
  setTimeout(() => bad.setException(err), 5);
  assert.is(await bad.exception(5_000), err);

  const c = pending();
  setTimeout(() => c.cancel(), 5);
  await rejects(() => c.result(5_000), CancelledError);
});

test('a Future is awaitable, and a failed one that nobody awaits is not an unhandled rejection', async () => {
  assert.is(await succeeded('hi'), 'hi');
  const f = pending<string>();
  setTimeout(() => f.setResult('later'), 1);
  assert.is(await f, 'later');
  await rejects(async () => await failed(new Error('awaited')), (e: unknown) => (e as Error).message === 'awaited');
  assert.is(await failed(new Error('caught')).catch((e: unknown) => (e as Error).message), 'caught');

  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  failed(new Error('nobody looks'));
  const c = pending();
  c.cancel();
  await sleep(20);
  process.off('unhandledRejection', onUnhandled);
  assert.is(unhandled, 0);
});

test('done callbacks run once, in the order added, with the future, for a result, an error or a cancel', () => {
  for (const settle of [(f: Future<number>) => f.setResult(1), (f: Future<number>) => f.setException(new Error('x')), (f: Future<number>) => f.cancel()]) {
    const f = pending();
    const calls: string[] = [];
    f.addDoneCallback((g) => calls.push(`a:${g === f}:${g.done()}`));
    f.addDoneCallback(() => calls.push('b'));
    f.addDoneCallback(() => calls.push('c'));
    assert.equal(calls, []);
    settle(f);
    assert.equal(calls, ['a:true:true', 'b', 'c']);
    f.cancel();
    assert.equal(calls.length, 3, 'not called again');
  }
});

test('a callback added to a done future is called at once (succeeded, failed, cancelled)', () => {
  for (const f of [succeeded(1), failed(new Error('x')), cancelled()]) {
    let seen: Future<number> | undefined;
    f.addDoneCallback((g) => (seen = g));
    assert.is(seen, f);
  }
});

test('a throwing done callback is reported, and the future and the other callbacks are unaffected', async () => {
  await withReporter(async (reported) => {
    const f = pending();
    const calls: string[] = [];
    const oops = new Error('callback broke');
    f.addDoneCallback(() => calls.push('first'));
    f.addDoneCallback(() => {
      throw oops;
    });
    f.addDoneCallback(() => calls.push('third'));
    f.setResult(9);
    assert.equal(calls, ['first', 'third']);
    assert.equal(reported, [oops]);
    assert.is(await f.result(), 9);

    // Also when the future is already done and the callback runs at once.
    const late = new Error('late callback broke');
    f.addDoneCallback(() => {
      throw late;
    });
    assert.equal(reported, [oops, late]);
  });
});

test('addDoneCallback(non-function) throws a TypeError that says what it got', () => {
  assert.throws(
    () => pending().addDoneCallback(42 as never),
    (e: unknown) => e instanceof TypeError && e.message === 'addDoneCallback(cb): cb must be a function: got number',
  );
});

test('a bad timeout is a RangeError naming the value', async () => {
  await rejects(() => pending().result(-1), (e: unknown) => e instanceof RangeError && /timeoutMs must be a number of milliseconds >= 0.*got -1/.test((e as Error).message));
  await rejects(() => pending().result(Number.NaN), RangeError);
});

test.run();
