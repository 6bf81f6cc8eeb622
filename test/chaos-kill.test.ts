/**
 * Chaos: worker nodes SIGKILLed and replaced under load. 20,000 tasks (most tiny, one in ten
 * a few milliseconds) run on three remote worker-node processes while, every 500 ms, one
 * connected node is killed with SIGKILL and a replacement started (MAX_KILLS times). Every
 * future must settle
 * with the right value; executions (recorded by each task in a file per process before it does
 * anything) show the at-least-once promise holding: only a task that was in flight on a killed
 * node ran more than once, and every task's attempt number (currentTask().attempt) was at least
 * the number of times it ran. And every node killed at once: the futures wait for the next
 * node rather than fail.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recorded } from './fixtures/chaos-tasks.ts';
import { CHAOS_TASKS_URL, executions, logDir } from './helpers/chaos.ts';
import { spawnWorker, startPool, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

const TASKS = 20_000;
const MAX_RETRIES = 3;
const KILL_EVERY_MS = 500;
/** Each replacement costs a node start-up (a second of CPU or so): enough kills to matter, no more. */
const MAX_KILLS = 10;

test(`${TASKS} tasks while a worker node is SIGKILLed every ${KILL_EVERY_MS} ms and replaced: 0 lost, 0 wrong, duplicates within at-least-once`, async () => {
  const logs = logDir();
  const pool = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0, maxRetries: MAX_RETRIES });
  const workers: (WorkerProcess & { name: string })[] = [];
  const killed = new Set<number>();
  let serial = 0;
  const startNode = () => {
    const name = `chaos-${serial++}`;
    workers.push(Object.assign(spawnWorker({ url: pool.url!, token: pool.token, name, args: ['--quiet'] }), { name }));
  };
  let killer: ReturnType<typeof setInterval> | undefined;
  try {
    for (let k = 0; k < 3; k++) startNode();
    await pool.ready(3, { timeout: 30_000 });
    const started = Date.now();
    const futures = Array.from({ length: TASKS }, (_, i) => pool.submit(recorded, i, i % 10 === 0 ? 2 + (i % 4) : 0, logs.dir));
    let settled = 0;
    for (const f of futures) f.addDoneCallback(() => settled++);
    let skipped = 0;
    killer = setInterval(() => {
      // Kill a node that is connected (keeping at least one), and start its replacement.
      if (killed.size >= MAX_KILLS) return;
      const connected = new Set(pool.workers().map((w) => w.name));
      const victims = workers.filter((w) => connected.has(w.name) && !killed.has(w.child.pid!));
      if (victims.length < 2) return void skipped++;
      const victim = victims[Math.floor(Math.random() * victims.length)]!;
      killed.add(victim.child.pid!);
      victim.signal('SIGKILL');
      startNode();
    }, KILL_EVERY_MS);
    const outcomes = await within(Promise.allSettled(futures), 120_000, `all ${TASKS} futures (${settled} settled so far)`);
    const ms = Date.now() - started;
    clearInterval(killer);
    killer = undefined;

    // 0 lost, 0 wrong.
    const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    assert.is(failed.length, 0, `no future failed (first: ${failed[0]?.reason})`);
    let wrong = 0;
    for (const [i, o] of outcomes.entries()) if ((o as PromiseFulfilledResult<{ v: number }>).value.v !== i * 3) wrong++;
    assert.is(wrong, 0, 'every value is i * 3');

    // Stop every node before reading the logs, so that none is still writing.
    await Promise.all(workers.map((w) => w.kill()));
    const runs = executions(logs.dir);
    let duplicated = 0;
    let extra = 0;
    let maxRuns = 0;
    let belowRuns = 0;
    for (let i = 0; i < TASKS; i++) {
      const pids = runs.get(i) ?? [];
      assert.ok(pids.length >= 1, `task ${i} ran`);
      maxRuns = Math.max(maxRuns, pids.length);
      // The attempt number a task sees counts every run it may have had: a task that ran
      // before, on a node killed before its result left, must not believe it is its first run.
      const { attempt } = (outcomes[i] as PromiseFulfilledResult<{ attempt: number }>).value;
      if (attempt < pids.length) belowRuns++;
      if (pids.length > 1) {
        duplicated++;
        extra += pids.length - 1;
        // Only the execution that settled may be on a node that was never killed.
        const onSurvivors = pids.filter((p) => !killed.has(p)).length;
        assert.ok(onSurvivors <= 1, `task ${i} ran ${onSurvivors} times on nodes that were not killed`);
      }
    }
    console.log(
      `  chaos-kill: ${TASKS} tasks, ${killed.size} nodes SIGKILLed (${skipped} kill ticks skipped: fewer than 2 nodes connected), ` +
        `${duplicated} tasks ran more than once (${extra} extra executions, at most ${maxRuns} runs of one task), ` +
        `${belowRuns} settled with an attempt number below their runs; 0 lost, 0 wrong; ` +
        `${(ms / 1000).toFixed(1)} s, ${Math.round(TASKS / (ms / 1000))} tasks/s`,
    );
    assert.is(belowRuns, 0, 'every task saw an attempt number at least its number of runs');
    assert.ok(killed.size >= 3, `at least 3 nodes were killed during the run (got ${killed.size}): the run was long enough to test something`);
    // The pool still works with whatever nodes are left after the run.
    startNode();
    await pool.ready(1, { timeout: 30_000 });
    await waitFor(() => pool.slots >= 1, 10_000, 'a slot');
    const last = await within(pool.submit(recorded, 7, 0, logs.dir), 20_000, 'a task after the chaos');
    assert.is(last.v, 21);
  } finally {
    if (killer) clearInterval(killer);
    await Promise.all(workers.map((w) => w.kill()));
    await pool.shutdown({ cancelFutures: true });
    logs.remove();
  }
});

test('every node killed at once: the futures wait (none fails) and finish on a node started later', async () => {
  const logs = logDir();
  const pool = await startPool({ tasks: CHAOS_TASKS_URL, maxWorkers: 0 });
  const workers: WorkerProcess[] = [];
  try {
    for (const name of ['all-1', 'all-2']) workers.push(spawnWorker({ url: pool.url!, token: pool.token, name, args: ['--quiet'] }));
    await pool.ready(2, { timeout: 30_000 });
    const N = 2000;
    const futures = Array.from({ length: N }, (_, i) => pool.submit(recorded, i, i % 10 === 0 ? 3 : 0, logs.dir));
    await waitFor(() => futures.some((f) => f.done()), 20_000, 'the first results');
    for (const w of workers) w.signal('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await waitFor(() => pool.slots === 0, 10_000, 'both nodes found lost');
    // No node at all for a while: nothing fails, the queue waits.
    await new Promise((r) => setTimeout(r, 1000));
    const waiting = futures.filter((f) => !f.done()).length;
    assert.ok(waiting > 0, 'some tasks were still to run when the nodes died');
    const revivedAt = Date.now();
    workers.push(spawnWorker({ url: pool.url!, token: pool.token, name: 'later', args: ['--quiet'] }));
    const values = await within(Promise.all(futures), 60_000, 'every future, on the new node');
    for (const [i, r] of values.entries()) assert.is(r.v, i * 3);
    console.log(
      `  chaos-kill: both nodes killed with ${waiting} of ${N} tasks still to run; a node started 1 s later finished them all ${
        Date.now() - revivedAt
      } ms after it was started; 0 failed`,
    );
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await pool.shutdown({ cancelFutures: true });
    logs.remove();
  }
});

test.run();
