/**
 * What a pool's local worker nodes print reaches the coordinator's stderr, as a Python process
 * pool's children share their parent's: a task's console.error is not lost. The nodes' own
 * informational lines stay out of the way.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { ROOT, within } from './helpers/cluster.ts';

const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

test("a task's console.error on a local worker node shows on the coordinator's stderr", async () => {
  const marker = `marker-${Math.random().toString(36).slice(2)}`;
  const cmd = IS_DENO ? (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath() : process.execPath;
  const args = IS_DENO ? ['run', '-A', 'test/fixtures/stderr-coordinator.ts', marker] : ['--import', 'tsx', 'test/fixtures/stderr-coordinator.ts', marker];
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await within(new Promise<number | null>((r) => child.on('close', r)), 60_000, 'the coordinator script');
  assert.is(code, 0, stderr);
  assert.is(stdout.trim(), String(marker.length), 'the task ran');
  assert.ok(stderr.includes(marker), `the task's stderr line is shown:\n${stderr}`);
  assert.not.match(stderr, /connected to ws:/, 'no informational line from the node');
});

test.run();
