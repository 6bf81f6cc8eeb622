/**
 * How a coordinator program ends: one that forgets shutdown() still exits once its work is done
 * (as a Python program does), leaving no worker node behind; one that shuts its pool down before
 * the local node connected prints no connection error.
 */
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT, waitFor, within } from './helpers/cluster.ts';

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

/** Runs test/fixtures/forgetful-coordinator.ts in this runtime; `stdoutAt` is when stdout last grew. */
async function runProgram(mode: string): Promise<{ code: number | null; stdout: string; stderr: string; stdoutAt: number; exitedAt: number }> {
  const cmd = IS_DENO ? (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath() : process.execPath;
  const file = 'test/fixtures/forgetful-coordinator.ts';
  const args = IS_DENO ? ['run', '-A', file, mode] : ['--import', 'tsx', file, mode];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let stdoutAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    stdoutAt = Date.now();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await within(new Promise<number | null>((r) => child.on('exit', r)), 60_000, `the ${mode} program`).catch((err) => {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; stdout: ${stdout}; stderr: ${stderr}`);
  });
  return { code, stdout, stderr, stdoutAt, exitedAt: Date.now() };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a program that submits work and never calls shutdown() exits by itself once the work is done, and its worker node goes too', async () => {
  const run = await runProgram('forget');
  assert.is(run.code, 0, run.stderr);
  const m = /^sums 3 7 node (\d+)$/m.exec(run.stdout);
  assert.ok(m, `the results were printed: ${run.stdout}`);
  // Generous for a loaded 2-core machine; before, it never exited at all.
  assert.ok(run.exitedAt - run.stdoutAt < 5_000, `exited ${run.exitedAt - run.stdoutAt} ms after its last output`);
  const nodePid = Number(m![1]);
  // The node sees its connection close when the program ends, and exits: no orphan.
  await waitFor(() => !alive(nodePid), 10_000, `worker node ${nodePid} exiting`);
});

test('a pool shut down before its local worker node connected prints no connection error', async () => {
  const run = await runProgram('close-early');
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout.trim(), 'closed');
  assert.not.match(run.stderr, /WSF_CONNECT_FAILED|could not connect/, `stderr: ${run.stderr}`);
});

test.run();
