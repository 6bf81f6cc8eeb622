/**
 * Lanes on a real cluster: each task thread of a worker node has its own connection to the
 * coordinator. A thread that dies takes only its own task down; the tasks waiting behind it on
 * its lane run elsewhere as first attempts; its node replaces the thread and keeps its slots.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TimeoutError } from '../coordinator/index.ts';
import { add, exitThread, sleepThenWhere, spin } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { spawnWorker, startPool, waitFor, within } from './helpers/cluster.ts';

test('a task that ends its thread fails with WSF_THREAD_DIED and how; the tasks behind it run; the node keeps its slots', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const node = spawnWorker({ url: pool.url!, token: pool.token, concurrency: 2 });
  try {
    await within(pool.ready(2), 30_000, 'the node');
    // Tiny tasks first: the pool then sends many tasks per lane at once, so some wait behind
    // the one that kills its thread.
    await within(Promise.all(Array.from({ length: 300 }, (_, i) => pool.submit(add, i, 1))), 30_000, 'warm-up');
    const before = Array.from({ length: 20 }, (_, i) => pool.submit(sleepThenWhere, 20 + i));
    const dying = pool.submit(exitThread, 3);
    const after = Array.from({ length: 20 }, (_, i) => pool.submit(sleepThenWhere, 20 + i));
    const err = await within(rejects(dying), 20_000, 'the dying task');
    assert.is((err as { code?: string }).code, 'WSF_THREAD_DIED');
    assert.match((err as Error).message, /exited with code 3/);
    const results = await within(Promise.all([...before, ...after]), 30_000, 'the other tasks');
    assert.is(results.length, 40);
    for (const r of results) assert.is(r.attempt, 1, 'no other task counted an attempt');
    await waitFor(() => pool.slots === 2, 20_000, 'the replacement thread attached');
    assert.is(await within(pool.submit(add, 40, 2), 10_000, 'a task after'), 42);
    assert.not.match(node.output, /lost the coordinator/, 'the node stayed connected');
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('results waiting in a thread to leave in a batch do not fool the coordinator about which task is running', async () => {
  // maxRetries 0: a task wrongly blamed for a lost thread would fail with WorkerLostError.
  const pool = await startPool({ maxWorkers: 0, maxRetries: 0 });
  const node = spawnWorker({ url: pool.url!, token: pool.token, concurrency: 1 });
  try {
    await within(pool.ready(1), 30_000, 'the node');
    await within(Promise.all(Array.from({ length: 300 }, (_, i) => pool.submit(add, i, 1))), 30_000, 'warm-up');
    // Tiny tasks finish first, but their results wait in the thread behind the ones still to
    // run. Then a task ends its thread: it alone is to blame, and only it fails.
    const before = Array.from({ length: 5 }, () => pool.submit(sleepThenWhere, 0));
    const dying = pool.submit(exitThread, 3);
    const err = await within(rejects(dying), 20_000, 'the dying task');
    assert.is((err as { code?: string }).code, 'WSF_THREAD_DIED');
    // They ran, but their results died with the thread: they run again, using no retry, and
    // their attempt number says they may have run before.
    for (const r of await within(Promise.all(before), 20_000, 'the tasks before it')) assert.ok(r.attempt <= 2, `attempt ${r.attempt}`);
    await waitFor(() => pool.slots === 1, 20_000, 'the replacement thread attached');
    await within(Promise.all(Array.from({ length: 300 }, (_, i) => pool.submit(add, i, 1))), 30_000, 'warm-up again');
    // The same, with a CPU-bound task that is aborted (its timeout) and never looks at its
    // signal: its thread is ended after the grace period, and the tasks around it finish.
    const ahead = Array.from({ length: 5 }, () => pool.submit(sleepThenWhere, 0));
    const spinning = pool.submitWith({ timeout: 300 }, spin, 60_000);
    const behind = pool.submit(sleepThenWhere, 0);
    await within(rejects(spinning, TimeoutError), 10_000, 'the spin timing out');
    const rest = await within(Promise.all([...ahead, behind]), 15_000, 'the tasks around the aborted one');
    // None used a retry (maxRetries is 0); those that may have run before say so in `attempt`.
    for (const r of rest) assert.ok(r.attempt <= 2, `attempt ${r.attempt}`);
    assert.match(node.output, /ending the thread of lane \d+: task \d+ did not stop/);
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a node opens one lane per slot; pool.workers() lists the node once, with its slots', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const node = spawnWorker({ url: pool.url!, token: pool.token, concurrency: 3, name: 'three' });
  try {
    await within(pool.ready(3), 30_000, 'the node');
    assert.is(pool.slots, 3);
    assert.equal(pool.workers().map((w) => [w.name, w.slots]), [['three', 3]]);
    // Three tasks at once are all taken by the one node (one per lane).
    const where = await within(Promise.all([1, 2, 3].map(() => pool.submit(sleepThenWhere, 300))), 20_000, 'three at once');
    assert.is(new Set(where.map((w) => w.pid)).size, 1, 'one node process');
  } finally {
    await node.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
