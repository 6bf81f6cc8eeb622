/**
 * Bad arguments fail at the call, with a TypeError (wrong kind of value) or a RangeError (a
 * number out of range) whose message names the option and the value. Messages are checked
 * exactly: they are what a user reads first.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor, Future, ProcessPoolExecutor, wait } from '../coordinator/index.ts';
import { rejects } from './helpers/assert.ts';

type ErrorClass = new (...args: never[]) => Error;

function throwsExactly(fn: () => unknown, Class: ErrorClass, message: string): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, Class, `expected a ${Class.name}, got ${String(err)}`);
    assert.is((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${Class.name}: ${message}`);
}

test('AsyncPoolExecutor({ maxWorkers }) must be a positive integer', () => {
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: -1 }), RangeError, 'maxWorkers must be a positive integer: got -1');
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: 0 }), RangeError, 'maxWorkers must be a positive integer: got 0');
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: 1.5 }), RangeError, 'maxWorkers must be a positive integer: got 1.5');
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: Number.NaN }), RangeError, 'maxWorkers must be a positive integer: got NaN');
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: Infinity }), RangeError, 'maxWorkers must be a positive integer: got Infinity');
  throwsExactly(() => new AsyncPoolExecutor({ maxWorkers: '4' as never }), TypeError, 'maxWorkers must be a positive integer: got "4"');
  throwsExactly(() => new AsyncPoolExecutor(null as never), TypeError, 'AsyncPoolExecutor(options): options must be an object: got null');
  assert.is(new AsyncPoolExecutor({ maxWorkers: 1 }).maxWorkers, 1);
});

test('submit / submitWith: fn must be a function, options an object, timeout >= 0, signal an AbortSignal', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  throwsExactly(() => pool.submit(42 as unknown as () => void), TypeError, 'AsyncPoolExecutor.submit: fn must be a function: got 42');
  throwsExactly(() => pool.submitWith({}, 'f' as unknown as () => void), TypeError, 'AsyncPoolExecutor.submitWith: fn must be a function: got "f"');
  throwsExactly(() => pool.submitWith(null as never, () => 1), TypeError, 'AsyncPoolExecutor.submitWith(options, fn, ...args): options must be an object: got null');
  throwsExactly(() => pool.submitWith({ timeout: -1 }, () => 1), RangeError, 'options.timeout must be a number of milliseconds >= 0 (or undefined for no limit): got -1');
  throwsExactly(() => pool.submitWith({ timeout: Number.NaN }, () => 1), RangeError, 'options.timeout must be a number of milliseconds >= 0 (or undefined for no limit): got NaN');
  throwsExactly(
    () => pool.submitWith({ timeout: '10' as never }, () => 1),
    TypeError,
    'options.timeout must be a number of milliseconds >= 0 (or undefined for no limit): got "10"',
  );
  throwsExactly(() => pool.submitWith({ signal: {} as never }, () => 1), TypeError, 'options.signal must be an AbortSignal: got {}');
  assert.is(pool.queuedCount + pool.runningCount, 0, 'nothing was submitted by a failed call');
});

test('map / starmap: chunksize and buffersize positive integers, timeout >= 0, an iterable, a function', async () => {
  await using pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  const id = (x: number) => x;
  throwsExactly(() => pool.map(id, [1], { buffersize: 0 }), RangeError, 'options.buffersize must be a positive integer: got 0');
  throwsExactly(() => pool.map(id, [1], { buffersize: -1 }), RangeError, 'options.buffersize must be a positive integer: got -1');
  throwsExactly(() => pool.map(id, [1], { buffersize: 2.5 }), RangeError, 'options.buffersize must be a positive integer: got 2.5');
  throwsExactly(() => pool.map(id, [1], { buffersize: 'foo' as never }), TypeError, 'options.buffersize must be a positive integer: got "foo"');
  throwsExactly(() => pool.map(id, [1], { chunksize: 0 }), RangeError, 'options.chunksize must be a positive integer: got 0');
  throwsExactly(() => pool.map(id, [1], { timeout: -5 }), RangeError, 'options.timeout must be a number of milliseconds >= 0 (or undefined for no limit): got -5');
  throwsExactly(() => pool.map(id, 5 as never), TypeError, 'AsyncPoolExecutor.map: iterable must be an Iterable or AsyncIterable: got 5');
  throwsExactly(() => pool.map(id, null as never), TypeError, 'AsyncPoolExecutor.map: iterable must be an Iterable or AsyncIterable: got null');
  throwsExactly(() => pool.map(null as never, [1]), TypeError, 'AsyncPoolExecutor.map: fn must be a function: got null');
  throwsExactly(() => pool.map(id, [1], null as never), TypeError, 'AsyncPoolExecutor.map: options must be an object: got null');
  throwsExactly(() => pool.starmap(id, [[1]], { buffersize: 0 }), RangeError, 'options.buffersize must be a positive integer: got 0');
});

test('ProcessPoolExecutor: maxMessageBytes at least 1024 (as --max-message-bytes), heartbeats at most 2^31-1 ms', () => {
  const tasks = new URL('./fixtures/tasks.ts', import.meta.url);
  throwsExactly(
    () => new ProcessPoolExecutor({ tasks, maxWorkers: 0, maxMessageBytes: 512 }),
    RangeError,
    'maxMessageBytes must be at least 1024 (protocol messages need that much): got 512',
  );
  throwsExactly(
    () => new ProcessPoolExecutor({ tasks, maxWorkers: 0, heartbeatIntervalMs: 2 ** 31 }),
    RangeError,
    'heartbeatIntervalMs must be at most 2147483647 (about 24.8 days): got 2147483648',
  );
  throwsExactly(
    () => new ProcessPoolExecutor({ tasks, maxWorkers: 0, heartbeatTimeoutMs: 1e12 }),
    RangeError,
    'heartbeatTimeoutMs must be at most 2147483647 (about 24.8 days): got 1000000000000',
  );
});

test('shutdown(options) must be an object', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  await rejects(
    () => pool.shutdown(null as never),
    (e: unknown) => e instanceof TypeError && (e as Error).message === 'AsyncPoolExecutor.shutdown(options): options must be an object: got null',
  );
  assert.is(pool.isShutdown, false, 'a rejected call changes nothing');
  await pool.shutdown();
});

test('wait: returnWhen one of the constants, timeout >= 0, futures only', async () => {
  const f = new Future<number>();
  f.setResult(1);
  await rejects(
    () => wait([f], { returnWhen: 'SOMETIMES' as never }),
    (e: unknown) => e instanceof RangeError && (e as Error).message === 'options.returnWhen must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED: got SOMETIMES',
  );
  await rejects(
    () => wait([f], { timeout: -1 }),
    (e: unknown) => e instanceof RangeError && (e as Error).message === 'options.timeout must be a number of milliseconds >= 0 (or undefined for no limit): got -1',
  );
  await rejects(
    () => wait([f, 'not a future' as never]),
    (e: unknown) => e instanceof TypeError && (e as Error).message === 'wait(futures): every item must be a Future: got string',
  );
});

test.run();
