/**
 * Losing a worker node loses no future: `kill -9` of the local node mid-task re-runs its tasks
 * on the replacement node (or fails them with WorkerLostError when maxRetries is 0), and a
 * node cut off without a TCP close (SIGSTOP) is found by heartbeats and its task re-runs
 * elsewhere.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkerLostError } from '../coordinator/index.ts';
import { sleepThenWhere } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { spawnWorker, startPool, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

test('kill -9 of the local worker node mid-task: every task re-runs on the replacement node', async () => {
  const pool = await startPool({ maxWorkers: 2 });
  try {
    const first = pool.localWorkerPid!;
    const fs = Array.from({ length: 5 }, () => pool.submit(sleepThenWhere, 1500));
    await waitFor(() => fs.filter((f) => f.running()).length >= 2, 10_000, 'two tasks running');
    process.kill(first, 'SIGKILL');
    const results = await within(Promise.all(fs), 30_000, 'all futures');
    const second = pool.localWorkerPid;
    assert.ok(second !== undefined && second !== first, 'a replacement node was started');
    for (const r of results) assert.is(r.pid, second, 'ran on the replacement node');
    assert.ok(results.some((r) => r.attempt === 2), 'the tasks that were running are on their second attempt');
    assert.ok(fs.every((f) => f.done() && !f.cancelled()));
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('with maxRetries 0 a task lost with its node fails with WorkerLostError (WSF_WORKER_LOST)', async () => {
  const pool = await startPool({ maxWorkers: 1, maxRetries: 0 });
  try {
    const f = pool.submit(sleepThenWhere, 5000);
    await waitFor(() => f.running(), 10_000, 'task running');
    pool.killLocalWorkers();
    const err = (await within(rejects(f, WorkerLostError), 10_000, 'the lost future')) as WorkerLostError;
    assert.is(err.code, 'WSF_WORKER_LOST');
    assert.match(err.message, /maxRetries is 0/);
    // The pool replaced the node and keeps working.
    await pool.ready(1, { timeout: 20_000 });
    const r = await within(pool.submit(sleepThenWhere, 1), 20_000, 'a task after the loss');
    assert.is(r.attempt, 1);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a node cut off without a TCP close (SIGSTOP) is detected by heartbeats; its task re-runs elsewhere', async () => {
  const pool = await startPool({ maxWorkers: 0, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000 });
  const workers: WorkerProcess[] = [];
  try {
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'frozen' }));
    await pool.ready(1, { timeout: 20_000 });
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'healthy' }));
    await pool.ready(2, { timeout: 20_000 });
    const [frozen, healthy] = workers as [WorkerProcess, WorkerProcess];
    // One long task per node (each has one slot).
    const fs = [pool.submit(sleepThenWhere, 2000), pool.submit(sleepThenWhere, 2000)];
    await waitFor(() => fs.every((f) => f.running()), 10_000, 'both tasks running');
    frozen.signal('SIGSTOP');
    const results = await within(Promise.all(fs), 20_000, 'both futures');
    for (const r of results) assert.is(r.pid, healthy.child.pid, 'both tasks finished on the healthy node');
    assert.equal(results.map((r) => r.attempt).sort(), [1, 2]);
    await waitFor(() => pool.workers().every((w) => w.name !== 'frozen'), 5_000, 'the frozen node is forgotten');
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await pool.shutdown({ cancelFutures: true });
  }
});

test.run();
