/**
 * Worker nodes coming and going gracefully: SIGTERM drains a node (its running task finishes
 * and reports, then it exits 0), and a node started before its coordinator keeps retrying
 * with backoff until the coordinator listens.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { add, sleepThenWhere } from './fixtures/tasks.ts';
import { spawnWorker, startPool, waitFor, within } from './helpers/cluster.ts';
import { freePort } from './helpers/targets.ts';

/** A port that was free a moment ago (the coordinator is started on it later). */

test('SIGTERM mid-task: the running task finishes, its result arrives, then the node exits 0', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, name: 'drainee' });
  try {
    await pool.ready(1, { timeout: 30_000 });
    const f = pool.submit(sleepThenWhere, 1500);
    await waitFor(() => f.running(), 10_000, 'task running');
    await new Promise((r) => setTimeout(r, 300)); // on the node, not only sent
    worker.signal('SIGTERM');
    const r = await within(f, 10_000, 'the drained task');
    assert.is(r.pid, worker.child.pid, 'the draining node itself finished it');
    assert.is(r.attempt, 1, 'not re-run');
    assert.is(await within(worker.exited, 10_000, 'the node to exit'), 0);
    assert.match(worker.output, /draining/);
    await waitFor(() => pool.workers().length === 0, 5_000, 'the node to be gone');
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a draining node gets no new tasks; they wait for another node', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  const first = spawnWorker({ url: pool.url!, token: pool.token, name: 'leaving' });
  let second: ReturnType<typeof spawnWorker> | undefined;
  try {
    await pool.ready(1, { timeout: 30_000 });
    const running = pool.submit(sleepThenWhere, 1500);
    await waitFor(() => running.running(), 10_000, 'task running');
    await new Promise((r) => setTimeout(r, 300));
    first.signal('SIGTERM');
    await waitFor(() => pool.slots === 0, 5_000, 'the draining node to stop taking work');
    const later = pool.submit(sleepThenWhere, 1);
    second = spawnWorker({ url: pool.url!, token: pool.token, name: 'arriving' });
    const [a, b] = await within(Promise.all([running, later]), 30_000, 'both tasks');
    assert.is(a.pid, first.child.pid);
    assert.is(b.pid, second.child.pid, 'the new task ran on the new node, not the draining one');
    assert.is(await within(first.exited, 10_000, 'the drained node to exit'), 0);
  } finally {
    await first.kill();
    await second?.kill();
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a node started before its coordinator retries with backoff and connects once it listens', async () => {
  const port = await freePort();
  const token = 'shared-token-for-the-reconnect-test';
  const worker = spawnWorker({ url: `ws://127.0.0.1:${port}`, token, name: 'early' });
  let pool: Awaited<ReturnType<typeof startPool>> | undefined;
  try {
    await waitFor(() => (worker.output.match(/cannot reach the coordinator/g) ?? []).length >= 2, 15_000, 'two failed attempts');
    assert.match(worker.output, /retrying in \d+\.\d s/);
    assert.is(worker.child.exitCode, null, 'still running');
    pool = await startPool({ maxWorkers: 0, listen: { port }, token });
    await pool.ready(1, { timeout: 20_000 });
    assert.equal(pool.workers().map((w) => w.name), ['early']);
    assert.is(await within(pool.submit(add, 4, 5), 10_000, 'a task'), 9);
  } finally {
    await worker.kill();
    await pool?.shutdown({ cancelFutures: true });
  }
});

test.run();
