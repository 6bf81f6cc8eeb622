/**
 * A worker node uses all its slots: CPU-bound tasks submitted together run on different task
 * threads at once — also right after a burst of tiny tasks, which makes the node hold many jobs
 * per thread (the case that once put a whole burst of long tasks on one thread).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { add, recordThenWait, spinThenThreadId } from './fixtures/tasks.ts';
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

test('a long synchronous loop of submits starts its first tasks before the loop ends', async () => {
  const pool = await startPool({ maxWorkers: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'wsf-burst-'));
  const file = join(dir, 'started');
  try {
    const futures: Promise<number>[] = [];
    let started = false;
    // No await in the loop: only a task sent while it runs can create the file.
    for (let i = 0; i < 300_000 && !started; i++) {
      futures.push(pool.submit(recordThenWait, file, i, 0));
      if (i % 256 === 255) started = existsSync(file);
    }
    assert.ok(started, `no task started during a loop of ${futures.length} submits`);
    assert.equal((await within(Promise.all(futures), 30_000, 'the submitted tasks')).length, futures.length);
  } finally {
    await pool.shutdown({ cancelFutures: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
