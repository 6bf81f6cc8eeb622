/**
 * The single-file worker node: `dist/worker.mjs`, which a coordinator serves at
 * `/wsfutures/worker.mjs` so that a machine with nothing but Node or Deno joins with one command.
 * It is the worker-node CLI with its dependencies bundled in, and it is also the entry of its own
 * task threads: one file to download, nothing to install.
 */
import { isMainThread } from 'node:worker_threads';
import { IS_DENO as isDeno } from '../shared/runtime.ts';

// Under Deno task threads are web Workers, whose global scope is a WorkerGlobalScope.
const inTaskThread = isDeno ? typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined' : !isMainThread;

if (inTaskThread) {
  // As thread-entry.mjs: a Deno web Worker drops messages that arrive before its handler.
  if (isDeno) {
    const early: unknown[] = [];
    const scope = globalThis as unknown as { onmessage: (e: { data: unknown }) => void; __wsfuturesEarlyMessages?: unknown[] };
    scope.onmessage = (e) => early.push(e.data);
    scope.__wsfuturesEarlyMessages = early;
  }
  await import('./thread.ts');
} else {
  const { setThreadEntry } = await import('./task-thread.ts');
  setThreadEntry(new URL(import.meta.url));
  await import('./cli.ts');
}
