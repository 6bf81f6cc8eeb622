/**
 * Chaos: a frozen worker node (SIGSTOP: its sockets stay open, nothing answers). The pool
 * finds it lost within heartbeatTimeoutMs (plus one heartbeat interval), its tasks finish on the
 * other node, and once it is thawed (SIGCONT) nothing it still had in hand settles a future a
 * second time; it reconnects and takes work again. And the other way round: a frozen
 * coordinator (test/fixtures/chaos-coordinator.ts in its own process), which its nodes give up
 * on and rejoin once it is thawed; its futures all settle, once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recorded, where } from './fixtures/chaos-tasks.ts';
import { CHAOS_TASKS_URL, executions, logDir, spawnCoordinator } from './helpers/chaos.ts';
import { spawnWorker, startPool, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

const INTERVAL_MS = 300;
const TIMEOUT_MS = 1500;

test('a frozen node is found lost within heartbeatTimeoutMs, its tasks finish elsewhere, and after SIGCONT it settles nothing twice and takes work again', async () => {
  const logs = logDir();
  const pool = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0, heartbeatIntervalMs: INTERVAL_MS, heartbeatTimeoutMs: TIMEOUT_MS });
  const workers: WorkerProcess[] = [];
  try {
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'frozen', args: ['--quiet'] }));
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'healthy', args: ['--quiet'] }));
    await pool.ready(2, { timeout: 30_000 });
    const [frozen, healthy] = workers as [WorkerProcess, WorkerProcess];

    const N = 24;
    const futures = Array.from({ length: N }, (_, i) => pool.submit(recorded, i, 150, logs.dir));
    const settlements = new Array<number>(N).fill(0);
    futures.forEach((f, i) => f.addDoneCallback(() => settlements[i]!++));
    // Let both nodes get going, then freeze one in the middle of its work.
    await waitFor(() => futures.filter((f) => f.done()).length >= 4, 20_000, 'the first results');
    const stoppedAt = Date.now();
    frozen.signal('SIGSTOP');
    await waitFor(() => !pool.workers().some((w) => w.name === 'frozen'), TIMEOUT_MS + 10_000, 'the frozen node found lost');
    const detectionMs = Date.now() - stoppedAt;

    const values = await within(Promise.all(futures), 30_000, 'every future');
    const allDoneMs = Date.now() - stoppedAt;
    for (const [i, r] of values.entries()) assert.is(r.v, i * 3, `task ${i}: right value`);
    const afterFreeze = values.filter((r) => r.pid === frozen.child.pid).length;

    // Thaw it: whatever it still held (a task it was running, results it had not sent) must not
    // settle anything again, and it must come back.
    const thawedAt = Date.now();
    frozen.signal('SIGCONT');
    await waitFor(() => pool.workers().some((w) => w.name === 'frozen'), 20_000, 'the thawed node reconnected');
    const reconnectMs = Date.now() - thawedAt;
    await pool.ready(2, { timeout: 20_000 });
    assert.equal(settlements, new Array<number>(N).fill(1), 'every future settled exactly once');
    for (const [i, f] of futures.entries()) assert.is((await f.result()).v, i * 3, `task ${i}: value unchanged after the thaw`);

    // It takes work again: long-enough tasks, one per slot at a time, go to both nodes.
    const later = await within(Promise.all(Array.from({ length: 8 }, () => pool.submit(where, 300))), 30_000, 'tasks after the thaw');
    const pids = new Set(later.map((r) => r.pid));
    assert.ok(pids.has(frozen.child.pid!), 'the thawed node ran some of them');
    assert.ok(pids.has(healthy.child.pid!), 'and the healthy node too');
    assert.equal(settlements, new Array<number>(N).fill(1), 'still exactly once');

    await Promise.all(workers.map((w) => w.kill()));
    const runs = executions(logs.dir);
    let duplicated = 0;
    for (let i = 0; i < N; i++) {
      const list = runs.get(i) ?? [];
      assert.ok(list.length >= 1, `task ${i} ran`);
      if (list.length > 1) {
        duplicated++;
        assert.ok(list.includes(frozen.child.pid!), `task ${i} ran twice: one of them on the frozen node`);
      }
    }
    console.log(
      `  chaos-freeze: frozen node found lost ${detectionMs} ms after SIGSTOP (heartbeat ${INTERVAL_MS}/${TIMEOUT_MS} ms); ` +
        `all ${N} futures settled ${allDoneMs} ms after it (${afterFreeze} by the frozen node before it froze), ${duplicated} ran twice; ` +
        `reconnected ${reconnectMs} ms after SIGCONT; 0 duplicate settlements`,
    );
    // Detection: the last message may be an interval old (more on a loaded machine) when it
    // froze, and the check runs every interval. The margin is for a loaded machine.
    assert.ok(detectionMs >= TIMEOUT_MS / 2, `not found lost at the first missed heartbeat (${detectionMs} ms)`);
    assert.ok(detectionMs <= TIMEOUT_MS + INTERVAL_MS + 1500, `found lost within heartbeatTimeoutMs + one interval (+ margin): ${detectionMs} ms`);
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await pool.shutdown({ cancelFutures: true });
    logs.remove();
  }
});

test('a frozen coordinator (SIGSTOP): its nodes give up on it and reconnect once it is thawed, and every future settles exactly once', async () => {
  // Its own process, so it can be stopped; the same short heartbeat on both sides.
  const coordinator = spawnCoordinator(['0', 'freeze-test-token-0123456789', '2', '400', '6', String(INTERVAL_MS), String(TIMEOUT_MS)]);
  const workers: WorkerProcess[] = [];
  try {
    const { url, token } = await coordinator.line<{ url: string; token: string }>('url');
    for (const name of ['n1', 'n2']) workers.push(spawnWorker({ url, token, name }));
    await coordinator.line('running');
    const frozenMs = TIMEOUT_MS + 1500;
    coordinator.child.pid && process.kill(coordinator.child.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, frozenMs));
    // Both nodes noticed the silence (their heartbeat timeout comes from the coordinator).
    for (const w of workers) assert.match(w.output, /no message from the coordinator for \d+ ms: reconnecting/);
    const thawedAt = Date.now();
    process.kill(coordinator.child.pid!, 'SIGCONT');
    const { done } = await coordinator.line<{ done: { fulfilled: number; settlements: number[]; attempts: number[]; pids: number[]; workers: number } }>('done', 60_000);
    const doneMs = Date.now() - thawedAt;
    assert.is(done.fulfilled, 6, 'every future has its value');
    assert.equal(done.settlements, new Array<number>(6).fill(1), 'each settled exactly once');
    const pids = new Set(workers.map((w) => w.child.pid));
    for (const p of done.pids) assert.ok(pids.has(p), 'ran on one of the two nodes');
    assert.is(done.workers, 2, 'both nodes are connected again');
    console.log(
      `  chaos-freeze: coordinator frozen ${frozenMs} ms (heartbeat ${INTERVAL_MS}/${TIMEOUT_MS} ms): both nodes gave up on it; ` +
        `after SIGCONT all 6 futures settled once, within ${doneMs} ms (attempts ${done.attempts.join(',')})`,
    );
  } finally {
    if (coordinator.child.pid) {
      try {
        process.kill(coordinator.child.pid, 'SIGCONT');
        process.kill(coordinator.child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await coordinator.exited;
    await Promise.all(workers.map((w) => w.kill()));
  }
});

test.run();
