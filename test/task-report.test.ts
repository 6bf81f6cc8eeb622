/**
 * currentTask().report(value): a running task streams values to its future's listeners, on a
 * worker node and on the async pool alike — in order, all before the future settles, at most 20
 * a second per task (a faster caller waits), and a value that cannot travel fails the report(),
 * not the task.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AsyncPoolExecutor } from '../coordinator/index.ts';
import { reportCount, reportUnsendable } from './fixtures/tasks.ts';
import { startPool } from './helpers/cluster.ts';

for (const kind of ['ProcessPoolExecutor', 'AsyncPoolExecutor'] as const) {
  test(`${kind}: reports arrive in order, before the result, at most 20 a second`, async () => {
    const pool = kind === 'ProcessPoolExecutor' ? await startPool({ maxWorkers: 1 }, 1) : new AsyncPoolExecutor({ maxWorkers: 2 });
    try {
      const got: number[] = [];
      let settledFirst = false;
      const started = performance.now();
      const f = pool.submitWith({ onReport: (v: { i: number }) => got.push(v.i) }, reportCount, 12);
      f.addDoneCallback(() => (settledFirst = got.length < 12));
      assert.equal(await f, 12);
      const ms = performance.now() - started;
      assert.equal(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      assert.not.ok(settledFirst, 'every report came before the result');
      // 12 reports at most 20 a second: 11 intervals of 50 ms.
      assert.ok(ms >= 520, `12 reports took ${ms.toFixed(0)} ms`);
      // onReport on the future itself, and a listener that throws disturbs nothing.
      const g = pool.submit(reportCount, 3);
      const seen: unknown[] = [];
      g.onReport(() => {
        throw new Error('listener bug');
      });
      g.onReport((v) => seen.push(v));
      assert.equal(await g, 3);
      assert.equal(seen, [{ i: 1 }, { i: 2 }, { i: 3 }]);
      assert.equal(await pool.submit(reportUnsendable), kind === 'ProcessPoolExecutor' ? 'SerializationError' : 'sent');
    } finally {
      await pool.shutdown();
    }
  });
}

test.run();
