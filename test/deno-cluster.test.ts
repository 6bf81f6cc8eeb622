/**
 * Mixed Node/Deno clusters with real processes on loopback: a coordinator in this process with
 * a Deno worker node (started by hand, and as the pool's own local workers), and a Deno
 * coordinator (test/fixtures/deno-coordinator.ts) with a Node worker node. Values keep their
 * types across runtimes, remote errors keep name and code, a Deno node stops one running task
 * without dying and drains on SIGTERM. (Under WSF_TEST_RUNTIME=deno "this process" is Deno
 * too; the spawned processes keep their runtimes.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, ProcessPoolExecutor } from '../coordinator/index.ts';
import { doubleAll, echo, factorial, failWith, fillReused, pid, sleepThenEcho, spin } from './fixtures/tasks.ts';
import { rejects } from './helpers/assert.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const TASKS = new URL('./fixtures/tasks.ts', import.meta.url);
const DENO = join(root, 'node_modules', '.bin', 'deno');
const IS_DENO = 'Deno' in globalThis;
// Under Deno, process.execPath is deno itself: node comes from the PATH.
const NODE = IS_DENO ? 'node' : process.execPath;

interface Proc {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<number | null>;
}

const procs: Proc[] = [];

function start(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const p = { child, output: () => out, exited };
  procs.push(p);
  return p;
}

function denoWorker(pool: ProcessPoolExecutor, name: string, concurrency = 2): Proc {
  // The token goes by environment, as the CLI recommends.
  return start(DENO, ['run', '-A', 'worker-node/cli.ts', '--connect', pool.url!, '--concurrency', String(concurrency), '--name', name], { WSFUTURES_TOKEN: pool.token });
}

async function stopAll(): Promise<void> {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
}

async function within<T>(p: Promise<T>, ms: number, what: string, proc?: Proc): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms${proc ? `; its output:\n${proc.output()}` : ''}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function listeningPool(options: Partial<ConstructorParameters<typeof ProcessPoolExecutor>[0]> = {}): Promise<ProcessPoolExecutor> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 0, log: false, ...options });
  const end = Date.now() + 10_000;
  while (!pool.url) {
    if (Date.now() > end) throw new Error('the pool did not start listening');
    await new Promise((r) => setTimeout(r, 10));
  }
  return pool;
}

test.after.each(stopAll);

test('a Deno worker node runs tasks for this coordinator; types and errors round-trip', async () => {
  const pool = await listeningPool();
  try {
    const w = denoWorker(pool, 'deno-a');
    await within(pool.ready(2), 30_000, 'the Deno worker node connected', w);
    const [info] = pool.workers();
    assert.match(info!.runtime, /^deno 2\./);
    assert.is(info!.name, 'deno-a');
    assert.is(await pool.submit(pid), w.child.pid, 'ran in the Deno process');

    assert.is(await pool.submit(factorial, 30), 265252859812191058636308480000000n);
    const huge = 2n ** 200n + 1n;
    assert.is(await pool.submit(echo, -huge), -huge, 'a bigint beyond 64 bits');
    const when = new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 123));
    const nested = { when, m: new Map<unknown, unknown>([['k', new Set([1, 2])], [3n, [undefined, null]]]), bytes: new Uint8Array([1, 2, 255]), re: /a+b/gi };
    const back = await pool.submit(echo, nested);
    assert.ok(back.when instanceof Date && back.when.getTime() === when.getTime(), 'Date');
    assert.ok(back.m instanceof Map, 'Map');
    assert.equal([...back.m.keys()], ['k', 3n]);
    assert.ok(back.m.get('k') instanceof Set && (back.m.get('k') as Set<number>).has(2), 'Set in a Map');
    assert.equal(back.m.get(3n), [undefined, null]);
    assert.ok(back.bytes instanceof Uint8Array && back.bytes.join() === '1,2,255', 'Uint8Array');
    assert.ok(back.re instanceof RegExp && back.re.source === 'a+b' && back.re.flags === 'gi', 'RegExp');
    // Large typed arrays travel beside the msgpack bytes (fragments of their own) both ways.
    const arrays = [Float64Array.from({ length: 50_000 }, (_, i) => i / 8), Int32Array.from({ length: 50_000 }, (_, i) => -i)];
    const doubled = await pool.submit(doubleAll, arrays);
    assert.ok(doubled[0] instanceof Float64Array && doubled[0][49_999] === (49_999 / 8) * 2, 'a large Float64Array, doubled on the Deno node');
    assert.ok(doubled[1] instanceof Int32Array && doubled[1][49_999] === -99_998, 'a large Int32Array, doubled on the Deno node');
    const reused = await Promise.all([1, 2, 3].map((v) => pool.submit(fillReused, v)));
    assert.equal(reused.map((r) => `${r[0]}…${r[r.length - 1]}`), ['1…1', '2…2', '3…3'], 'results of a task that reuses its buffer stay intact');
    assert.is(await pool.submit(sleepThenEcho, 5, 'async'), 'async', 'async task functions');

    const err = (await rejects(pool.submit(failWith, 'plain', 'boom'), Error)) as Error & { code?: string; cause?: unknown };
    assert.is(err.name, 'Error');
    assert.is(err.message, 'boom');
    assert.is(err.code, 'E_CODE');
    assert.match(err.stack ?? '', /wsfutures worker node "deno-a"/);
    assert.ok(err.cause instanceof Error && (err.cause as Error).message === 'inner cause', 'cause');
    const typeErr = await rejects(pool.submit(failWith, 'TypeError', 'bad type'), TypeError);
    assert.is((typeErr as TypeError).message, 'bad type');
    const custom = (await rejects(pool.submit(failWith, 'custom', 'over quota'), Error)) as Error & { code?: string; limit?: number };
    assert.is(custom.code, 'E_QUOTA');
    assert.is(custom.limit, 3);

    const squares: bigint[] = [];
    for await (const v of pool.map(factorial, [1, 2, 3, 4, 5, 6, 7], { chunksize: 3 })) squares.push(v);
    assert.equal(squares, [1n, 2n, 6n, 24n, 120n, 720n, 5040n]);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('a Deno worker node stops one running CPU-bound task without dying, and its other slot keeps working', async () => {
  const pool = await listeningPool();
  try {
    const w = denoWorker(pool, 'deno-b');
    await within(pool.ready(2), 30_000, 'the Deno worker node connected', w);
    const busy = pool.submit(spin, 60_000);
    const other = pool.submit(sleepThenEcho, 300, 'other slot');
    await within(
      new Promise<void>((r) => {
        const t = setInterval(() => busy.running() && (clearInterval(t), r()), 5);
      }),
      10_000,
      'the spin task running',
    );
    await new Promise((r) => setTimeout(r, 200));
    busy.abort();
    await rejects(busy, CancelledError);
    assert.is(await within(other, 10_000, 'the other task'), 'other slot');
    // The node is alive and its stopped slot is replaced: both slots run again.
    const after = await within(Promise.all([pool.submit(pid), pool.submit(pid)]), 20_000, 'tasks after the abort', w);
    assert.equal(after, [w.child.pid, w.child.pid]);
    assert.is(w.child.exitCode, null);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test('SIGTERM drains a Deno worker node: its running task finishes and reports before it exits', async () => {
  const pool = await listeningPool();
  try {
    const w = denoWorker(pool, 'deno-c', 1);
    await within(pool.ready(1), 30_000, 'the Deno worker node connected', w);
    const f = pool.submit(sleepThenEcho, 1000, 'finished while draining');
    await within(
      new Promise<void>((r) => {
        const t = setInterval(() => f.running() && (clearInterval(t), r()), 5);
      }),
      10_000,
      'the task running',
    );
    await new Promise((r) => setTimeout(r, 100));
    // By pid, not w.child.kill('SIGTERM'): Deno's node:child_process reports a child it sent a
    // signal to as killed by that signal (code null) even when the child handled it and exited
    // 0; with process.kill() both runtimes report the real exit code.
    process.kill(w.child.pid!, 'SIGTERM');
    assert.is(await within(f, 10_000, 'the drained task', w), 'finished while draining');
    const code = await within(w.exited, 10_000, 'the drained node exiting', w);
    assert.is(code, 0, 'exit code 0 after a drain');
    assert.match(w.output(), /SIGTERM: draining/);
  } finally {
    await pool.shutdown({ cancelFutures: true });
  }
});

test("workerRuntime: 'deno' starts the pool's local worker nodes under Deno", async () => {
  await using pool = new ProcessPoolExecutor({ tasks: TASKS, maxWorkers: 2, workerRuntime: 'deno', log: false });
  await within(pool.ready(2), 30_000, 'the local Deno worker node');
  assert.equal(pool.workers().map((w) => w.runtime.split(' ')[0]), ['deno']);
  assert.is(await pool.submit(pid), pool.localWorkerPid);
  assert.is(await pool.submit(factorial, 25), 15511210043330985984000000n);
  const err = (await rejects(pool.submit(failWith, 'RangeError', 'out of range'), RangeError)) as RangeError;
  assert.is(err.message, 'out of range');
});

test('a Deno coordinator runs tasks on a Node worker node', async () => {
  const coord = start(DENO, ['run', '-A', 'test/fixtures/deno-coordinator.ts']);
  let node: Proc | undefined;
  try {
    const first = await within(
      new Promise<string>((resolve) =>
        coord.child.stdout!.on('data', () => {
          const line = coord.output().split('\n').find((l) => l.startsWith('{"url"'));
          if (line) resolve(line);
        })
      ),
      30_000,
      'the Deno coordinator printing its url',
      coord,
    );
    const { url, token, runtime } = JSON.parse(first) as { url: string; token: string; runtime: string };
    assert.is(runtime, 'deno');
    node = start(NODE, ['--import', 'tsx', 'worker-node/cli.ts', '--connect', url, '--concurrency', '2', '--name', 'node-w', '--no-reconnect'], { WSFUTURES_TOKEN: token });
    assert.is(await within(coord.exited, 40_000, 'the Deno coordinator finishing', coord), 0, `coordinator output:\n${coord.output()}`);
    const lines = coord.output().split('\n').filter((l) => l.startsWith('{'));
    const result = JSON.parse(lines[1]!);
    assert.equal(result, {
      factorial: '265252859812191058636308480000000',
      map: [['a', 1], ['2n', [3]]],
      date: '2024-02-29T12:00:00.000Z',
      workerPid: node.child.pid,
      error: { name: 'Error', message: 'boom', code: 'E_CODE', stackNamesNode: true },
      map5: ['1', '2', '6', '24', '120'],
      workers: [`node ${(await nodeVersion())}`],
    });
    assert.is(await within(node.exited, 10_000, 'the Node worker node exiting after the coordinator shut down (--no-reconnect)', node), 0, node.output());
  } finally {
    await stopAll();
  }
});

async function nodeVersion(): Promise<string> {
  if (!IS_DENO) return process.versions.node;
  const p = start(NODE, ['-p', 'process.versions.node']);
  await p.exited;
  return p.output().trim();
}

test.run();
