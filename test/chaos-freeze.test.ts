/**
 * Chaos: a frozen worker node (SIGSTOP: its sockets stay open, nothing answers). The pool
 * finds it lost within heartbeatTimeoutMs (plus one heartbeat interval), its tasks finish on the
 * other node, and once it is thawed (SIGCONT) nothing it still had in hand settles a future a
 * second time; it reconnects and takes work again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recorded, where } from './fixtures/chaos-tasks.ts';
import { CHAOS_TASKS_URL, executions, logDir } from './helpers/chaos.ts';
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

    const N = 40;
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

test.run();
