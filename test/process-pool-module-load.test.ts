/**
 * A task module that cannot be imported on some worker node (a package it imports is not
 * installed there): the node says so on its own stderr with the command that fixes it, the
 * coordinator names the node, the module's tasks run only on nodes that loaded it, and they fail
 * with WSF_MODULE_LOAD_FAILED once no connected node can run them. Node and Deno worker nodes alike.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModuleLoadError } from '../coordinator/index.ts';
import { add, pid } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';
import { ROOT, spawnWorker, startPool, TASKS_URL, waitFor, within, type WorkerProcess } from './helpers/cluster.ts';

/**
 * A temp tree: `app/` holds a task module importing the package `wsf-test-dep` and has it
 * installed (the coordinator imports the module from there), `good/` has the package installed,
 * `bad/` has no node_modules at all. Each node caches shipped modules under its own working
 * directory, so the package resolves on one and not on the other.
 */
function makeTree(): { root: string; app: string; good: string; bad: string; moduleUrl: URL; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'wsf-module-load-'));
  const installDep = (dir: string) => {
    const pkg = join(dir, 'node_modules', 'wsf-test-dep');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'wsf-test-dep', version: '1.0.0', type: 'module', exports: './index.js' }));
    writeFileSync(join(pkg, 'index.js'), 'export default function pad(s) { return `<${s}>`; }\n');
  };
  const app = join(root, 'app');
  const good = join(root, 'good');
  const bad = join(root, 'bad');
  for (const d of [app, good, bad]) mkdirSync(d);
  installDep(app);
  installDep(good);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module' }));
  const file = join(app, 'dep-tasks.ts');
  writeFileSync(
    file,
    `import pad from 'wsf-test-dep';\n` +
      `export function padded(s: string): { value: string; pid: number } {\n  return { value: pad(s), pid: process.pid };\n}\n`,
  );
  return { root, app, good, bad, moduleUrl: pathToFileURL(file), remove: () => rmSync(root, { recursive: true, force: true }) };
}

type Padded = (s: string) => { value: string; pid: number };

