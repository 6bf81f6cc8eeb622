/**
 * Task modules the pool cannot import while the program waits for it: the main script itself
 * (an error at once, from the constructor) or a module that imports the main script (a warning
 * after a few seconds). Before, both waited forever without a word.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT, waitFor, within } from './helpers/cluster.ts';

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

/** Starts a fixture program in this runtime; its stderr accumulates in `stderr()`. */
function start(file: string): { child: ChildProcess; stderr(): string; exited: Promise<number | null> } {
  const cmd = IS_DENO ? (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath() : process.execPath;
  const args = IS_DENO ? ['run', '-A', file] : ['--import', 'tsx', file];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, stderr: () => stderr, exited };
}

test('a main script that names itself as its task module fails at once, saying to move the task functions into a module of their own', async () => {
  const run = start('test/fixtures/self-task-module.ts');
  try {
    const code = await within(run.exited, 30_000, 'the program');
    assert.is.not(code, 0);
    assert.match(run.stderr(), /TypeError: tasks is the program's main module \(file:.*self-task-module\.ts\)/);
    assert.match(run.stderr(), /Move the task functions into a module of their own/);
  } finally {
    run.child.kill('SIGKILL');
  }
});

test('a task module that imports the main script: the pool warns that the import is stuck and why', async () => {
  const run = start('test/fixtures/cycle-main.ts');
  try {
    await waitFor(() => /have not finished importing/.test(run.stderr()), 20_000, 'the warning');
    assert.match(run.stderr(), /cycle-tasks\.ts/);
    assert.match(run.stderr(), /imports the program's main script/);
  } finally {
    run.child.kill('SIGKILL');
    await run.exited;
  }
});

test.run();
