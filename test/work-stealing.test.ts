/**
 * Work stealing on a real pool (two task threads of a local worker node): tasks prefetched
 * behind a long one on a busy lane are given back and run on the idle lane, and no task ever
 * runs twice because of a steal (each task records every start of it in a file).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordThenWait } from './fixtures/tasks.ts';
import { startPool, within } from './helpers/cluster.ts';

test('tasks waiting behind a long one are stolen by the idle lane, and every task runs exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-steal-'));
  const file = join(dir, 'runs.txt');
  const pool = await startPool({ maxWorkers: 2 });
  try {
    // The kind measured as short: a slot then takes many of its tasks ahead.
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.submit(recordThenWait, file, -1 - i, 0.3)));
    let id = 0;
    const all: Promise<number>[] = [];
    // At least 3 rounds; more (up to 10) while nothing was stolen: on a loaded machine the
    // short tasks may measure long enough that a slot takes only one at a time, and then
    // nothing waits behind the long one.
    for (let round = 0; round < 10 && (round < 3 || pool.stats().stolen === 0); round++) {
      // One long task, then short ones: round robin puts half of them behind the long one.
      const batch = [pool.submit(recordThenWait, file, id++, 400)];
      for (let i = 0; i < 60; i++) batch.push(pool.submit(recordThenWait, file, id++, 0.3));
      all.push(...batch);
      await within(Promise.all(batch), 60_000, `round ${round}`);
    }
    assert.equal((await Promise.all(all)).length, id);
    const runs = new Map<number, number>();
    for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
      const n = Number(line.split(' ')[0]);
      if (n >= 0) runs.set(n, (runs.get(n) ?? 0) + 1);
    }
    const twice = [...runs].filter(([, count]) => count !== 1);
    assert.equal(twice, [], 'a task ran more than once (or not at all)');
    assert.is(runs.size, id);
    const { stolen, retried } = pool.stats();
    assert.ok(stolen > 0, 'no task was stolen');
    assert.is(retried, 0);
  } finally {
    await pool.shutdown({ cancelFutures: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
