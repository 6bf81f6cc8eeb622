/**
 * Every `scripts/examples/*.ts` runs as a user would run it (`npx tsx scripts/examples/X.ts`),
 * shortened with WSF_DEMO_SCALE, exits 0 and prints the lines that show the seed's point.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const examplesDir = join(root, 'scripts', 'examples');
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one example script with the same runtime as this test, at a small scale. */
function runExample(file: string, scale = '0.1'): Promise<Run> {
  const path = join(examplesDir, file);
  const cmd = process.execPath;
  const args = isDeno ? ['run', '-A', path] : ['--import', 'tsx', path];
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, WSF_DEMO_SCALE: scale, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function exitedCleanly(run: Run): void {
  assert.is(run.code, 0, `exit code ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`);
}

const lines = (text: string, pattern: RegExp): string[] => text.split('\n').filter((l) => pattern.test(l));

test('every script in scripts/examples is covered by this file', () => {
  const scripts = readdirSync(examplesDir).filter((f) => /^\d\d-.*\.ts$/.test(f)).sort();
  assert.equal(scripts, ['01-do-something.ts', '02-as-completed.ts', '03-factorials.ts', '04-errors.ts', '05-web-scraping.ts', '06-image-processing.ts', '07-pitfalls.ts']);
});

// The scripts start pools of their own: run them two at a time (the runner's budget is two
// cores), then check each.
const runs = new Map<string, Promise<Run>>();
const pending = ['01-do-something.ts', '02-as-completed.ts', '03-factorials.ts', '04-errors.ts', '05-web-scraping.ts', '06-image-processing.ts', '07-pitfalls.ts'];
const lanes: Promise<void>[] = [];
const resolvers = new Map<string, (r: Run) => void>();
for (const f of pending) runs.set(f, new Promise((r) => resolvers.set(f, r)));
for (let lane = 0; lane < 2; lane++) {
  lanes.push((async () => {
    for (let f = pending.shift(); f; f = pending.shift()) resolvers.get(f)!(await runExample(f));
  })());
}

test("01-do-something: sequential, submit and map each finish, in the seed's words", async () => {
  const run = await runs.get('01-do-something.ts')!;
  exitedCleanly(run);
  assert.is(lines(run.stdout, /^Finished in \d+(\.\d+)? second\(s\)$/).length, 3);
  assert.is(lines(run.stdout, /^Sleeping for 0\.1 second\(s\)\.\.\.$/).length, 6);
  assert.is(lines(run.stdout, /^Done Sleeping\.\.\.0\.1$/).length, 2);
});

test('02-as-completed: results arrive in completion order, shortest sleep before longest', async () => {
  const run = await runs.get('02-as-completed.ts')!;
  exitedCleanly(run);
  const done = lines(run.stdout, /^Done Sleeping\.\.\./).map((l) => Number(l.slice('Done Sleeping...'.length)));
  assert.is(done.length, 5);
  assert.equal([...done].sort(), [0.1, 0.2, 0.3, 0.4, 0.5]);
  // Submitted 0.5, 0.4, 0.3, 0.2, 0.1 on two workers: 0.4 (worker B) finishes before 0.5
  // (worker A), and 0.1 is last to start yet never last to finish.
  assert.ok(done.indexOf(0.4) < done.indexOf(0.5), `order was ${done.join(', ')}`);
  assert.not.equal(done, [0.5, 0.4, 0.3, 0.2, 0.1], 'results came in submission order');
  assert.ok(/^Finished in /m.test(run.stdout));
});

test('03-factorials: four digit counts on the pool and on one core, no giant numbers printed', async () => {
  const run = await runs.get('03-factorials.ts')!;
  exitedCleanly(run);
  // 100!, 1000!, 10000! and 100000! at scale 0.1
  const finals = lines(run.stdout, /^Final Result: a number of \d+ digits$/);
  assert.equal(finals.map((l) => Number(/(\d+) digits/.exec(l)![1])), [158, 2568, 35660, 456574, 158, 2568, 35660, 456574]);
  assert.ok(/^Speed-up over one core: \d+\.\d\dx on \d+ core\(s\)\.$/m.test(run.stdout));
  assert.is(lines(run.stdout, /^Finished in /).length, 4);
  assert.ok(run.stdout.split('\n').every((l) => l.length < 400), 'a factorial was printed in full');
});

test("04-errors: the error for 0 is caught at position 2 with the worker's stack; the others succeed", async () => {
  const run = await runs.get('04-errors.ts')!;
  exitedCleanly(run);
  const outcomes = lines(run.stdout, /^(Result|Error): /);
  assert.equal(outcomes, ['Result: 2', 'Result: 5', 'Error: Cannot divide by zero!  (position 2, input 0, RangeError)', 'Result: 10']);
  assert.ok(/at (Object\.)?riskyFunction/.test(run.stdout), 'the stack names the task function');
  assert.ok(/wsfutures worker node "local-\d+"/.test(run.stdout), 'the stack names the worker node');
});

test('05-web-scraping: five pages downloaded sequentially and concurrently from the local server', async () => {
  const run = await runs.get('05-web-scraping.ts')!;
  exitedCleanly(run);
  assert.is(lines(run.stdout, /^Downloaded http:\/\/127\.0\.0\.1:\d+\/www\.\w+\.com: \d+ bytes$/).length, 10);
  const [sequential, concurrent] = lines(run.stdout, /^Finished in /).map((l) => Number(/in ([\d.]+)/.exec(l)![1]));
  assert.ok(concurrent! < sequential!, `concurrent ${concurrent} s is not faster than sequential ${sequential} s`);
});

test('06-image-processing: processed_* JPEG files exist, 200×200', async () => {
  const run = await runs.get('06-image-processing.ts')!;
  exitedCleanly(run);
  const written = lines(run.stdout, /^Image Processing Result: true \(wrote .*\)$/).map((l) => /wrote (.*)\)$/.exec(l)![1]!);
  assert.is(written.length, 4);
  for (const file of written) {
    assert.ok(/processed_image\d\.jpg$/.test(file), file);
    assert.ok(existsSync(file), `${file} was not written`);
  }
  const { Jimp } = await import('jimp');
  const img = await Jimp.read(written[0]!);
  assert.equal([img.bitmap.width, img.bitmap.height], [200, 200]);
});

test('07-pitfalls: serialization and maxWorkers are measured, with figures', async () => {
  const run = await runs.get('07-pitfalls.ts')!;
  exitedCleanly(run);
  assert.ok(/^on the pool, sending the \d+ MB argument: +\d+\.\d\d s/m.test(run.stdout));
  assert.ok(/^on the pool, sending a recipe \(2 numbers\): \d+\.\d\d s/m.test(run.stdout));
  assert.ok(/^new pool, maxWorkers: \d+ \(2 × cores\) +\d+\.\d\d s$/m.test(run.stdout));
  assert.is(lines(run.stdout, /^AsyncPoolExecutor, maxWorkers: \d+ +\d+\.\d\d s$/).length, 3);
  assert.not.ok(run.stdout.includes('['), 'no progress bar when stdout is not a terminal');
});

test.after(async () => {
  await Promise.all(lanes);
});

test.run();
