/** Shared by the chaos tests: the executions recorded by test/fixtures/chaos-tasks.ts. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
