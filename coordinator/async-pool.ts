/**
 * `AsyncPoolExecutor`: the seed guide's `ThreadPoolExecutor` for JavaScript. It runs sync or
 * async functions (closures welcome: nothing is serialized) in this process, at most
 * `maxWorkers` at once. Suited to I/O-bound work; CPU-bound work belongs on the process pool,
 * since JavaScript code in one process shares one thread.
 */
import { availableParallelism } from 'node:os';
import { CancelledError } from '../shared/errors.ts';
import { MAX_REPORTS_PER_SECOND, type TaskContext, taskStorage } from '../shared/task-context.ts';
import { type AnyFunction, BaseExecutor, checkPositiveInt, describeValue } from './executor.ts';
import type { Future } from './future.ts';

export interface AsyncPoolExecutorOptions {
  /**
   * How many tasks may run at once. Default: `min(32, cores + 4)`, Python's default for its
   * ThreadPoolExecutor. Since nothing blocks a thread here, I/O-bound pools can go far higher.
   */
  maxWorkers?: number;
}

interface WorkItem {
  future: Future<unknown>;
  fn: AnyFunction;
  args: unknown[];
  priority: number;
}

let nextTaskId = 0;

/**
 * A local pool for I/O-bound work.
 *
 * @example
 * await using pool = new AsyncPoolExecutor({ maxWorkers: 5 });
 * for await (const page of pool.map(download, urls)) console.log(page.length);
 */
export class AsyncPoolExecutor extends BaseExecutor {
  protected readonly kind = 'AsyncPoolExecutor';
  readonly maxWorkers: number;
  readonly #queue: WorkItem[] = [];
  #queueHead = 0;
  #running = 0;
  #idle: (() => void)[] = [];

  constructor(options: AsyncPoolExecutorOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError(`AsyncPoolExecutor(options): options must be an object: got ${describeValue(options)}`);
    checkPositiveInt('maxWorkers', options.maxWorkers);
    this.maxWorkers = options.maxWorkers ?? Math.min(32, availableParallelism() + 4);
  }

  /** Tasks running now. */
  get runningCount(): number {
    return this.#running;
  }

  /** Tasks waiting for a free slot. */
  get queuedCount(): number {
    return this.#queue.length - this.#queueHead;
  }

  protected schedule(future: Future<unknown>, fn: AnyFunction, args: unknown[], priority: number): void {
    const item = { future, fn, args, priority };
    const queue = this.#queue;
    // Behind every waiting task of its priority or higher (a walk from the back only when
    // priorities are in use: the usual all-0 queue just appends).
    let at = queue.length;
    while (at > this.#queueHead && queue[at - 1]!.priority < priority) at--;
    if (at === queue.length) queue.push(item);
    else queue.splice(at, 0, item);
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.maxWorkers && this.#queueHead < this.#queue.length) {
      const item = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as WorkItem;
      // Compact now and then rather than shift(): shift is O(n) on a long queue.
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#queueHead);
        this.#queueHead = 0;
      }
      if (!this.markRunning(item.future)) continue; // cancelled while queued
      this.#run(item);
    }
    if (this.#running === 0 && this.queuedCount === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const r of idle) r();
    }
  }

  #run({ future, fn, args }: WorkItem): void {
    this.#running++;
    const controller = new AbortController();
    future.setAbortHook((reason) => controller.abort(reason));
    const context: TaskContext = { signal: controller.signal, taskId: String(++nextTaskId), attempt: 1, report: reporter(future), draining: false };
    const settle = (ok: boolean, value: unknown) => {
      // The slot is held until the function really returns, even if the future was aborted
      // earlier: maxWorkers bounds work actually in progress, as a thread pool's threads do.
      this.#running--;
      if (!future.done()) {
        if (ok) future.setResult(value);
        else future.setException(value);
      }
      this.#pump();
    };
    // Started on a microtask: submit() must return before the task body runs, as with a pool
    // thread, and a sync function that throws must reject its future, not the caller.
    queueMicrotask(() => {
      if (future.done()) {
        // Aborted between markRunning and now.
        settle(false, new CancelledError());
        return;
      }
      try {
        const out = taskStorage.run(context, () => fn.apply(context, args));
        if (out !== null && typeof out === 'object' && typeof (out as PromiseLike<unknown>).then === 'function') {
          (out as PromiseLike<unknown>).then((v) => settle(true, v), (e) => settle(false, e));
        } else {
          settle(true, out);
        }
      } catch (err) {
        settle(false, err);
      }
    });
  }

  protected async close(): Promise<void> {
    if (this.#running === 0 && this.queuedCount === 0) return;
    await new Promise<void>((r) => this.#idle.push(r));
  }
}

/**
 * `report()` of a task on this pool: the value goes to the future's listeners, at most
 * MAX_REPORTS_PER_SECOND a second (the same bound as on worker nodes, so a task behaves alike
 * on both pools).
 */
function reporter(future: Future<unknown>): (value: unknown) => Promise<void> {
  let next = 0;
  return async (value) => {
    const now = performance.now();
    const at = Math.max(now, next);
    next = at + 1000 / MAX_REPORTS_PER_SECOND;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
    future.pushReport(value);
  };
}
