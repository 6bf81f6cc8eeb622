/**
 * Joining from a bare machine: the coordinator serves the single-file worker at
 * /wsfutures/worker.mjs; in an empty directory (no node_modules, no wsfutures), `node worker.mjs`
 * after a download, and `deno run -A http://…/worker.mjs` straight from the pool's URL, start
 * worker nodes that run the shipped tasks. `kill -9` of the pid the command started leaves no
 * process of that node, and the coordinator sees it gone.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { ProcessPoolExecutor } from '../coordinator/index.ts';
import { factorial, pid } from './fixtures/tasks.ts';
import { startPool, waitFor, within } from './helpers/cluster.ts';

const run = promisify(execFile);
const IS_DENO = 'Deno' in globalThis;
const NODE = IS_DENO ? 'node' : process.execPath;
const DENO = join(dirname(fileURLToPath(import.meta.resolve('deno/bin.cjs'))), 'deno');

const dirs: string[] = [];
function emptyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-bare-'));
  dirs.push(dir);
  return dir;
}
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function startNode(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return { child, exited, output: () => output };
}

/** Runs tasks on the node, kills it with SIGKILL, and checks nothing of it is left. */
async function useThenKill(pool: ProcessPoolExecutor, node: ReturnType<typeof startNode>, runtime: string): Promise<void> {
  try {
    await pool.ready(2, { timeout: 60_000 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nnode output:\n${node.output()}`);
  }
  assert.match(pool.workers()[0]!.runtime, runtime);
  const results = await Promise.all([20, 21, 22].map((n) => pool.submit(factorial, n)));
  assert.equal(results, [2432902008176640000n, 51090942171709440000n, 1124000727777607680000n]);
  assert.equal(await pool.submit(pid), node.child.pid, 'tasks ran in the process the command started');
  process.kill(node.child.pid!, 'SIGKILL');
  await within(node.exited, 10_000, 'the killed node exiting');
  await waitFor(() => pool.workers().length === 0 && pool.slots === 0, 10_000, 'the pool seeing the node gone');
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=']);
  const children = stdout.split('\n').filter((l) => l.trim().split(/\s+/)[1] === String(node.child.pid));
  assert.equal(children, [], 'no process of the killed node is left');
}

test('the coordinator serves the single-file worker, with its SHA-256, and 404 for anything else', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  try {
    const base = `http://127.0.0.1:${new URL(pool.url!).port}`;
    const res = await fetch(`${base}/wsfutures/worker.mjs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, 'javascript');
    const body = new Uint8Array(await res.arrayBuffer());
    assert.equal(res.headers.get('x-wsfutures-sha256'), createHash('sha256').update(body).digest('hex'));
    assert.ok(body.byteLength > 50_000 && body.byteLength < 2_000_000, `${body.byteLength} bytes`);
    console.log(`worker.mjs: ${(body.byteLength / 1024).toFixed(0)} KiB`);
    const other = await fetch(`${base}/elsewhere`);
    assert.equal(other.status, 404);
    await other.text();
    assert.ok(pool.joinCommands().some((c) => c.startsWith(`curl -fsSO ${base}/wsfutures/worker.mjs && node worker.mjs --connect 127.0.0.1:`)), pool.joinCommands().join('\n'));
  } finally {
    await pool.shutdown();
  }
});

test('Node with nothing installed: download worker.mjs into an empty directory, run it, kill -9 it', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  try {
    const port = new URL(pool.url!).port;
    const dir = emptyDir();
    const res = await fetch(`http://127.0.0.1:${port}/wsfutures/worker.mjs`);
    writeFileSync(join(dir, 'worker.mjs'), new Uint8Array(await res.arrayBuffer()));
    assert.equal(readdirSync(dir), ['worker.mjs']);
    const node = startNode(NODE, ['worker.mjs', '--connect', `127.0.0.1:${port}`, '--concurrency', '2'], dir, { WSFUTURES_TOKEN: pool.token });
    await useThenKill(pool, node, 'node');
  } finally {
    await pool.shutdown();
  }
});

test('Deno with nothing installed: deno run -A http://HOST:PORT/wsfutures/worker.mjs, kill -9 it', async () => {
  const pool = await startPool({ maxWorkers: 0 });
  try {
    const port = new URL(pool.url!).port;
    const dir = emptyDir();
    // A cache of its own, so nothing downloaded before helps it.
    const node = startNode(DENO, ['run', '-A', `http://127.0.0.1:${port}/wsfutures/worker.mjs`, '--connect', `127.0.0.1:${port}`, '--concurrency', '2'], dir, {
      WSFUTURES_TOKEN: pool.token,
      DENO_DIR: join(dir, '.deno'),
    });
    await useThenKill(pool, node, 'deno');
  } finally {
    await pool.shutdown();
  }
});

test('a pool listening on a wildcard address advertises addresses a worker can dial, never 0.0.0.0', async () => {
  const pool = await startPool({ maxWorkers: 1, listen: { host: '0.0.0.0' }, token: 'a-token-for-the-lan' });
  try {
    assert.not.match(pool.url!, '0.0.0.0');
    const commands = pool.joinCommands();
    assert.ok(commands.length >= 3);
    for (const c of commands) assert.not.match(c, '0.0.0.0');
    // The local node still joined (over loopback).
    assert.equal(pool.slots, 1);
  } finally {
    await pool.shutdown();
  }
});

test.run();
