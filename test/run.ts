/**
 * Runs every `test/**\/*.test.ts` file in its own process (tests start servers and worker
 * processes; isolation keeps one file's leftovers from another's), two at a time on this 2-core
 * budget, and ends with the plain summary line `N passed, N failed`.
 *
 * Usage: npm test [-- name-filter ...]
 * Set WSF_TEST_RUNTIME=deno to run the files under Deno instead of Node.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');
const filters = process.argv.slice(2);
const parallel = Number(process.env.WSF_TEST_JOBS ?? 2);
const perFileTimeoutMs = Number(process.env.WSF_TEST_FILE_TIMEOUT_MS ?? 240_000);
const runtime = process.env.WSF_TEST_RUNTIME ?? 'node';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'fixtures' && name !== 'helpers') out.push(...findTests(p));
    } else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = findTests(testDir).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ok: boolean;
  output: string;
  ms: number;
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  const cmd = runtime === 'deno' ? join(root, 'node_modules', '.bin', 'deno') : process.execPath;
  const args = runtime === 'deno' ? ['run', '-A', file] : ['--import', 'tsx', file];
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[test runner] ${relative(root, file)} did not finish within ${perFileTimeoutMs} ms: killed\n`;
      child.kill('SIGKILL');
    }, perFileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      // uvu ends each file with "Total: N", "Passed: N", "Skipped: N".
      const total = Number(new RegExp(`Total:\\s+(\\d+)`).exec(output)?.[1] ?? NaN);
      const passed = Number(new RegExp(`Passed:\\s+(\\d+)`).exec(output)?.[1] ?? NaN);
      const skipped = Number(new RegExp(`Skipped:\\s+(\\d+)`).exec(output)?.[1] ?? 0);
      // uvu leaves test.skip() out of Total but counts tests left out by test.only() in it; a
      // failure hidden by that arithmetic still fails the file through its exit code (below).
      let failed = Number.isNaN(total) || Number.isNaN(passed) ? 1 : Math.max(0, total - passed - skipped);
      const ok = code === 0 && failed === 0 && !Number.isNaN(passed);
      if (!ok && failed === 0) failed = 1; // crashed, hung or exited non-zero: count the file
      resolve({ file, passed: Number.isNaN(passed) ? 0 : passed, failed, skipped, ok, output, ms: Date.now() - started });
    });
  });
}

const results: FileResult[] = [];
const queue = [...files];
async function lane(): Promise<void> {
  for (let f = queue.shift(); f; f = queue.shift()) {
    const r = await runFile(f);
    results.push(r);
    const status = r.ok ? 'ok  ' : 'FAIL';
    console.log(`${status} ${relative(root, r.file)}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)`);
    if (!r.ok) console.log(r.output.split('\n').map((l) => `    ${l}`).join('\n'));
  }
}
await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane));

const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
const skipped = results.reduce((a, r) => a + r.skipped, 0);
if (files.length === 0) console.log('no test files matched');
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
