/**
 * A coordinator restarted on the same port under running remote worker nodes (started without
 * --no-reconnect): the nodes find the new coordinator within their reconnect backoff and run
 * its tasks. Two ways the first one ends:
 * - it shuts down: every future it had settles first (running tasks finish; with
 *   `cancelFutures`, queued ones are cancelled), then the nodes are told and reconnect;
 * - its process is SIGKILLed (test/fixtures/chaos-coordinator.ts): its futures lived in its
 *   memory and are gone with it; the nodes drop the tasks it had sent them (they would report
 *   to nobody) and are free at once for the next coordinator.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelledError } from '../coordinator/index.ts';
import { where } from './fixtures/chaos-tasks.ts';
import { rejects } from './helpers/assert.ts';
import { CHAOS_TASKS_URL, spawnCoordinator } from './helpers/chaos.ts';
import { spawnWorker, startPool, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

const TOKEN = 'restart-test-token-0123456789';

function portOf(url: string): number {
  return Number(new URL(url).port);
}

test('the pool shuts down and a new one starts on the same port: its futures all settled, and the nodes reconnect and run the new tasks', async () => {
  const first = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0, token: TOKEN });
  const port = portOf(first.url!);
  const workers: WorkerProcess[] = [];
  let second: Awaited<ReturnType<typeof startPool>> | undefined;
  try {
    for (const name of ['r1', 'r2']) workers.push(spawnWorker({ url: first.url!, token: TOKEN, name, args: ['--quiet'] }));
    await first.ready(2, { timeout: 30_000 });
    const pids = new Set(workers.map((w) => w.child.pid));
    // Two running (one per slot), four queued behind them.
    const running = [first.submit(where, 600), first.submit(where, 600)];
    const queued = Array.from({ length: 4 }, () => first.submit(where, 600));
    await waitFor(() => running.every((f) => f.running()), 10_000, 'two tasks running');
    await first.shutdown({ cancelFutures: true });
    const stoppedAt = Date.now();
    for (const f of running) assert.ok(pids.has((await f.result()).pid), 'a running task finished before the shutdown ended');
    for (const f of queued) await rejects(f, CancelledError);

    // A restart takes a moment: the nodes try, fail, and back off meanwhile.
    await new Promise((r) => setTimeout(r, 1000));
    second = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0, token: TOKEN, listen: { port } });
    assert.is(portOf(second.url!), port);
    await second.ready(2, { timeout: 20_000 });
    const reconnectMs = Date.now() - stoppedAt;
    const results = await within(Promise.all(Array.from({ length: 6 }, () => second!.submit(where, 50))), 20_000, 'tasks on the new coordinator');
    for (const r of results) assert.ok(pids.has(r.pid), 'ran on one of the same two nodes');
    assert.is(new Set(results.map((r) => r.pid)).size, 2, 'both nodes took work');
    console.log(`  coordinator-restart (shutdown): both nodes back ${reconnectMs} ms after the first pool stopped (the new one started 1000 ms after it)`);
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await first.shutdown({ cancelFutures: true });
    await second?.shutdown({ cancelFutures: true });
  }
});

test('the coordinator process is SIGKILLed and a new one starts on the same port: the nodes drop its tasks, reconnect and run the new ones', async () => {
  const coordinator = spawnCoordinator(['0', TOKEN, '2']);
  const workers: WorkerProcess[] = [];
  let second: Awaited<ReturnType<typeof startPool>> | undefined;
  try {
    const { url } = await coordinator.line<{ url: string }>('url');
    for (const name of ['k1', 'k2']) workers.push(spawnWorker({ url, token: TOKEN, name, args: ['--quiet'] }));
    await coordinator.line('running');
    const pids = new Set(workers.map((w) => w.child.pid));

    process.kill(coordinator.child.pid!, 'SIGKILL');
    await coordinator.exited;
    const killedAt = Date.now();
    second = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0, token: TOKEN, listen: { port: portOf(url) } });
    await second.ready(2, { timeout: 20_000 });
    const reconnectMs = Date.now() - killedAt;
    // The killed coordinator's two-minute tasks no longer hold the nodes' only slots.
    const results = await within(Promise.all(Array.from({ length: 6 }, () => second!.submit(where, 50))), 20_000, 'tasks on the new coordinator');
    const doneMs = Date.now() - killedAt;
    for (const r of results) {
      assert.ok(pids.has(r.pid), 'ran on one of the same two nodes');
      assert.is(r.attempt, 1);
    }
    assert.is(new Set(results.map((r) => r.pid)).size, 2, 'both nodes took work');
    for (const w of workers) assert.is(w.child.exitCode, null, 'the nodes are still running');
    console.log(`  coordinator-restart (SIGKILL): both nodes back ${reconnectMs} ms after the kill; the new coordinator's tasks done after ${doneMs} ms`);
  } finally {
    coordinator.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.kill()));
    await second?.shutdown({ cancelFutures: true });
  }
});

test.run();
