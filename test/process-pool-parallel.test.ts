/**
 * A worker node uses all its slots: CPU-bound tasks submitted together run on different task
 * threads at once — also right after a burst of tiny tasks, which makes the node hold many jobs
 * per thread (the case that once put a whole burst of long tasks on one thread).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { add, spinThenThreadId } from './fixtures/tasks.ts';
import { startPool, within } from './helpers/cluster.ts';

test('two CPU-bound tasks run on two different threads of a 2-slot node, after tiny tasks', async () => {
  const pool = await startPool({ maxWorkers: 2 });
  try {
    await within(Promise.all(Array.from({ length: 2000 }, (_, i) => pool.submit(add, i, 1))), 30_000, 'the tiny tasks');
    const ids = await within(Promise.all(Array.from({ length: 4 }, () => pool.submit(spinThenThreadId, 300))), 30_000, 'the CPU-bound tasks');
    assert.is(new Set(ids).size, 2, `the four tasks ran on threads ${ids.join(', ')}`);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
