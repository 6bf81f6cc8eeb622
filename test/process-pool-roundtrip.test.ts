/**
 * ProcessPoolExecutor on a real cluster (coordinator + one local worker-node process over
 * loopback WebSockets): arguments and results keep their types, functions travel only by
 * reference, and map/starmap keep order and surface errors where they happened.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcessPoolExecutor, SerializationError } from '../coordinator/index.ts';
import { add, doubleAll, echo, factorial, failIfNegative, fillReused, returnsFunction, sleepThenEcho } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { startPool, TASKS_URL } from './helpers/cluster.ts';

let pool: ProcessPoolExecutor;

test.before(async () => {
  pool = await startPool({ maxWorkers: 2 });
});

test.after(async () => {
  await pool?.shutdown({ cancelFutures: true });
});

test('numbers, strings, undefined and a 200+ bit bigint round-trip', async () => {
  assert.is(await pool.submit(add, 0.1, 0.2), 0.1 + 0.2);
  assert.is(await pool.submit(echo, -0), -0);
  assert.ok(Number.isNaN(await pool.submit(echo, NaN)));
  assert.is(await pool.submit(echo, 'héllo ✓ \u0000 end'), 'héllo ✓ \u0000 end');
  assert.is(await pool.submit(echo, undefined), undefined);
  assert.equal(await pool.submit(echo, [1, undefined, null]), [1, undefined, null]);
  const big = 2n ** 255n + 12345678901234567890n;
  assert.is(await pool.submit(echo, big), big);
  assert.is(await pool.submit(echo, -big), -big);
  const f60 = await pool.submit(factorial, 60);
  assert.is(typeof f60, 'bigint');
  assert.ok(f60.toString(2).length > 200, 'factorial(60) has more than 200 bits');
  assert.is(f60, factorial(60));
});

test('Date, Map, Set, RegExp, typed arrays and Uint8Array keep their types', async () => {
  const date = new Date('2024-02-29T12:34:56.789Z');
  const value = {
    date,
    map: new Map<unknown, unknown>([['a', 1], [2, 'b']]),
    set: new Set([1, 'two', 3n]),
    re: /ab+c/giu,
    bytes: Uint8Array.from([0, 1, 2, 255]),
    f64: Float64Array.from([1.5, -2.25, Infinity]),
    i32: Int32Array.from([-1, 2 ** 31 - 1]),
  };
  const back = (await pool.submit(echo, value)) as typeof value;
  assert.ok(back.date instanceof Date && back.date.getTime() === date.getTime(), 'Date');
  assert.ok(back.map instanceof Map && back.map.get('a') === 1 && back.map.get(2) === 'b', 'Map');
  assert.ok(back.set instanceof Set && back.set.has('two') && back.set.has(3n) && back.set.size === 3, 'Set');
  assert.ok(back.re instanceof RegExp && back.re.source === 'ab+c' && back.re.flags === 'giu', 'RegExp');
  assert.ok(back.bytes instanceof Uint8Array, 'Uint8Array');
  assert.equal([...back.bytes], [0, 1, 2, 255]);
  assert.ok(back.f64 instanceof Float64Array, 'Float64Array');
  assert.equal([...back.f64], [1.5, -2.25, Infinity]);
  assert.ok(back.i32 instanceof Int32Array, 'Int32Array');
  assert.equal([...back.i32], [-1, 2 ** 31 - 1]);
});

test('large and small Uint8Array arguments sent in one frame all arrive intact', async () => {
  // Submitted in one tick, these leave in one `run` frame; the large ones (>= 64 KiB) travel as
  // attachments after the envelope, the small ones inside it (shared/frames.ts).
  const sizes = [100_000, 10, 100_001, 65_536, 65_535, 100_003];
  const big = sizes.map((n, k) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + k) & 255));
  const back = await Promise.all(big.map((b) => pool.submit(echo, b)));
  for (const [k, b] of back.entries()) {
    assert.ok(b instanceof Uint8Array, `result ${k} is a Uint8Array`);
    assert.is(b.length, big[k]!.length);
    assert.ok(Buffer.from(b).equals(Buffer.from(big[k]!)), `result ${k} has the same bytes`);
  }
});

test('large typed arrays (sent beside the msgpack bytes) keep their types and values both ways', async () => {
  const n = 100_000;
  const arrays = [Float64Array.from({ length: n }, (_, i) => i / 4), Int32Array.from({ length: n }, (_, i) => -i), BigInt64Array.from({ length: n }, (_, i) => BigInt(i) - 5n)];
  const back = await pool.submit(doubleAll, arrays);
  assert.equal(back.map((a) => a.constructor.name), ['Float64Array', 'Int32Array', 'BigInt64Array']);
  assert.is(back[0]![n - 1], ((n - 1) / 4) * 2);
  assert.is(back[1]![n - 1], -(n - 1) * 2);
  assert.is(back[2]![0], -10n);
  assert.is(arrays[0]![1], 0.25, "the caller's arrays are not changed by the task");
  const buf = await pool.submit(echo, Buffer.alloc(200_000, 3));
  assert.ok(Buffer.isBuffer(buf) && buf.length === 200_000 && buf[199_999] === 3, 'a Buffer stays a Buffer');
});

test('map with chunksize carries large typed arrays in and out of chunks, in order', async () => {
  const inputs = [0, 1, 2, 3, 4].map((k) => Float64Array.from({ length: 20_000 }, (_, i) => i + k * 0.5));
  const out: Float64Array[] = [];
  for await (const v of pool.map(echo, inputs, { chunksize: 2 })) out.push(v);
  assert.equal(out.map((a) => a.constructor.name), ['Float64Array', 'Float64Array', 'Float64Array', 'Float64Array', 'Float64Array']);
  assert.equal(out.map((a) => a[19_999]), [19_999, 19_999.5, 20_000, 20_000.5, 20_001]);
});

test('a task that reuses the buffer it returned does not change results already returned', async () => {
  // Submitted at once, so the node's thread runs them back to back; each 8 MiB result is more
  // than the socket takes at once, so it is still being written when the next task starts.
  const values = [1, 2, 3, 4, 5, 6];
  const results = await Promise.all(values.map((v) => pool.submit(fillReused, v)));
  for (const [k, r] of results.entries()) {
    assert.is(r.byteLength, 8 * 1024 * 1024);
    assert.ok(r.every((b) => b === values[k]), `result ${k} is all ${values[k]}: found ${r[0]} … ${r[r.length - 1]}`);
  }
});

test('nested, shared and circular references survive', async () => {
  const shared = { n: 1 };
  const root: Record<string, unknown> = { a: shared, b: shared, deep: { list: [shared, { x: [1, [2, [3]]] }] } };
  root.self = root;
  const back = (await pool.submit(echo, root)) as typeof root;
  assert.ok(back.a === back.b, 'shared reference stays shared');
  assert.ok((back.deep as { list: unknown[] }).list[0] === back.a, 'shared across depths');
  assert.ok(back.self === back, 'circular reference');
  assert.equal((back.deep as { list: unknown[] }).list[1], { x: [1, [2, [3]]] });
});

test('sync and async task functions both work', async () => {
  assert.is(await pool.submit(add, 2, 3), 5);
  assert.equal(await pool.submit(sleepThenEcho, 10, { ok: [1] }), { ok: [1] });
});

test('submit of a closure or a non-exported function throws TypeError at once, saying how to fix it', () => {
  const local = (a: number) => a + 1;
  try {
    pool.submit(local, 1);
    assert.unreachable('submit should throw');
  } catch (err) {
    assert.instance(err, TypeError);
    assert.match((err as Error).message, /not exported by any task module/);
    assert.match((err as Error).message, /task module/);
  }
  assert.throws(() => pool.submit(function named() {}), (e: unknown) => e instanceof TypeError && /function named/.test((e as Error).message));
  assert.throws(() => pool.map((x: number) => x, [1]), TypeError);
});

test('a lambda submitted before the task modules are imported gets a future that fails with the same TypeError submit throws afterwards', async () => {
  const fresh = new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 0, log: false });
  try {
    const local = (a: number) => a + 1;
    // Imports are asynchronous: right after construction no function can be known not to be a task.
    const early = fresh.submit(local, 1);
    const earlyErr = (await rejects(early, TypeError)) as TypeError;
    assert.match(earlyErr.message, /not exported by any task module/);
    // Once imported (long before any node connects), it throws at once, with the same message.
    let thrown: unknown;
    try {
      fresh.submit(local, 1);
    } catch (err) {
      thrown = err;
    }
    assert.instance(thrown, TypeError);
    assert.is((thrown as Error).message, earlyErr.message);
  } finally {
    await fresh.shutdown({ cancelFutures: true });
  }
});

test('an unserializable argument rejects with SerializationError (WSF_SERIALIZATION)', async () => {
  const err = (await rejects(pool.submit(echo, () => 1), SerializationError)) as SerializationError;
  assert.is(err.code, 'WSF_SERIALIZATION');
  assert.match(err.message, /function/);
  const nested = (await rejects(pool.submit(echo, { deep: [Symbol('x')] }), SerializationError)) as SerializationError;
  assert.is(nested.code, 'WSF_SERIALIZATION');
  // The pool is unharmed.
  assert.is(await pool.submit(add, 1, 1), 2);
});

test('a task returning a function rejects clearly instead of resolving to undefined', async () => {
  const err = (await rejects(pool.submit(returnsFunction))) as Error & { code?: string };
  assert.is(err.name, 'SerializationError');
  assert.is(err.code, 'WSF_SERIALIZATION');
  assert.match(err.message, /returnsFunction/);
  assert.match(err.message, /function/);
});

test('map with chunksize keeps order', async () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const out: unknown[] = [];
  for await (const v of pool.map(echo, items, { chunksize: 7 })) out.push(v);
  assert.equal(out, items);
  const noChunk: unknown[] = [];
  for await (const v of pool.map(factorial, [5, 10, 3])) noChunk.push(v);
  assert.equal(noChunk, [120n, 3628800n, 6n]);
});

test('an error inside a chunk surfaces at exactly its position, after the earlier results', async () => {
  // Item 12 fails; with chunksize 5 it is the third call of the third chunk.
  const items = Array.from({ length: 20 }, (_, i) => (i === 12 ? -12 : i));
  const yielded: number[] = [];
  let error: unknown;
  try {
    for await (const v of pool.map(failIfNegative, items, { chunksize: 5 })) yielded.push(v);
  } catch (err) {
    error = err;
  }
  assert.equal(yielded, Array.from({ length: 12 }, (_, i) => i));
  assert.instance(error, RangeError);
  assert.is((error as Error).message, 'bad item -12');
});

test('starmap spreads each item as arguments, in order', async () => {
  const out: number[] = [];
  for await (const v of pool.starmap(add, [[1, 2], [3, 4], [5, 6]] as [number, number][])) out.push(v);
  assert.equal(out, [3, 7, 11]);
  const chunked: number[] = [];
  const pairs = Array.from({ length: 30 }, (_, i) => [i, i] as [number, number]);
  for await (const v of pool.starmap(add, pairs, { chunksize: 4 })) chunked.push(v);
  assert.equal(chunked, pairs.map(([a, b]) => a + b));
});

test.run();
