/**
 * Stopping work on a real cluster: cancel() removes a queued task; abort() stops a running
 * remote task (a CPU-bound one by ending its thread, an async one through its AbortSignal);
 * per-task timeouts; shutdown({ cancelFutures: true }).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelledError, TimeoutError } from '../coordinator/index.ts';
import { add, sleepThenWhere, spin, waitForAbortAndRecord } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { startPool, waitFor, within } from './helpers/cluster.ts';

test('cancel() on a queued task removes it; the others run', async () => {
  const pool = await startPool({ maxWorkers: 1 });
  try {
    const blocker = pool.submit(sleepThenWhere, 600);
    await waitFor(() => blocker.running(), 10_000, 'blocker running');
    const queued = pool.submit(add, 1, 2);
    const after = pool.submit(add, 3, 4);
    assert.is(queued.running(), false);
    assert.is(queued.cancel(), true);
    assert.is(queued.cancelled(), true);
    await rejects(queued, CancelledError);
    assert.is(await within(after, 10_000, 'the task after'), 7);
    assert.is((await blocker).attempt, 1);
    assert.is(pool.queuedCount, 0);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('abort() of a running CPU-bound task stops it: the slot is free long before the spin would end', async () => {
  const pool = await startPool({ maxWorkers: 1 });
  try {
    const SPIN_MS = 20_000;
    const f = pool.submit(spin, SPIN_MS);
    await waitFor(() => f.running(), 10_000, 'spin running');
    await new Promise((r) => setTimeout(r, 500)); // let it really start spinning on the node
    const t0 = Date.now();
    assert.is(f.abort(), true);
    assert.is(f.cancelled(), true);
    await rejects(f, CancelledError);
    assert.is(await within(pool.submit(add, 1, 1), SPIN_MS / 2, 'the next task on the same slot'), 2);
    assert.ok(Date.now() - t0 < SPIN_MS / 2, 'the next task ran well before the spin would have ended');
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('abort() of a running async task fires its AbortSignal on the worker', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-abort-'));
  const pool = await startPool({ maxWorkers: 1 });
  try {
    const marker = join(dir, 'outcome');
    const f = pool.submit(waitForAbortAndRecord, 20_000, marker);
    // RUNNING on the coordinator means sent to the node: wait until the function really runs.
    const recorded = () => (existsSync(marker) ? readFileSync(marker, 'utf8') : '');
    await waitFor(() => recorded() === 'started', 15_000, 'the task to start on the node');
    f.abort();
    await rejects(f, CancelledError);
    await waitFor(() => recorded() !== 'started', 10_000, 'the task to record its outcome');
    assert.is(readFileSync(marker, 'utf8'), 'aborted');
    assert.is(await within(pool.submit(add, 2, 2), 10_000, 'a task after'), 4);
  } finally {
    await pool.shutdown({ cancelFutures: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('submitWith({ timeout }) rejects with TimeoutError and stops the task', async () => {
  const pool = await startPool({ maxWorkers: 1 });
  try {
    const f = pool.submitWith({ timeout: 300 }, spin, 20_000);
    const err = (await within(rejects(f, TimeoutError), 10_000, 'the timed-out future')) as TimeoutError;
    assert.is(err.code, 'WSF_TIMEOUT');
    assert.is(f.done(), true);
    assert.is(await within(pool.submit(add, 5, 5), 10_000, 'the next task on the same slot'), 10);
    // A task that finishes in time is unaffected by its timeout.
    assert.is(await pool.submitWith({ timeout: 10_000 }, add, 1, 2), 3);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('shutdown({ cancelFutures: true }) cancels queued tasks, lets the running one finish, and resolves', async () => {
  const pool = await startPool({ maxWorkers: 1 });
  const running = pool.submit(sleepThenWhere, 500);
  await waitFor(() => running.running(), 10_000, 'task running');
  const queued = Array.from({ length: 5 }, (_, i) => pool.submit(add, i, i));
  await within(pool.shutdown({ cancelFutures: true }), 15_000, 'shutdown');
  assert.is((await running).attempt, 1, 'the running task finished');
  for (const q of queued) assert.is(q.cancelled(), true);
  assert.throws(() => pool.submit(add, 1, 1), (e: unknown) => (e as { code?: string }).code === 'WSF_SHUTDOWN');
});

test.run();
