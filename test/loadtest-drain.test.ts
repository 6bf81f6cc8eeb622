/**
 * A node that drains during a load test (SIGTERM, as Ctrl-C or a service manager would) hands in
 * everything it measured before it goes: its segment ends at once as its last, waits for its
 * iterations in flight and stops its virtual users, and the result counts every request the
 * target saw. (Before, the draining node's segment ran to its end and returned; the iterations
 * still in flight then, and those its virtual users went on running until the process exited,
 * reached the target and were never measured.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { loadTest } from '../coordinator/loadtest-api.ts';
import { ROOT, spawnWorker, type WorkerProcess } from './helpers/cluster.ts';
import { freePort, startTarget } from './helpers/targets.ts';

const SCENARIO = join(ROOT, 'test', 'fixtures', 'http-node-scenario.ts');

test('a node drained mid-test: every request the target saw is in the result, and the node exits 0', async () => {
  // 50 ms per answer: with 8 virtual users on a node, some are always in flight.
  const server = await startTarget({ delayMs: 50, echoPid: true });
  const { arrivals } = server;
  const target = server.url;
  const port = await freePort();
  const token = 'drain-token-1234567';
  const workers: WorkerProcess[] = [];
  const stop = new AbortController();
  let drainedAt = 0;
  try {
    workers.push(spawnWorker({ url: `ws://127.0.0.1:${port}`, token, name: 'stays', concurrency: 1 }));
    workers.push(spawnWorker({ url: `ws://127.0.0.1:${port}`, token, name: 'drains', concurrency: 1 }));
    let exitCode: number | string | undefined;
    let ending = false;
    const result = await loadTest({
      scenario: SCENARIO,
      vus: 16,
      duration: '60s',
      signal: stop.signal,
      params: { target },
      pool: { maxWorkers: 0, listen: { port }, token, log: false },
      minSlots: 2,
      onProgress: (p) => {
        // Drained 3 s in, mid-segment (segments are 2 s); the test ends 3 s after it left.
        if (!drainedAt && p.elapsedMs >= 3000) {
          drainedAt = Date.now();
          workers[1]!.signal('SIGTERM');
          void workers[1]!.exited.then((code) => (exitCode = code));
        }
        if (exitCode !== undefined && !ending) {
          ending = true;
          setTimeout(() => stop.abort(), 3000);
        }
      },
    });
    assert.ok(drainedAt > 0, 'the node was drained during the test');
    assert.is(exitCode, 0, `the drained node exited 0 (output: ${workers[1]!.output.slice(-500)})`);
    const drainedPid = workers[1]!.child.pid!;
    const fromDrained = arrivals.filter((a) => a.pid === drainedPid);
    assert.ok(fromDrained.length > 20, `the drained node sent ${fromDrained.length} requests`);
    // Every request measured: started, and ended with a latency.
    console.log(
      `${arrivals.length} requests at the target (${fromDrained.length} from the drained node), ${result.iterations} iterations, ${result.steps.iteration?.count} measured, ${result.errors} errors`,
    );
    assert.is(result.iterations, arrivals.length);
    assert.is(result.steps.iteration?.count, arrivals.length);
    assert.is(result.errors, 0, JSON.stringify(result.steps.iteration?.errorKinds));
    // It stopped sending soon after the drain (its segment ended there, not at its end).
    const lastFromDrained = Math.max(...fromDrained.map((a) => a.at));
    assert.ok(lastFromDrained - drainedAt < 800, `its last request came ${lastFromDrained - drainedAt} ms after the drain`);
  } finally {
    for (const w of workers) await w.kill();
    server.server.close();
  }
});

test.run();
