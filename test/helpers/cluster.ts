/**
 * Real clusters on loopback for the integration tests: a ProcessPoolExecutor (the coordinator)
 * and worker-node processes started the way a user starts them on another machine. Nothing
 * here is mocked; every helper returns something a `finally` can clean up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessPoolExecutor, type ProcessPoolExecutorOptions } from '../../coordinator/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TASKS_URL = new URL('../fixtures/tasks.ts', import.meta.url);
const CLI = join(ROOT, 'worker-node', 'cli.ts');
const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';
/**
 * The worker nodes these tests start are Node worker nodes whatever runs the test (as
 * coordinator/local-workers.ts does for `workerRuntime: 'node'`): under Deno,
 * `process.execPath` is deno itself, so node comes from the PATH.
 */
const NODE = IS_DENO ? 'node' : process.execPath;

/** A pool on loopback over the fixture tasks, quiet unless told otherwise, ready for `slots`. */
export async function startPool(options: Partial<ProcessPoolExecutorOptions> = {}, slots?: number): Promise<ProcessPoolExecutor> {
  const pool = new ProcessPoolExecutor({ tasks: TASKS_URL, maxWorkers: 1, log: false, ...options });
  const want = slots ?? (pool.maxWorkers > 0 ? pool.maxWorkers : undefined);
  try {
    if (want !== undefined) await pool.ready(want, { timeout: 30_000 });
    // With no local slots, ready() would wait for workers the test has yet to start: wait only
    // for the listening socket, so `pool.url` can be handed to them.
    else await waitFor(() => pool.url !== undefined, 10_000, 'the pool listening');
  } catch (err) {
    await pool.shutdown({ cancelFutures: true });
    throw err;
  }
  return pool;
}

/** A worker-node process the test started; `output` collects its stdout and stderr. */
export interface WorkerProcess {
  child: ChildProcess;
  readonly output: string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /**
   * Sends `sig` to it (nothing once it has exited). Use this, not `child.kill(sig)`: Deno's
   * node:child_process ignores every `child.kill()` after the first one (a SIGKILL after a
   * SIGSTOP left the process stopped), and reports a child it signalled as killed by that first
   * signal, even one that handled it and exited 0; `process.kill(pid, sig)` has neither problem.
   */
  signal(sig: NodeJS.Signals): void;
  /** Kills it with SIGKILL if still alive (SIGCONT first, in case a test stopped it). */
  kill(): Promise<void>;
}

export interface SpawnWorkerOptions {
  url: string;
  token?: string;
  cwd?: string;
  name?: string;
  concurrency?: number;
  /** Extra CLI flags (e.g. `--tasks FILE`, `--no-reconnect`). */
  args?: string[];
  env?: Record<string, string>;
  /**
   * A command that runs node for us, e.g. `['ip', 'netns', 'exec', NAME]` to start the node in
   * a network namespace (it must exec node, so that the pid is node's).
   */
  prefix?: string[];
}

/** Starts `node --import tsx worker-node/cli.ts --connect URL ...`, as a user would on a LAN machine. */
export function spawnWorker(options: SpawnWorkerOptions): WorkerProcess {
  const args = ['--import', import.meta.resolve('tsx'), CLI, '--connect', options.url, '--concurrency', String(options.concurrency ?? 1)];
  if (options.name) args.push('--name', options.name);
  args.push(...(options.args ?? []));
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  // The token goes by environment (as the docs recommend), so it is not in `ps`.
  if (options.token !== undefined) env.WSFUTURES_TOKEN = options.token;
  else delete env.WSFUTURES_TOKEN;
  const [cmd, ...cmdArgs] = [...(options.prefix ?? []), NODE, ...args];
  const child = spawn(cmd!, cmdArgs, { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // Whether it is gone is tracked here, not read from child.exitCode/signalCode: Deno sets
  // signalCode as soon as child.kill() is called, while the process may still be running.
  let gone = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true;
      resolve(code ?? signal ?? -1);
    });
  });
  const signal = (sig: NodeJS.Signals): void => {
    if (gone || child.pid === undefined) return;
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
  };
  return {
    child,
    get output() {
      return output;
    },
    exited,
    signal,
    async kill() {
      if (gone || child.pid === undefined) return;
      signal('SIGCONT');
      signal('SIGKILL');
      await exited;
    },
  };
}

/** Resolves once `predicate()` holds (it may be async), polling; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`waitFor(): ${what} did not hold within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with `p`'s value, or rejects if it takes longer than `ms` (so a hang fails a test). */
export async function within<T>(p: PromiseLike<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temp directory with no task files, whose node_modules links to the repo's. */
export function bareWorkDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-worker-'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
