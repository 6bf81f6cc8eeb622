/**
 * Code shipping on a real cluster: a worker node started in a directory with no copy of the
 * task modules gets them from the coordinator and runs them; a node started with `--tasks`
 * compares its copy with the coordinator's and says when they differ.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { add, factorial, failWith, sleepThenWhere } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { bareWorkDir, ROOT, spawnWorker, startPool, TASKS_URL, waitFor, within } from './helpers/cluster.ts';

/** A bare directory holding a copy of the task module (and the one file it imports), at the same relative paths. */
function withTaskCopy(edit: (code: string) => string): { dir: string; file: string; remove(): void } {
  const work = bareWorkDir();
  mkdirSync(join(work.dir, 'test', 'fixtures'), { recursive: true });
  mkdirSync(join(work.dir, 'shared'), { recursive: true });
  copyFileSync(join(ROOT, 'shared', 'task-context.ts'), join(work.dir, 'shared', 'task-context.ts'));
  const file = join(work.dir, 'test', 'fixtures', 'tasks.ts');
  writeFileSync(file, edit(readFileSync(fileURLToPath(TASKS_URL), 'utf8')));
  return { dir: work.dir, file, remove: work.remove };
}

test('a worker node started in a directory with no task files runs shipped code', async () => {
  const work = bareWorkDir();
  assert.is(existsSync(join(work.dir, 'test')), false, 'no task files there');
  const cacheDir = join(work.dir, 'cache');
  const pool = await startPool({ maxWorkers: 0 });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, cwd: work.dir, name: 'bare', concurrency: 2, args: ['--cache-dir', cacheDir] });
  try {
    await pool.ready(2, { timeout: 30_000 });
    assert.equal(pool.workers().map((w) => w.name), ['bare']);
    assert.is(await pool.submit(add, 2, 40), 42);
    assert.is(await pool.submit(factorial, 25), factorial(25));
    const where = await pool.submit(sleepThenWhere, 1);
    assert.is(where.pid, worker.child.pid, 'it ran in the bare worker node');
    const err = await rejects(pool.submit(failWith, 'TypeError', 'shipped throw'), TypeError);
    assert.match((err as Error).stack ?? '', /failWith/);
    const cached = readdirSync(cacheDir).filter((f) => f.endsWith('.mjs'));
    assert.is(cached.length, 1, 'the shipped module is cached by its hash');
    assert.match(cached[0]!, /^[0-9a-f]{64}\.mjs$/);
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
    work.remove();
  }
});

test("a worker node whose --tasks copy differs says so, and runs the coordinator's version", async () => {
  const copy = withTaskCopy((code) => code.replace('return a + b;', 'return a + b + 1000; // stale local edit'));
  const pool = await startPool({ maxWorkers: 0 });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, cwd: copy.dir, name: 'stale', args: ['--tasks', copy.file, '--cache-dir', join(copy.dir, 'cache')] });
  try {
    await pool.ready(1, { timeout: 30_000 });
    await waitFor(() => /differs from the coordinator's/.test(worker.output), 10_000, 'the mismatch message');
    assert.match(worker.output, /tasks\.ts differs from the coordinator's/);
    assert.is(await within(pool.submit(add, 1, 2), 10_000, 'a task'), 3, "the coordinator's code ran");
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
    copy.remove();
  }
});

test('a worker node whose --tasks copy is identical uses it without a warning', async () => {
  const copy = withTaskCopy((code) => code);
  const pool = await startPool({ maxWorkers: 0 });
  const worker = spawnWorker({ url: pool.url!, token: pool.token, cwd: copy.dir, name: 'same', args: ['--tasks', copy.file, '--cache-dir', join(copy.dir, 'cache')] });
  try {
    await pool.ready(1, { timeout: 30_000 });
    assert.is(await within(pool.submit(add, 1, 2), 10_000, 'a task'), 3);
    assert.not.match(worker.output, /differs/);
  } finally {
    await worker.kill();
    await pool.shutdown({ cancelFutures: true });
    copy.remove();
  }
});

test.run();
