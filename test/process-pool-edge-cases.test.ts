/**
 * Edge cases where cancellation, timeouts, retries and draining meet — each one once made a
 * future hang, a thread die for nothing, or the coordinator crash.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SerializationError, TimeoutError } from '../coordinator/index.ts';
import { add, echo, failWithLongMessage, makeBytes, sleepThenEcho, waitForAbort } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { spawnWorker, startPool, waitFor, within } from './helpers/cluster.ts';

test('a task whose timeout runs out while it waits to be retried fails with TimeoutError, and the pool goes on', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const first = spawnWorker({ url: pool.url!, token: pool.token });
  let second: ReturnType<typeof spawnWorker> | undefined;
  try {
    await within(pool.ready(1), 30_000, 'the first node');
    const f = pool.submitWith({ timeout: 1500 }, sleepThenEcho, 60_000, 'never');
    await waitFor(() => f.running(), 10_000, 'the task running');
    await first.kill(); // lost: the task goes back to the queue, with no node to run it
    await within(rejects(f, TimeoutError), 10_000, 'the timeout while queued');
    // A node joins; the pool must skip the settled task, not crash on it.
    second = spawnWorker({ url: pool.url!, token: pool.token });
    await within(pool.ready(1), 30_000, 'the second node');
    assert.is(await within(pool.submit(add, 2, 3), 10_000, 'a task after'), 5);
  } finally {
    await first.kill();
    await second?.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('aborting many tasks that wait inside a node ends no thread: they are dropped, and the node keeps working', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const node = spawnWorker({ url: pool.url!, token: pool.token, concurrency: 2 });
  try {
    await within(pool.ready(2), 30_000, 'the node');
    // Tiny tasks first, so the node holds many jobs per thread.
    await within(Promise.all(Array.from({ length: 500 }, (_, i) => pool.submit(add, i, 1))), 30_000, 'warm-up');
    const controller = new AbortController();
    const futures = Array.from({ length: 400 }, (_, i) => pool.submitWith({ signal: controller.signal }, sleepThenEcho, 5, i));
    await new Promise((r) => setTimeout(r, 30));
    controller.abort();
    await within(Promise.allSettled(futures), 10_000, 'the aborted futures');
    await new Promise((r) => setTimeout(r, 2500)); // past the 1 s abort grace, twice
    assert.not.match(node.output, /ending its thread/, 'no thread was terminated');
    assert.is(await within(pool.submit(add, 40, 2), 10_000, 'a task after'), 42);
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a draining node whose last task is aborted exits instead of waiting forever', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const node = spawnWorker({ url: pool.url!, token: pool.token });
  try {
    await within(pool.ready(1), 30_000, 'the node');
    const f = pool.submit(waitForAbort, 60_000);
    await waitFor(() => f.running(), 10_000, 'the task running');
    await new Promise((r) => setTimeout(r, 300));
    node.signal('SIGTERM'); // drain: it waits for its task…
    await waitFor(() => /draining/.test(node.output), 10_000, 'the node draining');
    f.abort(); // …which will never report now
    assert.is(await within(node.exited, 15_000, 'the node to exit'), 0);
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test("arguments larger than a node's --max-message-bytes fail with SerializationError; the node stays connected", async () => {
  const pool = await startPool({ maxWorkers: 0, maxMessageBytes: 8 * 1024 * 1024 });
  const node = spawnWorker({ url: pool.url!, token: pool.token, args: ['--max-message-bytes', String(1024 * 1024)] });
  try {
    await within(pool.ready(1), 30_000, 'the node');
    const err = (await within(rejects(pool.submit(echo, new Uint8Array(2 * 1024 * 1024)), SerializationError), 10_000, 'the too-large task')) as SerializationError;
    assert.is(err.code, 'WSF_SERIALIZATION');
    assert.match(err.message, /--max-message-bytes/);
    assert.is(pool.slots, 1, 'the node is still connected');
    assert.is((await within(pool.submit(echo, new Uint8Array(1000)), 10_000, 'a small task')).length, 1000);
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test("a result larger than the pool's maxMessageBytes fails with SerializationError saying so, an error that large arrives cut short; the node stays connected", async () => {
  const pool = await startPool({ maxWorkers: 0, maxMessageBytes: 2 * 1024 * 1024 });
  const node = spawnWorker({ url: pool.url!, token: pool.token });
  try {
    await within(pool.ready(1), 30_000, 'the node');
    // A large typed array travels beside the result's msgpack bytes: it still counts.
    const err = (await within(rejects(pool.submit(makeBytes, 3 * 1024 * 1024), SerializationError), 10_000, 'the too-large result')) as SerializationError;
    assert.is(err.code, 'WSF_SERIALIZATION');
    assert.match(err.message, /maxMessageBytes \(2097152\)/);
    assert.is(pool.slots, 1, 'the node is still connected');
    const ok = await within(pool.submit(makeBytes, 1024 * 1024), 10_000, 'a result within the limit');
    assert.is(ok.length, 1024 * 1024);
    assert.is(ok[1000], 1000 & 255);
    // An error too large to send arrives cut short, rather than closing the lane on every try.
    const big = (await within(rejects(pool.submit(failWithLongMessage, 3 * 1024 * 1024), Error), 10_000, 'the task with a huge error')) as Error;
    assert.match(big.message, /^x{1000}… \(the error was cut short: it encodes to \d+ bytes/);
    assert.is(pool.slots, 1, 'the node is still connected');
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a task whose arguments cannot be encoded fails with SerializationError, and the tasks submitted with it run at once', async () => {
  // A fresh pool: one slot, one task per slot, as before any task has run.
  const pool = await startPool({ maxWorkers: 1 });
  try {
    const bad = pool.submit(echo, { fn: () => 1 });
    const good = [pool.submit(add, 1, 1), pool.submit(add, 2, 2), pool.submit(add, 3, 3)];
    await within(rejects(bad, SerializationError), 5000, 'the task with a function argument');
    assert.equal(await within(Promise.all(good), 3000, 'the three good tasks'), [2, 4, 6]);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a node started with --max-message-bytes 2048 runs tiny tasks; arguments too large for it fail with the true sizes', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  // With a local copy of the task module, which at this limit could not be shipped to it.
  const node = spawnWorker({ url: pool.url!, token: pool.token, args: ['--max-message-bytes', '2048', '--tasks', 'test/fixtures/tasks.ts'] });
  try {
    await within(pool.ready(1), 30_000, 'the node');
    assert.is(await within(pool.submit(add, 1, 2), 10_000, 'a tiny task'), 3);
    assert.is((await within(pool.submit(echo, 'x'.repeat(1800)), 10_000, 'a task just under the limit')).length, 1800);
    const err = (await within(rejects(pool.submit(echo, 'x'.repeat(3000)), SerializationError), 10_000, 'the too-large task')) as SerializationError;
    const [, size, total] = /encode to (\d+) bytes \((\d+) with the task's frame\)/.exec(err.message) ?? [];
    assert.ok(Number(size) > 3000 && Number(total) > 2048, err.message);
    assert.match(err.message, '--max-message-bytes 2048');
    assert.is(pool.slots, 1, 'the node is still connected');
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
