/** Shared by the chaos tests: the executions recorded by test/fixtures/chaos-tasks.ts. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, waitFor } from './cluster.ts';

export const CHAOS_TASKS_URL = new URL('../fixtures/chaos-tasks.ts', import.meta.url);
export const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined';

/** A fresh directory for execution logs; `remove()` in a `finally`. */
export function logDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wsf-chaos-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every recorded execution: task index → the pids that ran it (once per execution). */
export function executions(dir: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const name of readdirSync(dir)) {
    const pid = Number(name.replace(/\.log$/, ''));
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const i = Number(line);
      const list = out.get(i);
      if (list) list.push(pid);
      else out.set(i, [pid]);
    }
  }
  return out;
}

/** Heap and RSS in MiB, for the figures the tests print. */
export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** test/fixtures/chaos-coordinator.ts running as its own process, under the test's runtime. */
export interface CoordinatorProcess {
  child: ChildProcess;
  readonly output: string;
  /** The first JSON line it printed with a field `key`, parsed, once it has printed one. */
  line<T>(key: string, timeoutMs?: number): Promise<T>;
  exited: Promise<unknown>;
}

export function spawnCoordinator(args: string[]): CoordinatorProcess {
  const script = join(ROOT, 'test', 'fixtures', 'chaos-coordinator.ts');
  const [cmd, runArgs] = IS_DENO ? [join(ROOT, 'node_modules', '.bin', 'deno'), ['run', '-A', script]] : [process.execPath, ['--import', 'tsx', script]];
  const child = spawn(cmd, [...runArgs, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  const find = (key: string) => output.split('\n').find((l) => l.startsWith('{') && l.includes(`"${key}"`));
  return {
    child,
    get output() {
      return output;
    },
    async line<T>(key: string, timeoutMs = 30_000): Promise<T> {
      await waitFor(() => find(key) !== undefined, timeoutMs, `the coordinator printing "${key}" (its output: ${output})`);
      return JSON.parse(find(key)!) as T;
    },
    exited,
  };
}
