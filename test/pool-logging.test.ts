/**
 * What a person at the terminal is told: one line when a node from elsewhere joins and when it
 * leaves, and a warning (once) when tasks wait with no slot, saying how to start a node.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { add } from './fixtures/tasks.ts';
import { spawnWorker, TASKS_URL, waitFor } from './helpers/cluster.ts';

test('tasks waiting with no slot get one warning with the join command; a remote node joining and leaving gets a line each', async () => {
  const lines: string[] = [];
  const pool = new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 0, log: (level, m) => lines.push(`${level} ${m}`) });
  try {
    await pool.listening;
    const f = pool.submit(add, 1, 2);
    const g = pool.submit(add, 3, 4);
    await waitFor(() => lines.some((l) => l.includes('with no worker node connected')), 12_000, 'the no-slot warning');
    const warnings = lines.filter((l) => l.includes('with no worker node connected'));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^warn 2 task\(s\) have waited 5 s with no worker node connected; start one with: curl -fsSO http:\/\/127\.0\.0\.1:\d+\/wsfutures\/worker\.mjs && node worker\.mjs --connect 127\.0\.0\.1:\d+/,
    );
    const node = spawnWorker({ url: pool.url!, token: pool.token, name: 'remote-1' });
    assert.equal(await f, 3);
    assert.equal(await g, 7);
    assert.ok(lines.some((l) => /^info worker node remote-1 \(.*\) joined: 1 slot\(s\), node /.test(l)), lines.join('\n'));
    node.signal('SIGTERM'); // drains, then leaves
    await node.exited;
    await waitFor(() => lines.some((l) => l.includes('remote-1') && (l.includes(' left') || l.includes(' lost'))), 10_000, 'the leave line');
    assert.equal(lines.filter((l) => l.includes('remote-1') && l.includes(' left (drained)')).length, 1, lines.join('\n'));
  } finally {
    await pool.shutdown();
  }
});

test.run();
