/**
 * `await pool.ready()` means ready to run at full speed: every task thread of the connected
 * worker nodes has started and imported the task modules, so the first tasks do not pay for
 * loading them (a second or more on a cold node).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessPoolExecutor } from '../coordinator/index.ts';
import { whoAmI } from './fixtures/import-logging-tasks.ts';
import { within } from './helpers/cluster.ts';

test('after ready(), every task thread has imported the task module before any task ran', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-ready-'));
  const logFile = join(dir, 'imports.log');
  process.env.WSF_TEST_IMPORT_LOG = logFile; // inherited by the local worker node and its threads
  const pool = new ProcessPoolExecutor({ tasks: new URL('./fixtures/import-logging-tasks.ts', import.meta.url), maxWorkers: 2, log: false });
  try {
    await within(pool.ready(), 30_000, 'the pool');
    const workerImports = () => readFileSync(logFile, 'utf8').trim().split('\n').filter((line) => !line.startsWith(`${process.pid} `));
    assert.is(workerImports().length, 2, 'one import per task thread, before any task was submitted');
    const ran = await Promise.all([pool.submit(whoAmI), pool.submit(whoAmI), pool.submit(whoAmI)]);
    for (const who of ran) assert.ok(workerImports().includes(who), `${who} ran on a thread that had preloaded`);
  } finally {
    delete process.env.WSF_TEST_IMPORT_LOG;
    await pool.shutdown({ cancelFutures: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
