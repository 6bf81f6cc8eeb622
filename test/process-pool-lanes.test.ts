/**
 * Lanes on a real cluster: each task thread of a worker node has its own connection to the
 * coordinator. A thread that dies takes only its own task down; the tasks waiting behind it on
 * its lane run elsewhere as first attempts; its node replaces the thread and keeps its slots.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { add, exitThread, sleepThenWhere } from './fixtures/tasks.ts';
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