test('a module that cannot load on one node: both sides say so, its tasks run on the node that loaded it, and fail once only that node is left', async () => {
  const tree = makeTree();
  const { padded } = (await import(tree.moduleUrl.href)) as { padded: Padded };
  const logs: string[] = [];
  const pool = await startPool({ maxWorkers: 0, tasks: [TASKS_URL, tree.moduleUrl], log: (_level, m) => logs.push(m) });
  let good: WorkerProcess | undefined;
  let bad: WorkerProcess | undefined;
  try {
    good = spawnWorker({ url: pool.url!, token: pool.token, cwd: tree.good, name: 'good' });
    bad = spawnWorker({ url: pool.url!, token: pool.token, cwd: tree.bad, name: 'bad' });
    // A node that failed a module still counts its slots.
    await pool.ready(2, { timeout: 30_000 });

    // The bad node's own stderr: the module, the package, the command and where to run it.
    const expected =
      `task module dep-tasks.ts imports package 'wsf-test-dep', which is not installed on this machine: run \`npm install wsf-test-dep\` in ${tree.bad} (where the worker runs)`;
    await waitFor(() => bad!.output.includes(expected), 10_000, "the bad node's message");
    assert.is(bad.output.split(expected).length - 1, 1, 'said once, not once per thread');
    assert.not.match(good.output, /not installed/);
    // The coordinator's log names the node.
    const said = logs.filter((m) => m.includes('could not import task module') && m.includes('dep-tasks.ts'));
    assert.ok(said.length >= 1, `the coordinator logs it: ${logs.join('\n')}`);
    assert.match(said[0]!, /worker node bad \(/);
    assert.match(said[0]!, /wsf-test-dep/);

    // Every task of that module runs on the good node; the other module's tasks still use both.
    const runs = await within(Promise.all(Array.from({ length: 12 }, (_, i) => pool.submit(padded, `x${i}`))), 20_000, 'the padded tasks');
    assert.equal(runs.map((r) => r.value), Array.from({ length: 12 }, (_, i) => `<x${i}>`));
    assert.equal(new Set(runs.map((r) => r.pid)), new Set([good.child.pid]), 'all on the good node');
    assert.is(await pool.submit(add, 2, 3), 5);

    // Only the bad node left: the module's tasks fail at once, naming the node and the error.
    await good.kill();
    await waitFor(() => pool.workers().length === 1, 15_000, 'the good node gone');
    const err = (await within(rejects(pool.submit(padded, 'late'), ModuleLoadError), 5_000, 'the failure')) as ModuleLoadError;
    assert.is(err.code, 'WSF_MODULE_LOAD_FAILED');
    assert.match(err.message, /padded\(\)/);
    assert.match(err.message, /worker node bad \(/);
    assert.match(err.message, /npm install wsf-test-dep/);
    // The bad node still runs the module it loaded.
    assert.is(await within(pool.submit(pid), 10_000, 'a task of the other module'), bad.child.pid);
  } finally {
    await good?.kill();
    await bad?.kill();
    await pool.shutdown({ cancelFutures: true });
    tree.remove();
  }
});

test('tasks queued before any node connects wait, then fail with WSF_MODULE_LOAD_FAILED when the only node cannot load their module', async () => {
  const tree = makeTree();
  const { padded } = (await import(tree.moduleUrl.href)) as { padded: Padded };
  const pool = await startPool({ maxWorkers: 0, tasks: [TASKS_URL, tree.moduleUrl] });
  let bad: WorkerProcess | undefined;
  try {
    const early = pool.submit(padded, 'early');
    await new Promise((r) => setTimeout(r, 300));
    assert.is(early.done(), false, 'with no node connected it waits, as any task does');
    bad = spawnWorker({ url: pool.url!, token: pool.token, cwd: tree.bad, name: 'bad' });
    const err = (await within(rejects(early, ModuleLoadError), 30_000, 'the failure')) as ModuleLoadError;
    assert.is(err.code, 'WSF_MODULE_LOAD_FAILED');
    assert.match(err.message, /worker node bad \(/);
    assert.is(await within(pool.submit(add, 1, 1), 10_000, 'a task of the other module'), 2);
  } finally {
    await bad?.kill();
    await pool.shutdown({ cancelFutures: true });
    tree.remove();
  }
});

test('a Deno worker node that cannot import the module says the same, and its tasks fail with WSF_MODULE_LOAD_FAILED', async () => {
  const tree = makeTree();
  const { padded } = (await import(tree.moduleUrl.href)) as { padded: Padded };
  const pool = await startPool({ maxWorkers: 0, tasks: [TASKS_URL, tree.moduleUrl] });
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'deno'), [
    'run',
    '-A',
    join(ROOT, 'worker-node', 'cli.ts'),
    '--connect',
    pool.url!,
    '--concurrency',
    '1',
    '--name',
    'deno-bad',
  ], {
    cwd: tree.bad,
    env: { ...process.env, WSFUTURES_TOKEN: pool.token, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const exited = new Promise((r) => child.on('exit', r));
  try {
    await pool.ready(1, { timeout: 30_000 });
    await waitFor(() => output.includes("imports package 'wsf-test-dep', which is not installed"), 10_000, "the Deno node's message");
    assert.ok(output.includes(`run \`npm install wsf-test-dep\` in ${tree.bad}`), output);
    const err = (await within(rejects(pool.submit(padded, 'x'), ModuleLoadError), 5_000, 'the failure')) as ModuleLoadError;
    assert.is(err.code, 'WSF_MODULE_LOAD_FAILED');
    assert.match(err.message, /worker node deno-bad \(/);
    assert.is(await within(pool.submit(add, 2, 2), 10_000, 'a task of the other module'), 4);
  } finally {
    child.kill('SIGKILL');
    await exited;
    await pool.shutdown({ cancelFutures: true });
    tree.remove();
  }
});

test.run();
