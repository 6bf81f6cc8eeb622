/**
 * submitWith({ priority }) and map(…, { priority }): while tasks wait, higher priorities start
 * first and equal ones in the order submitted — on real worker nodes and on the async pool.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor } from '../coordinator/index.ts';
import { sleepThenEcho } from './fixtures/tasks.ts';
import { startPool } from './helpers/cluster.ts';

for (const kind of ['ProcessPoolExecutor', 'AsyncPoolExecutor'] as const) {
  test(`${kind}: waiting tasks start by priority, then in the order submitted`, async () => {
    const pool = kind === 'ProcessPoolExecutor' ? await startPool({ maxWorkers: 1 }, 1) : new AsyncPoolExecutor({ maxWorkers: 1 });
    try {
      // The one slot is busy: everything below waits in the queue.
      const blocker = pool.submit(sleepThenEcho, 300, 'blocker');
      await new Promise((r) => setTimeout(r, 50));
      const order: string[] = [];
      const submitted: [string, number | undefined][] = [['low-1', undefined], ['high-1', 5], ['low-2', 0], ['mid-1', 1], ['high-2', 5], ['neg', -3]];
      const futures = submitted.map(([name, priority]) => {
        const f = pool.submitWith({ priority }, sleepThenEcho, 10, name);
        f.then((v) => order.push(v));
        return f;
      });
      const mapped: string[] = [];
      const viaMap = (async () => {
        const items = pool.starmap(sleepThenEcho, [[10, 'map-a'], [10, 'map-b']] as [number, string][], { priority: 3 });
        for await (const v of items) {
          mapped.push(v);
          order.push(v);
        }
      })();
      assert.equal(await blocker, 'blocker');
      await Promise.all(futures);
      await viaMap;
      // Each task takes 10 ms, one at a time: they end in the order they started.
      assert.equal(order, ['high-1', 'high-2', 'map-a', 'map-b', 'mid-1', 'low-1', 'low-2', 'neg']);
      assert.equal(mapped, ['map-a', 'map-b']);
    } finally {
      await pool.shutdown();
    }
  });
}

test('priority must be a finite number', async () => {
  const pool = new AsyncPoolExecutor({ maxWorkers: 1 });
  try {
    assert.throws(() => pool.submitWith({ priority: Number.NaN }, sleepThenEcho, 1, 'x'), /options.priority must be a finite number/);
    assert.throws(() => pool.submitWith({ priority: '1' as unknown as number }, sleepThenEcho, 1, 'x'), (e: Error) => e instanceof TypeError);
  } finally {
    await pool.shutdown();
  }
});

test.run();
