/**
 * What a running task can learn about itself: its AbortSignal, id and attempt. The same store
 * serves the local AsyncPoolExecutor and the threads of a worker node, so a task module that
 * calls `currentTask()` behaves the same wherever it runs.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface TaskContext {
  /** Fires when the task is aborted (`future.abort()`, a task timeout, or shutdown). */
  readonly signal: AbortSignal;
  /** The task's id, unique within its executor. */
  readonly taskId: string;
  /** 1 on the first run; higher when the task is re-run after its worker was lost. */
  readonly attempt: number;
  /**
   * Sends `value` (anything a result may be) to the coordinator while the task runs; it
   * reaches the future's `onReport` listeners (or `submitWith({ onReport })`). Resolves once
   * the value is on its way; at most MAX_REPORTS_PER_SECOND per task — a faster caller waits,
   * which is the back-pressure. Reports made after the task ended are dropped.
   */
  report(value: unknown): Promise<void>;
  /**
   * Whether the worker node running the task is draining: it takes no new task and leaves once
   * its running ones have ended. A task that would go on in rounds (a load-test segment) can end
   * early with what it has instead of holding the node back. Always false in-process.
   */
  readonly draining: boolean;
}

/** The most reports a task sends per second; `report()` waits for its turn beyond that. */
export const MAX_REPORTS_PER_SECOND = 20;

// One store per process (per thread), even if two copies of this module are loaded (e.g. the
// worker node's and the one a shipped task module imports from its own node_modules).
const KEY = Symbol.for('wsfutures.taskContext');
const holder = globalThis as unknown as Record<symbol, AsyncLocalStorage<TaskContext> | undefined>;
/** @internal The store behind currentTask() for in-process tasks. */
export const taskStorage: AsyncLocalStorage<TaskContext> = (holder[KEY] ??= new AsyncLocalStorage<TaskContext>());

/**
 * The context of the task that is running now, or undefined outside a task. The same object is
 * also passed as `this` to task functions declared with `function`.
 *
 * @example
 * export async function download(url: string) {
 *   const res = await fetch(url, { signal: currentTask()?.signal });
 *   return res.text();
 * }
 */
export function currentTask(): TaskContext | undefined {
  return taskStorage.getStore() ?? threadTask.current;
}

/**
 * The task a worker node's task thread is running. A task thread runs one task at a time, start
 * to finish (its async continuations included), so a plain variable serves there and costs
 * nothing (only a callback that a finished task left behind would see the next task's context); AsyncLocalStorage would turn on promise hooks for the whole thread, which made every
 * await of every task slower. (The in-process AsyncPoolExecutor runs tasks concurrently, so it
 * keeps AsyncLocalStorage.) Shared through globalThis like the storage above.
 */
const THREAD_KEY = Symbol.for('wsfutures.threadTask');
const threadHolder = globalThis as unknown as Record<symbol, { current: TaskContext | undefined } | undefined>;
/** @internal */
export const threadTask: { current: TaskContext | undefined } = (threadHolder[THREAD_KEY] ??= { current: undefined });
