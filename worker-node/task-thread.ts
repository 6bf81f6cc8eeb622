/**
 * One task thread, whichever threads the runtime does best: `node:worker_threads` under Node,
 * the web-standard `Worker` under Deno. Deno's node:worker_threads emulation moves a large
 * buffer slowly (16 MiB took ~5 s per postMessage, cloned or transferred; its web Worker takes
 * ~2 ms to transfer the same), and a task's arguments and results cross this boundary.
 */
import { Worker as NodeWorker } from 'node:worker_threads';
import { IS_DENO } from '../shared/runtime.ts';

export interface TaskThread {
  post(message: unknown, transfer?: ArrayBuffer[]): void;
  terminate(): Promise<unknown>;
}

export interface TaskThreadEvents {
  message(data: unknown): void;
  /** The thread died: an uncaught error outside any task, or it exited. */
  death(how: string): void;
}

/**
 * The module a task thread starts from. From the TypeScript sources (development in the
 * repository) it is thread-entry.mjs, which registers tsx first; the compiled package has a
 * thread-entry.js of its own; the single-file worker (standalone.ts) starts its threads from
 * itself and says so with setThreadEntry.
 */
let entry = new URL(import.meta.url.endsWith('.ts') ? './thread-entry.mjs' : './thread-entry.js', import.meta.url);

/** Task threads start from `url` from now on (the single-file worker passes its own URL). */
export function setThreadEntry(url: URL): void {
  entry = url;
}

interface WebWorkerLike {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  terminate(): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string; preventDefault(): void }) => void) | null;
}

export function startTaskThread(events: TaskThreadEvents): TaskThread {
  let dead = false;
  const die = (how: string) => {
    if (dead) return;
    dead = true;
    events.death(how);
  };
  if (IS_DENO) {
    const WebWorker = (globalThis as unknown as { Worker: new (url: URL, options: { type: 'module' }) => WebWorkerLike }).Worker;
    const worker = new WebWorker(entry, { type: 'module' });
    worker.onmessage = (e) => events.message(e.data);
    worker.onerror = (e) => {
      e.preventDefault(); // an error in a task thread must not end the worker node
      die(`threw outside any task: ${e.message ?? 'unknown error'}`);
    };
    return {
      post: (message, transfer = []) => worker.postMessage(message, transfer),
      terminate: async () => {
        dead = true;
        worker.terminate();
      },
    };
  }
  const worker = new NodeWorker(entry);
  worker.on('message', (data) => events.message(data));
  worker.on('error', (err) => die(`threw outside any task: ${err?.stack ?? err}`));
  worker.on('exit', (code) => die(`exited with code ${code}`));
  return {
    post: (message, transfer = []) => worker.postMessage(message, transfer),
    terminate: () => {
      dead = true;
      worker.removeAllListeners();
      worker.on('error', () => {});
      return worker.terminate();
    },
  };
}
